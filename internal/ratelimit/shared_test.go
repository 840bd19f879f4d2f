package ratelimit

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse/gatehouse/internal/testutil/redistest"
	"github.com/gatehouse/gatehouse/internal/testutil/syncbuf"
)

func TestSharedRedisDown(t *testing.T) {
	srv := redistest.Start(t)
	c := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer c.Close()
	var logs syncbuf.Buffer
	const timeout, coolOff = 200 * ms, 500 * ms
	r := NewRedis(c, "gh-rltest:")
	s := NewShared(r, NewLocal(100, nil), SharedConfig{
		Timeout: timeout, CoolOff: coolOff, Log: slog.New(slog.NewTextHandler(&logs, nil)),
	})
	ctx := context.Background()
	lim := Limit{Rate: 1, Period: time.Hour, Burst: 3}
	count := func(key string, n int, mode FailMode) (allowed, unavailable int) {
		t.Helper()
		for range n {
			res, err := s.Allow(ctx, key, lim, mode)
			switch {
			case errors.Is(err, ErrUnavailable):
				unavailable++
				if res != (Result{}) {
					t.Errorf("result with ErrUnavailable: %+v", res)
				}
			case err != nil:
				t.Fatalf("unexpected error: %v", err)
			case res.Allowed:
				allowed++
			}
		}
		return allowed, unavailable
	}

	// Up: limits live in Redis.
	if a, _ := count("user-1", 5, FailClosed); a != 3 || s.Down() {
		t.Fatalf("up: allowed %d of 5 (want 3), Down %v", a, s.Down())
	}
	if n, _ := c.Exists(ctx, r.Key("user-1")).Result(); n != 1 {
		t.Fatal("bucket not in Redis")
	}

	srv.Stop()

	t.Run("RL-04/fail-open-uses-local-limit", func(t *testing.T) {
		if a, u := count("user-2", 10, FailOpen); a != 3 || u != 0 {
			t.Errorf("down, FailOpen: allowed %d of 10, want the local burst 3 (%d unavailable)", a, u)
		}
		if !s.Down() {
			t.Error("Down() = false after a Redis error")
		}
	})
	t.Run("RL-04/fail-closed-unavailable", func(t *testing.T) {
		if a, u := count("user-1", 5, FailClosed); a != 0 || u != 5 {
			t.Errorf("down, FailClosed: allowed %d, unavailable %d of 5", a, u)
		}
	})
	t.Run("RL-04/breaker-keeps-latency-low", func(t *testing.T) {
		start := time.Now()
		count("user-4", 50, FailOpen)
		count("user-4", 50, FailClosed)
		if d := time.Since(start); d > timeout {
			t.Errorf("100 calls while down took %s, want well under 100 × %s", d, timeout)
		}
	})
	t.Run("RL-04/probe-fails-stays-down", func(t *testing.T) {
		time.Sleep(coolOff)
		start := time.Now()
		if _, u := count("user-5", 20, FailClosed); u != 20 {
			t.Errorf("unavailable %d of 20", u)
		}
		if d := time.Since(start); d > 2*timeout {
			t.Errorf("20 calls after cool-off took %s: more than one probe?", d)
		}
		if !s.Down() {
			t.Error("Down() = false after a failed probe")
		}
	})

	srv.Restart() // same port, empty data
	t.Run("RL-04/recovers-after-cool-off", func(t *testing.T) {
		restarted := time.Now()
		for s.Down() {
			if time.Since(restarted) > coolOff+3*time.Second {
				t.Fatal("Shared did not recover after Redis came back")
			}
			s.Allow(ctx, "user-6", lim, FailClosed)
			time.Sleep(20 * ms)
		}
		t.Logf("recovered %s after restart", time.Since(restarted))
		if _, u := count("user-3", 1, FailClosed); u != 0 {
			t.Fatal("unavailable after recovery")
		}
		if n, _ := c.Exists(ctx, r.Key("user-3")).Result(); n != 1 {
			t.Error("bucket not in Redis after recovery")
		}
		if a, _ := count("user-3", 5, FailOpen); a != 2 {
			t.Errorf("after recovery: allowed %d more, want 2 (Redis limit)", a)
		}
	})

	t.Run("AK-03/no-keys-in-logs", func(t *testing.T) {
		out := logs.String()
		if !strings.Contains(out, "redis unavailable") || !strings.Contains(out, "available again") {
			t.Errorf("state changes not logged:\n%s", out)
		}
		if strings.Count(out, "redis unavailable") != 1 {
			t.Errorf("outage logged more than once:\n%s", out)
		}
		if strings.Contains(out, "user-") {
			t.Errorf("log contains a rate-limit key:\n%s", out)
		}
	})
}

// blackhole accepts connections and never answers: every Redis call times out.
func blackhole(t *testing.T) (addr string, conns *atomic.Int64) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	conns = new(atomic.Int64)
	var wg sync.WaitGroup
	t.Cleanup(func() { l.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			wg.Go(func() { io.Copy(io.Discard, c); c.Close() })
		}
	})
	return l.Addr().String(), conns
}

func TestSharedTimeout(t *testing.T) {
	addr, _ := blackhole(t)
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	const timeout, coolOff = 50 * ms, 300 * ms
	s := NewShared(NewRedis(c, "x:"), nil, SharedConfig{Timeout: timeout, CoolOff: coolOff})
	ctx := context.Background()
	lim := Limit{Rate: 10, Period: time.Second}

	start := time.Now()
	res, err := s.Allow(ctx, "k", lim, FailOpen)
	// The upper bound leaves a loaded machine room and is still well under
	// go-redis's own 3 s read timeout, which a Timeout not applied would hit.
	if d := time.Since(start); err != nil || !res.Allowed || d < timeout || d > 20*timeout {
		t.Fatalf("first call: %+v %v after %s; want a local answer after ≈ %s", res, err, d, timeout)
	}
	if !s.Down() {
		t.Fatal("timeout did not mark Redis down")
	}
	// Calls while down do not wait for Redis: 100 that did would take
	// 100 × timeout; the bound leaves room for a loaded machine's pauses and
	// for the one probe allowed once the cool-off has passed.
	start = time.Now()
	for range 100 {
		s.Allow(ctx, "k", lim, FailOpen)
	}
	if d := time.Since(start); d > 10*timeout {
		t.Errorf("100 calls while down took %s (timeout %s each)", d, timeout)
	}

	t.Run("RL-04/single-probe", func(t *testing.T) {
		time.Sleep(coolOff)
		// Count what reaches Redis rather than timing each call: a call
		// paused by a loaded machine is not a probe.
		probes := &probeCounter{}
		c.AddHook(probes)
		var wg sync.WaitGroup
		start := time.Now()
		for range 20 {
			wg.Go(func() {
				if _, err := s.Allow(ctx, "k", lim, FailClosed); !errors.Is(err, ErrUnavailable) {
					t.Errorf("err = %v", err)
				}
			})
		}
		wg.Wait()
		elapsed := time.Since(start)
		// One probe once the cool-off has passed; another only after a
		// failed probe's cool-off, should the calls take that long. (Not
		// "one in flight": a timed-out call's command lingers in go-redis.)
		if n := probes.sent.Load(); n < 1 || n > 1+int64(elapsed/coolOff) {
			t.Errorf("20 concurrent calls after cool-off sent %d commands to Redis in %s; want one probe per cool-off", n, elapsed)
		}
	})
}

// probeCounter is a go-redis hook counting the limiter's script calls.
type probeCounter struct{ sent atomic.Int64 }

func (p *probeCounter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (p *probeCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if name := cmd.Name(); name == "evalsha" || name == "eval" { // not a new connection's HELLO
			p.sent.Add(1)
		}
		return next(ctx, cmd)
	}
}

func (p *probeCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next // the limiter sends no pipelines
}

func TestSharedCallerCancel(t *testing.T) {
	addr, _ := blackhole(t)
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	s := NewShared(NewRedis(c, "x:"), nil, SharedConfig{Timeout: time.Second})
	lim := Limit{Rate: 10, Period: time.Second}

	ctx, cancel := context.WithTimeout(context.Background(), 20*ms)
	defer cancel()
	_, err := s.Allow(ctx, "k", lim, FailOpen)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("caller deadline: err = %v", err)
	}
	cctx, ccancel := context.WithCancel(context.Background())
	ccancel()
	if _, err := s.Allow(cctx, "k", lim, FailOpen); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled caller: err = %v", err)
	}
	if s.Down() {
		t.Error("the caller giving up marked Redis down")
	}
	if _, err := s.Allow(context.Background(), "k", Limit{}, FailOpen); !errors.Is(err, ErrInvalidLimit) || s.Down() {
		t.Errorf("invalid limit: err = %v, Down %v", err, s.Down())
	}
}

func TestSharedLimiter(t *testing.T) {
	c := newTestClient(t)
	s := NewShared(NewRedis(c, testPrefix(t, c)), nil, SharedConfig{Timeout: time.Second})
	var l Limiter = s.Limiter(FailClosed)
	lim := Limit{Rate: 1, Period: time.Hour, Burst: 2}
	var allowed int
	for range 4 {
		res, err := l.Allow(context.Background(), "k", lim)
		if err != nil {
			t.Fatal(err)
		}
		if res.Allowed {
			allowed++
		}
	}
	if allowed != 2 {
		t.Errorf("allowed %d, want 2", allowed)
	}
}
