package e2e

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/gateway"
	"github.com/gatehouse/gatehouse/internal/ratelimit"
	"github.com/gatehouse/gatehouse/internal/testutil/redistest"
)

// gatewayReplica is one gateway process's worth of state: its own Redis
// client, shared limiter and listener.
type gatewayReplica struct {
	G   *gateway.Gateway
	URL string
}

// startGatewayReplica builds a proxying gateway with routes whose shared
// limits live in Redis at addr under prefix (one prefix per test, so tests
// never see each other's buckets), each Redis call bounded by timeout.
func startGatewayReplica(t *testing.T, addr, prefix string, timeout time.Duration, routes []config.GatewayRoute) *gatewayReplica {
	t.Helper()
	gc := config.Default().Gateway
	gc.Listen = "127.0.0.1:0"
	gc.AccessLog = false
	gc.Redis.Addr = addr
	gc.Routes = routes
	if _, err := gc.Validate(); err != nil {
		t.Fatal(err)
	}
	rc := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: timeout, ReadTimeout: timeout,
		WriteTimeout: timeout, MaxRetries: -1, PoolSize: 32, ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = rc.Close() })
	shared := ratelimit.NewShared(ratelimit.NewRedis(rc, prefix), ratelimit.NewLocal(100_000, nil),
		ratelimit.SharedConfig{Timeout: timeout, CoolOff: 200 * time.Millisecond})
	g, err := gateway.New(gc, gateway.Deps{Issuer: "http://127.0.0.1:1", Shared: shared})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	srv := httptest.NewServer(g)
	t.Cleanup(srv.Close)
	return &gatewayReplica{G: g, URL: srv.URL}
}

// redisPrefix returns a key prefix unique to this test run and deletes its
// keys from the Redis at addr when the test ends.
func redisPrefix(t *testing.T, addr string) string {
	t.Helper()
	prefix := "e2e:gw:" + randB64(9) + ":"
	t.Cleanup(func() {
		rc := redis.NewClient(&redis.Options{Addr: addr})
		defer rc.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		iter := rc.Scan(ctx, 0, prefix+"*", 100).Iterator()
		for iter.Next(ctx) {
			rc.Del(ctx, iter.Val())
		}
	})
	return prefix
}

func sharedRoute(name, upstream string, rate int, period time.Duration, burst int, onDown string) config.GatewayRoute {
	return config.GatewayRoute{Name: name, PathPrefix: "/" + name, Upstreams: []string{upstream}, Token: "strip",
		Auth: config.GatewayAuth{Mode: "anonymous"},
		RateLimits: []config.GatewayRateRule{{By: "route", Rate: rate, Period: config.Duration(period), Burst: burst,
			Shared: true, OnRedisDown: onDown}}}
}

// okUpstream answers 200 to everything.
func okUpstream(t *testing.T) string {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) }))
	t.Cleanup(s.Close)
	return s.URL
}

// TestGatewayReplicasShareRedisLimit: three gateways with their own Redis
// clients enforce one shared route limit together: hammered round robin, the
// number of allowed requests is the limit's, not three times it.
func TestGatewayReplicasShareRedisLimit(t *testing.T) {
	addr := "127.0.0.1:6379"
	if c, err := net.DialTimeout("tcp", addr, time.Second); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("Redis is required at %s: %v", addr, err)
		}
		t.Skipf("no Redis at %s", addr)
	} else {
		c.Close()
	}
	prefix := redisPrefix(t, addr)
	up := okUpstream(t)
	const rate, burst = 100, 50 // a burst of 0.5 s absorbs scheduler stalls of a loaded machine
	routes := []config.GatewayRoute{sharedRoute("shared", up, rate, time.Second, burst, "closed")}
	var reps []*gatewayReplica
	for range 3 {
		// A generous timeout: this test is about sharing, and a Redis call
		// slowed by a busy machine must not turn into a 503.
		reps = append(reps, startGatewayReplica(t, addr, prefix, time.Second, routes))
	}

	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	t.Cleanup(client.CloseIdleConnections)
	var ok, limited, other atomic.Int64
	var firstOther atomic.Value
	perReplica := make([]atomic.Int64, len(reps))
	var next atomic.Uint64
	const run = 3 * time.Second
	start := time.Now()
	stop := start.Add(run)
	busy := newSlots(run, 50*time.Millisecond)
	var wg sync.WaitGroup
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(stop) {
				i := int(next.Add(1) % uint64(len(reps)))
				resp, err := client.Get(reps[i].URL + "/shared/x")
				if err != nil {
					other.Add(1)
					firstOther.CompareAndSwap(nil, err.Error())
					continue
				}
				resp.Body.Close()
				busy.mark(time.Since(start))
				switch resp.StatusCode {
				case 200:
					ok.Add(1)
					perReplica[i].Add(1)
				case 429:
					limited.Add(1)
				default:
					other.Add(1)
					firstOther.CompareAndSwap(nil, fmt.Sprintf("status %d", resp.StatusCode))
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	want := rate*elapsed.Seconds() + burst
	got := float64(ok.Load())
	t.Logf("allowed %d, limited %d, other %d in %s (want %.0f); per replica %d/%d/%d", ok.Load(), limited.Load(), other.Load(),
		elapsed, want, perReplica[0].Load(), perReplica[1].Load(), perReplica[2].Load())
	if other.Load() != 0 {
		t.Errorf("%d requests neither allowed nor limited; first: %v", other.Load(), firstOther.Load())
	}
	// The limit must hold: never more than 5% over rate × elapsed + burst.
	if got > 1.05*want {
		t.Errorf("allowed %.0f requests, more than %.0f + 5%%: the shared limit did not hold", got, want)
	}
	// And it must not be stricter than configured: within 5% under, over the
	// time the machine actually served requests (a 50 ms slot in which no
	// answer arrived at all is a stall of this busy test machine, and GCRA
	// does not bank capacity beyond the burst).
	idle := busy.idle()
	if low := rate*(elapsed-idle).Seconds() + burst; got < 0.95*low {
		t.Errorf("allowed %.0f requests, want at least %.0f - 5%% (%s of %s idle)", got, low, idle, elapsed)
	}
	if limited.Load() < ok.Load() {
		t.Errorf("only %d requests were limited: the load did not exceed the limit", limited.Load())
	}
	for i := range perReplica {
		if perReplica[i].Load() == 0 {
			t.Errorf("replica %d allowed nothing", i)
		}
	}
}

// TestGatewayRedisDownFallback: when Redis dies, a shared limit with
// on_redis_down: open falls back to each replica's local limit and one with
// closed answers 503 with Retry-After; when Redis is back on the same
// address, the shared limit applies again.
func TestGatewayRedisDownFallback(t *testing.T) {
	rs := redistest.Start(t)
	addr := rs.Addr()
	up := okUpstream(t)
	const burst = 5
	routes := []config.GatewayRoute{
		sharedRoute("open", up, burst, time.Hour, burst, "open"),
		sharedRoute("closed", up, burst, time.Hour, burst, "closed"),
	}
	// A generous Redis timeout: a stopped Redis refuses at once, and a call
	// slowed by a busy machine must not fall back while Redis is up (the
	// exact counts below would break).
	a := startGatewayReplica(t, addr, "e2e:down:", 2*time.Second, routes)
	b := startGatewayReplica(t, addr, "e2e:down:", 2*time.Second, routes)
	client := &http.Client{Timeout: 5 * time.Second}
	do := func(r *gatewayReplica, path string) *http.Response {
		t.Helper()
		resp, err := client.Get(r.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		readBody(t, resp)
		return resp
	}
	// allowedOf sends n requests alternating over reps and counts the 200s;
	// anything but 200 and 429 fails the test.
	allowedOf := func(path string, n int, reps ...*gatewayReplica) int {
		t.Helper()
		allowed := 0
		for i := range n {
			switch resp := do(reps[i%len(reps)], path); resp.StatusCode {
			case 200:
				allowed++
			case 429:
			default:
				t.Fatalf("%s: status %d", path, resp.StatusCode)
			}
		}
		return allowed
	}

	// Redis up: the two replicas share one budget.
	if got := allowedOf("/open/x", 2*burst+2, a, b); got != burst {
		t.Fatalf("shared limit with Redis up: %d allowed, want %d", got, burst)
	}
	if resp := do(a, "/closed/x"); resp.StatusCode != 200 {
		t.Fatalf("closed route with Redis up: %d", resp.StatusCode)
	}

	rs.Stop()
	t.Run("closed-route-503", func(t *testing.T) {
		for i := range 4 {
			resp := do([]*gatewayReplica{a, b}[i%2], "/closed/x")
			if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
				t.Fatalf("closed route with Redis down: %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
			}
		}
	})
	t.Run("open-route-local-limit", func(t *testing.T) {
		// Each replica falls back to its own local budget of burst.
		for name, r := range map[string]*gatewayReplica{"a": a, "b": b} {
			if got := allowedOf("/open/x", burst+3, r); got != burst {
				t.Fatalf("replica %s with Redis down: %d allowed, want its local %d", name, got, burst)
			}
		}
	})

	rs.Restart()
	t.Run("redis-back", func(t *testing.T) {
		// Each replica probes Redis once its cool-off has passed; the
		// restarted Redis is empty, so the closed route answers 200 again.
		for name, r := range map[string]*gatewayReplica{"a": a, "b": b} {
			deadline := time.Now().Add(5 * time.Second)
			for {
				resp := do(r, "/closed/x")
				if resp.StatusCode == 200 {
					break
				}
				if resp.StatusCode != http.StatusServiceUnavailable || time.Now().After(deadline) {
					t.Fatalf("replica %s after Redis restart: %d", name, resp.StatusCode)
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
		// Both local budgets are spent; only the shared one can allow, and
		// it allows exactly burst across both replicas.
		if got := allowedOf("/open/x", 2*burst+2, a, b); got != burst {
			t.Fatalf("shared limit after Redis restart: %d allowed, want %d", got, burst)
		}
	})
}

// slots records which fixed-width time slots of a run saw an answer.
type slots struct {
	width time.Duration
	seen  []atomic.Bool
}

func newSlots(run, width time.Duration) *slots {
	return &slots{width: width, seen: make([]atomic.Bool, int(run/width)+2)}
}

func (s *slots) mark(at time.Duration) {
	if i := int(at / s.width); i >= 0 && i < len(s.seen) {
		s.seen[i].Store(true)
	}
}

// idle is the total width of the slots, before the last one seen, that saw
// no answer.
func (s *slots) idle() time.Duration {
	last := -1
	for i := range s.seen {
		if s.seen[i].Load() {
			last = i
		}
	}
	var n int
	for i := 0; i < last; i++ {
		if !s.seen[i].Load() {
			n++
		}
	}
	return time.Duration(n) * s.width
}
