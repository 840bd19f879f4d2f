package caserver

import (
	"testing"
	"time"
)

// TestServingCertShortTTLNoStorm: with svid_ttl 2s and NotBefore backdated
// 30s (the fake CA, like the real one), the serving certificate is renewed
// at half of the time between issuance and NotAfter: over 5 s of handshakes
// about 5 certificates, not one per handshake. The upper bound scales with
// the time that actually passed (a loaded machine may overrun the loop); a
// stall may only lower the count, so the lower bound is one renewal.
func TestServingCertShortTTLNoStorm(t *testing.T) {
	h := newHarnessWith(t, func(_ *Deps, c *Config) { c.SVIDTTL = 2 * time.Second })
	began := time.Now()
	base := h.ca.issued.Load()
	end := began.Add(5 * time.Second)
	handshakes := 0
	for time.Now().Before(end) {
		if _, err := h.srv.certs.get(t.Context()); err != nil {
			t.Fatal(err)
		}
		handshakes++
		time.Sleep(10 * time.Millisecond)
	}
	n := h.ca.issued.Load() - base
	elapsed := time.Since(began)
	// Renewal at half-life (1 s here): at most one certificate per second,
	// plus one in flight at each end of the window.
	hi := int64(elapsed/time.Second) + 2
	if n < 1 || n > hi {
		t.Fatalf("%d serving certificates issued over %d handshakes in %v with a 2s TTL, want 1..%d (~1 per second, not one per handshake)", n, handshakes, elapsed, hi)
	}
}

func TestRenewalTime(t *testing.T) {
	now := time.Now()
	tests := []struct {
		name           string
		nb, na, issued time.Time
		want           time.Time
	}{
		{"backdated 30s, ttl 2s", now.Add(-30 * time.Second), now.Add(2 * time.Second), now, now.Add(time.Second)},
		{"not backdated", now, now.Add(time.Hour), now, now.Add(30 * time.Minute)},
		{"issued before NotBefore (skew)", now.Add(time.Second), now.Add(11 * time.Second), now, now.Add(6 * time.Second)},
	}
	for _, tc := range tests {
		if got := renewalTime(tc.nb, tc.na, tc.issued); !got.Equal(tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got.Sub(now), tc.want.Sub(now))
		}
	}
}
