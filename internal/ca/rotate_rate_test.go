package ca

import (
	"context"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/storage"
)

// TestRotationRateShortTTL: with the default 30 s backdate and lifetimes of
// a few seconds, authorities rotate at half-life measured from their
// creation (a successor every ttl/2), not on every tick (half-life from the
// backdated NotBefore is already past at creation).
func TestRotationRateShortTTL(t *testing.T) {
	tests := []struct {
		name     string
		kind     string
		rootTTL  time.Duration
		interTTL time.Duration
		ttl      time.Duration // of kind
		window   time.Duration
	}{
		{"intermediate 6s", storage.AuthorityIntermediate, time.Hour, 6 * time.Second, 6 * time.Second, 30 * time.Second},
		{"root 12s", storage.AuthorityRoot, 12 * time.Second, 4 * time.Second, 12 * time.Second, 60 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := newMemStore()
			clk := newClock()
			cfg := testConfig()
			cfg.RootTTL, cfg.IntermediateTTL = tc.rootTTL, tc.interTTL
			c := newTestCA(t, st, cfg, clk)
			start := clk.Now()
			maxGen := int64(0)
			for clk.Now().Sub(start) < tc.window {
				clk.Advance(100 * time.Millisecond)
				if err := c.refresh(context.Background()); err != nil {
					t.Fatalf("at %v: refresh: %v (generation %d)", clk.Now().Sub(start), err, maxGen)
				}
				for _, a := range st.list(tc.kind) {
					maxGen = max(maxGen, a.Generation)
				}
			}
			// One successor per half-life (plus the first authority),
			// prepared ahead of its activation: ±2 for the edges.
			want := int64(tc.window/(tc.ttl/2)) + 1
			if maxGen < want-2 || maxGen > want+2 {
				t.Fatalf("%d %s generations in %v with a %v lifetime, want ~%d", maxGen, tc.kind, tc.window, tc.ttl, want)
			}
		})
	}
}
