// Package periodic runs background refresh work at a fixed interval: the
// reload, rotation, garbage-collection and polling loops of the server
// components share it, so that each loop stops the same way when its context
// ends and logs a failed round the same way.
package periodic

import (
	"context"
	"log/slog"
	"time"
)

// Run calls f every interval until ctx is done; it returns then. A round
// that fails is logged at WARN as msg with the error under "err", unless ctx
// has ended (a shutdown is not a failure); the next round runs as usual.
// Rounds never overlap. every must be positive.
func Run(ctx context.Context, every time.Duration, log *slog.Logger, msg string, f func(context.Context) error) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		round(ctx, log, msg, f)
	}
}

// RunNow is Run with a first round at once, before the first interval.
func RunNow(ctx context.Context, every time.Duration, log *slog.Logger, msg string, f func(context.Context) error) {
	round(ctx, log, msg, f)
	Run(ctx, every, log, msg, f)
}

func round(ctx context.Context, log *slog.Logger, msg string, f func(context.Context) error) {
	if err := f(ctx); err != nil && ctx.Err() == nil {
		log.Warn(msg, "err", err)
	}
}
