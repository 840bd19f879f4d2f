package periodic_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/periodic"
	"github.com/gatehouse/gatehouse/internal/testutil/syncbuf"
)

// TestRunRoundsAndStop: rounds repeat, failures are logged with their cause
// and the loop returns when its context ends.
func TestRunRoundsAndStop(t *testing.T) {
	var buf syncbuf.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	ctx, cancel := context.WithCancel(context.Background())
	var n atomic.Int32
	done := make(chan struct{})
	go func() {
		defer close(done)
		periodic.Run(ctx, time.Millisecond, log, "refresh failed", func(context.Context) error {
			if n.Add(1) == 2 {
				return errors.New("storage away")
			}
			if n.Load() >= 3 {
				cancel()
			}
			return nil
		})
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	if got := n.Load(); got != 3 {
		t.Errorf("%d rounds, want 3", got)
	}
	if out := buf.String(); strings.Count(out, "level=WARN") != 1 || !strings.Contains(out, `msg="refresh failed" err="storage away"`) {
		t.Errorf("log:\n%s", out)
	}
}

// TestRunNowFirstRoundAndShutdownQuiet: RunNow runs a round before the first
// interval; an error from a round cut short by shutdown is not logged.
func TestRunNowFirstRoundAndShutdownQuiet(t *testing.T) {
	var buf syncbuf.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	ctx, cancel := context.WithCancel(context.Background())
	var n atomic.Int32
	periodic.RunNow(ctx, time.Hour, log, "poll failed", func(ctx context.Context) error {
		n.Add(1)
		cancel()
		return ctx.Err()
	})
	if got := n.Load(); got != 1 {
		t.Errorf("%d rounds, want 1", got)
	}
	if out := buf.String(); out != "" {
		t.Errorf("a shutdown was logged:\n%s", out)
	}
}
