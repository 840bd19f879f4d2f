package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"
)

// FailMode says what Shared does while Redis is unavailable.
type FailMode int

const (
	// FailClosed refuses with ErrUnavailable while Redis is down.
	FailClosed FailMode = iota
	// FailOpen answers from the Local limiter (per-instance limits) while
	// Redis is down.
	FailOpen
)

// ParseFailMode parses "open" or "closed" (exactly; no other spelling).
func ParseFailMode(s string) (FailMode, error) {
	switch s {
	case "closed":
		return FailClosed, nil
	case "open":
		return FailOpen, nil
	}
	if len(s) > 32 {
		s = s[:32] + "…"
	}
	return FailClosed, fmt.Errorf("ratelimit: fail mode %q: want \"open\" or \"closed\"", s)
}

// String returns "open" or "closed" (the ParseFailMode spelling).
func (m FailMode) String() string {
	switch m {
	case FailClosed:
		return "closed"
	case FailOpen:
		return "open"
	}
	return fmt.Sprintf("FailMode(%d)", int(m))
}

// ErrUnavailable is returned by Shared in FailClosed mode while Redis is down.
var ErrUnavailable = errors.New("ratelimit: shared limiter unavailable")

// Defaults for zero SharedConfig fields.
const (
	DefaultTimeout = 50 * time.Millisecond
	DefaultCoolOff = time.Second
)

// SharedConfig configures Shared. Zero fields take the defaults.
type SharedConfig struct {
	Timeout time.Duration // per Redis call; default 50ms
	CoolOff time.Duration // how long Redis stays marked down; default 1s
	Log     *slog.Logger  // state changes; default discards
}

// Shared checks limits in Redis and falls back when Redis fails. It is safe
// for concurrent use.
//
// A Redis error or timeout marks Redis down for CoolOff. While down, no call
// goes to Redis, so a dead Redis costs no latency; once CoolOff has passed, a
// single request probes Redis (the others keep using the fallback), and its
// success marks Redis up again.
type Shared struct {
	r       *Redis
	local   *Local
	timeout time.Duration
	coolOff time.Duration
	log     *slog.Logger
	base    time.Time

	downUntil atomic.Int64 // 0: up; else ns since base after which to probe
	probing   atomic.Bool
}

// NewShared returns a Shared over r (required) that uses local while Redis is
// down in FailOpen mode; a nil local gets NewLocal(DefaultMaxKeys, nil).
//
// Give r a client with ContextTimeoutEnabled set, so that a call abandoned
// at the timeout also stops at the socket.
func NewShared(r *Redis, local *Local, cfg SharedConfig) *Shared {
	if r == nil {
		panic("ratelimit: NewShared with nil *Redis")
	}
	if local == nil {
		local = NewLocal(DefaultMaxKeys, nil)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.CoolOff <= 0 {
		cfg.CoolOff = DefaultCoolOff
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Shared{r: r, local: local, timeout: cfg.Timeout, coolOff: cfg.CoolOff, log: cfg.Log, base: time.Now()}
}

// Down reports whether Redis is currently marked unavailable.
func (s *Shared) Down() bool { return s.downUntil.Load() != 0 }

func (s *Shared) mono() int64 { return int64(time.Since(s.base)) }

// Allow consumes one event for key under l: in Redis when it is up,
// otherwise as mode says. An invalid l or a cancelled ctx returns an error
// without affecting the Redis state.
func (s *Shared) Allow(ctx context.Context, key string, l Limit, mode FailMode) (Result, error) {
	if err := l.Validate(); err != nil {
		return Result{}, err
	}
	if until := s.downUntil.Load(); until != 0 {
		if s.mono() < until || !s.probing.CompareAndSwap(false, true) {
			return s.fallback(ctx, key, l, mode, nil)
		}
		defer s.probing.Store(false)
	}
	res, err := s.call(ctx, key, l)
	if err == nil {
		if s.downUntil.Swap(0) != 0 {
			s.log.Info("ratelimit: redis available again")
		}
		return res, nil
	}
	if ctx.Err() != nil {
		// The caller gave up; that says nothing about Redis.
		return Result{}, fmt.Errorf("ratelimit: %w", context.Cause(ctx))
	}
	if s.downUntil.Swap(s.mono()+int64(s.coolOff)) == 0 {
		s.log.Warn("ratelimit: redis unavailable, using fallback",
			"error", err, "cool_off", s.coolOff, "fail_mode", mode.String())
	}
	return s.fallback(ctx, key, l, mode, err)
}

type reply struct {
	res Result
	err error
}

// call runs one Redis check bounded by the timeout. go-redis ignores context
// deadlines for socket I/O unless the client has ContextTimeoutEnabled (it
// then waits for its ReadTimeout, 3s by default), so the deadline is enforced
// here: on timeout the call is abandoned and finishes in the background
// (promptly when ContextTimeoutEnabled is set, since ctx is then cancelled).
// While Redis is down only probes get here, so abandoned calls stay few.
func (s *Shared) call(ctx context.Context, key string, l Limit) (Result, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	ch := make(chan reply, 1)
	go func() {
		res, err := s.r.Allow(ctx, key, l)
		ch <- reply{res, err}
	}()
	select {
	case rep := <-ch:
		return rep.res, rep.err
	case <-ctx.Done():
		return Result{}, fmt.Errorf("ratelimit: redis: %w", context.Cause(ctx))
	}
}

func (s *Shared) fallback(ctx context.Context, key string, l Limit, mode FailMode, cause error) (Result, error) {
	if mode == FailOpen {
		return s.local.Allow(ctx, key, l)
	}
	if cause != nil {
		return Result{}, fmt.Errorf("%w: %w", ErrUnavailable, cause)
	}
	return Result{}, ErrUnavailable
}

// Limiter returns a Limiter that calls s.Allow with mode.
func (s *Shared) Limiter(mode FailMode) Limiter { return sharedLimiter{s, mode} }

type sharedLimiter struct {
	s    *Shared
	mode FailMode
}

func (sl sharedLimiter) Allow(ctx context.Context, key string, l Limit) (Result, error) {
	return sl.s.Allow(ctx, key, l, sl.mode)
}
