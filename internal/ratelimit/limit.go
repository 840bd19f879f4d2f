package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Bounds enforced by Limit.Validate.
const (
	MinPeriod = time.Millisecond
	MaxPeriod = 24 * time.Hour
	MaxBurst  = 1_000_000
	// MinInterval is the smallest emission interval Period/Rate: at most one
	// event per microsecond per key (the resolution of the Redis clock).
	MinInterval = time.Microsecond
	// MaxFill is the longest time an empty bucket may take to refill
	// (Burst × Period / Rate); it keeps every timestamp within int64
	// nanoseconds and within the exact range of the script's numbers.
	MaxFill = 100 * 365 * 24 * time.Hour
)

// ErrInvalidLimit is wrapped by every error Limit.Validate returns.
var ErrInvalidLimit = errors.New("ratelimit: invalid limit")

// Limit allows at most Rate events per Period on average, with bursts of up
// to Burst events (Burst >= 1; Burst 0 means Burst = Rate).
type Limit struct {
	Rate   int
	Period time.Duration
	Burst  int
}

// Validate reports whether l is usable: Rate >= 1, 1ms <= Period <= 24h,
// 0 <= Burst <= 1e6, Period/Rate >= 1µs and a full refill (Burst×Period/Rate)
// of at most MaxFill.
func (l Limit) Validate() error {
	switch {
	case l.Rate < 1:
		return fmt.Errorf("%w: rate %d < 1", ErrInvalidLimit, l.Rate)
	case l.Period < MinPeriod || l.Period > MaxPeriod:
		return fmt.Errorf("%w: period %s outside [%s, %s]", ErrInvalidLimit, l.Period, MinPeriod, MaxPeriod)
	case l.Burst < 0 || l.Burst > MaxBurst:
		return fmt.Errorf("%w: burst %d outside [0, %d]", ErrInvalidLimit, l.Burst, MaxBurst)
	case l.interval() < int64(MinInterval):
		return fmt.Errorf("%w: rate %d per %s is faster than one event per %s", ErrInvalidLimit, l.Rate, l.Period, MinInterval)
	}
	// Divide rather than multiply: 24h × 1e6 overflows int64.
	if int64(l.burst()) > int64(MaxFill)/l.interval() {
		return fmt.Errorf("%w: refilling %d events at %d per %s takes longer than %s", ErrInvalidLimit, l.burst(), l.Rate, l.Period, MaxFill)
	}
	return nil
}

// interval is the GCRA emission interval T = Period/Rate in nanoseconds.
func (l Limit) interval() int64 {
	if l.Rate < 1 {
		return 0
	}
	return int64(l.Period) / int64(l.Rate)
}

// burst is the effective burst: Burst, or Rate when Burst is 0.
func (l Limit) burst() int {
	if l.Burst == 0 {
		return l.Rate
	}
	return l.Burst
}

// Result is the outcome of one check.
type Result struct {
	Allowed    bool
	Limit      int           // the burst capacity (for RateLimit-Limit)
	Remaining  int           // whole requests left now
	RetryAfter time.Duration // > 0 only when !Allowed: time until one request would be allowed
	ResetAfter time.Duration // time until the bucket is full again
}

// Limiter checks and consumes one event for key.
type Limiter interface {
	Allow(ctx context.Context, key string, l Limit) (Result, error)
}

// gcra decides one event. tat is the key's theoretical arrival time, now the
// current time (both in ns on the same clock), t the emission interval and
// bt = burst×t. It returns the new tat, whether the event is allowed, and the
// result fields. A tat in the past means a full bucket.
//
// The same arithmetic runs in the Redis script; keep them in step.
func gcra(tat, now, t, bt int64) (newTAT int64, allowed bool, d, retry int64) {
	if tat < now {
		tat = now
	}
	d = tat - now // how far the bucket is from full, as time
	if over := d + t - bt; over > 0 {
		return tat, false, d, over
	}
	return tat + t, true, d + t, 0
}

// result builds a Result from gcra's outputs; d is the distance from a full
// bucket after the decision.
func result(l Limit, allowed bool, d, retry int64) Result {
	t, b := l.interval(), l.burst()
	rem := (int64(b)*t - d) / t
	rem = max(0, min(rem, int64(b)))
	r := Result{Allowed: allowed, Limit: b, Remaining: int(rem), ResetAfter: time.Duration(max(d, 0))}
	if !allowed {
		r.RetryAfter = time.Duration(max(retry, 1))
	}
	return r
}
