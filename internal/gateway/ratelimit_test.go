package gateway

import (
	"context"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse/gatehouse/internal/testutil/redistest"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/ratelimit"
)

// rateRoute is an anonymous route /<name> limited by rules.
func rateRoute(name, upstream string, rules ...config.GatewayRateRule) config.GatewayRoute {
	return config.GatewayRoute{Name: name, PathPrefix: "/" + name, Upstreams: []string{upstream}, Token: "strip",
		Auth: config.GatewayAuth{Mode: "anonymous"}, RateLimits: rules}
}

func perMinute(by string, n int) config.GatewayRateRule {
	return config.GatewayRateRule{By: by, Rate: n, Period: config.Duration(time.Minute)}
}

// statusOf sends GET path with token and header, returning the response.
func (tg *testGateway) status(t *testing.T, path, token string, header http.Header) *http.Response {
	t.Helper()
	resp, _ := tg.do(t, "GET", path, token, header)
	return resp
}

func TestRateLimitByIP(t *testing.T) {
	is := newTestIssuer(t)
	up := newEcho(t)
	tg := startGateway(t, is, gatewayConfig(is, rateRoute("ip", up.URL, perMinute("ip", 3))), nil)
	for i := range 3 {
		resp := tg.status(t, "/ip/x", "", nil)
		if resp.StatusCode != 200 {
			t.Fatalf("request %d: %d", i, resp.StatusCode)
		}
		if got, want := resp.Header.Get("RateLimit-Remaining"), strconv.Itoa(2-i); got != want {
			t.Fatalf("request %d: RateLimit-Remaining %q, want %q", i, got, want)
		}
	}
	resp := tg.status(t, "/ip/x", "", nil)
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("4th request: %d", resp.StatusCode)
	}
	want := map[string]string{"RateLimit-Limit": "3", "RateLimit-Remaining": "0", "RateLimit-Policy": "3;w=60", "Retry-After": "20"}
	for k, v := range want {
		if got := resp.Header.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if r, err := strconv.Atoi(resp.Header.Get("RateLimit-Reset")); err != nil || r < 59 || r > 60 {
		t.Errorf("RateLimit-Reset %q", resp.Header.Get("RateLimit-Reset"))
	}
}

// TestRateLimitClientAddress: forwarded addresses make separate buckets only
// when the peer is a trusted proxy (GW-02).
func TestRateLimitClientAddress(t *testing.T) {
	is := newTestIssuer(t)
	up := newEcho(t)
	spoof := []struct {
		name string
		h    func(i int) http.Header
	}{
		{"x-forwarded-for", func(i int) http.Header { return http.Header{"X-Forwarded-For": {"203.0.113." + strconv.Itoa(i+1)}} }},
		{"forwarded", func(i int) http.Header { return http.Header{"Forwarded": {"for=203.0.113." + strconv.Itoa(i+1)}} }},
		{"x-real-ip", func(i int) http.Header { return http.Header{"X-Real-Ip": {"203.0.113." + strconv.Itoa(i+1)}} }},
	}
	for _, trusted := range []bool{true, false} {
		cfg := gatewayConfig(is, rateRoute("ip", up.URL, perMinute("ip", 2)))
		cfg.TrustedProxies = []string{"10.0.0.0/8"}
		if trusted {
			cfg.TrustedProxies = []string{"127.0.0.1", "::1"}
		}
		for _, sp := range spoof {
			name := "GW-02/untrusted " + sp.name
			if trusted {
				name = "trusted " + sp.name
			}
			t.Run(name, func(t *testing.T) {
				tg := startGateway(t, is, cfg, nil)
				var ok, limited int
				for i := range 6 { // six addresses, two requests each
					for range 2 {
						switch c := tg.status(t, "/ip/x", "", sp.h(i)).StatusCode; c {
						case 200:
							ok++
						case 429:
							limited++
						default:
							t.Fatalf("status %d", c)
						}
					}
				}
				if trusted && (ok != 12 || limited != 0) {
					t.Fatalf("trusted proxy: %d allowed, %d limited; want 12 separate-bucket passes", ok, limited)
				}
				if !trusted && (ok != 2 || limited != 10) {
					t.Fatalf("untrusted peer: %d allowed, %d limited; a forged address made a new bucket", ok, limited)
				}
			})
		}
	}
}

// TestRateLimitIPv6: IPv6 clients are limited per /64.
func TestRateLimitIPv6(t *testing.T) {
	is := newTestIssuer(t)
	up := newEcho(t)
	cfg := gatewayConfig(is, rateRoute("ip", up.URL, perMinute("ip", 2)))
	cfg.TrustedProxies = []string{"127.0.0.1", "::1"}
	tg := startGateway(t, is, cfg, nil)
	from := func(a string) http.Header { return http.Header{"X-Forwarded-For": {a}} }
	seq := []struct {
		addr string
		want int
	}{
		{"2001:db8:1:2::1", 200}, {"2001:db8:1:2::2", 200}, {"2001:db8:1:2:ffff::9", 429},
		{"2001:db8:1:3::1", 200}, {"192.0.2.1", 200}, {"192.0.2.2", 200}, {"192.0.2.2", 200}, {"192.0.2.2", 429},
	}
	for i, s := range seq {
		if c := tg.status(t, "/ip/x", "", from(s.addr)).StatusCode; c != s.want {
			t.Fatalf("request %d from %s: %d, want %d", i, s.addr, c, s.want)
		}
	}
}

func TestRateLimitByIdentity(t *testing.T) {
	is := newTestIssuer(t)
	up := newEcho(t)
	route := func(name, by string) config.GatewayRoute {
		r := jwtRoute(name, "/"+name, up.URL)
		r.RateLimits = []config.GatewayRateRule{perMinute(by, 2)}
		return r
	}
	tg := startGateway(t, is, gatewayConfig(is, route("subject", "subject"), route("client", "client"), route("route", "route")), nil)
	alice := is.mint(t, map[string]any{"sub": "usr_alice", "client_id": "web"})
	alice2 := is.mint(t, map[string]any{"sub": "usr_alice", "client_id": "cli"}) // same user, other token and client
	bob := is.mint(t, map[string]any{"sub": "usr_bob", "client_id": "web"})
	carol := is.mint(t, map[string]any{"sub": "usr_carol", "client_id": "cli"})
	type req struct {
		token string
		want  int
	}
	tests := []struct {
		name string
		seq  []req
	}{
		{"subject", []req{{alice, 200}, {alice2, 200}, {alice, 429}, {bob, 200}, {bob, 200}, {bob, 429}, {alice2, 429}}},
		{"client", []req{{alice, 200}, {bob, 200}, {alice, 429}, {carol, 200}, {alice2, 200}, {carol, 429}}},
		{"route", []req{{alice, 200}, {carol, 200}, {bob, 429}, {alice2, 429}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for i, r := range tc.seq {
				resp := tg.status(t, "/"+tc.name+"/x", r.token, nil)
				if resp.StatusCode != r.want {
					t.Fatalf("request %d: %d, want %d", i, resp.StatusCode, r.want)
				}
				if r.want == 429 && resp.Header.Get("Retry-After") == "" {
					t.Fatalf("request %d: 429 without Retry-After", i)
				}
			}
		})
	}
	// Unauthenticated requests are refused before the subject limit runs and
	// do not consume anyone's bucket.
	if c := tg.status(t, "/subject/x", "", nil).StatusCode; c != 401 {
		t.Fatalf("no token: %d", c)
	}
}

func newRedisClient(t *testing.T, addr string) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr, DB: 15, MaxRetries: -1, DialTimeout: 200 * time.Millisecond,
		ContextTimeoutEnabled: true, PoolSize: 32})
	t.Cleanup(func() { c.Close() })
	return c
}

// TestRateLimitSharedAcrossInstances: three gateways with their own Redis
// clients share one limit; the total admitted is the limit, not three times it.
func TestRateLimitSharedAcrossInstances(t *testing.T) {
	addr := "127.0.0.1:6379"
	if a := os.Getenv("GATEHOUSE_TEST_REDIS_ADDR"); a != "" {
		addr = a
	}
	probe := newRedisClient(t, addr)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	if err := probe.Ping(ctx).Err(); err != nil {
		redistest.Missing(t, "redis at %s: %v", addr, err)
	}
	prefix := redistest.Prefix(t, probe, "gh-gwtest")
	is := newTestIssuer(t)
	up := newEcho(t)
	const rate, burst = 50, 50 // a burst of 1s absorbs scheduling stalls of a loaded machine
	rule := config.GatewayRateRule{By: "route", Rate: rate, Period: config.Duration(time.Second), Burst: burst,
		Shared: true, OnRedisDown: "closed"}
	warm := rule
	warm.Rate, warm.Burst = 1000, 1000
	cfg := gatewayConfig(is, rateRoute("shared", up.URL, rule), rateRoute("warm", up.URL, warm))
	cfg.Redis.Addr = addr
	var gws []*testGateway
	for range 3 {
		sh := ratelimit.NewShared(ratelimit.NewRedis(newRedisClient(t, addr), prefix), ratelimit.NewLocal(1000, nil),
			ratelimit.SharedConfig{Timeout: time.Second, CoolOff: time.Second})
		gws = append(gws, startGateway(t, is, cfg, sh))
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	defer client.CloseIdleConnections()
	for _, tg := range gws { // open the connections (client, upstream, Redis) first
		for range 4 {
			if resp, err := client.Get(tg.Proxy.URL + "/warm/x"); err != nil || resp.StatusCode != 200 {
				t.Fatalf("warm-up: %v", err)
			} else {
				resp.Body.Close()
			}
		}
	}
	var admitted, limited, other atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	start := time.Now()
	for i := range 24 {
		tg := gws[i%3]
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := client.Get(tg.Proxy.URL + "/shared/x")
				if err != nil {
					other.Add(1)
					continue
				}
				resp.Body.Close()
				switch resp.StatusCode {
				case 200:
					admitted.Add(1)
				case 429:
					limited.Add(1)
				default:
					other.Add(1)
				}
			}
		})
	}
	time.Sleep(2 * time.Second)
	close(stop) // requests in flight still count: measure up to their end
	wg.Wait()
	elapsed := time.Since(start)
	want := float64(rate)*elapsed.Seconds() + burst
	got := float64(admitted.Load())
	t.Logf("admitted %v, limited %d, other %d in %s; want %.0f", got, limited.Load(), other.Load(), elapsed, want)
	if other.Load() != 0 {
		t.Fatalf("%d requests failed otherwise", other.Load())
	}
	if limited.Load() < int64(want)/2 {
		t.Fatalf("the limit was not saturated (only %d refused); the test proves nothing", limited.Load())
	}
	if got > want*1.05 || got < want*0.95 {
		t.Fatalf("admitted %v, want %.0f ± 5%%", got, want)
	}
}

// TestRateLimitRedisDown: while Redis is down, on_redis_down: open keeps
// serving under the local limit and on_redis_down: closed answers 503; once
// Redis is back the shared limits apply again.
func TestRateLimitRedisDown(t *testing.T) {
	rs := redistest.Start(t)
	is := newTestIssuer(t)
	up := newEcho(t)
	shared := func(mode string) config.GatewayRateRule {
		return config.GatewayRateRule{By: "route", Rate: 3, Period: config.Duration(time.Minute), Shared: true, OnRedisDown: mode}
	}
	cfg := gatewayConfig(is, rateRoute("open", up.URL, shared("open")), rateRoute("closed", up.URL, shared("closed")))
	cfg.Redis.Addr = rs.Addr()
	rc := newRedisClient(t, rs.Addr())
	const coolOff = 200 * time.Millisecond
	// A generous timeout: a stopped Redis refuses at once, and a call slowed
	// by a busy machine must not fall back while Redis is up.
	sh := ratelimit.NewShared(ratelimit.NewRedis(rc, "gh-gwtest:"), ratelimit.NewLocal(1000, nil),
		ratelimit.SharedConfig{Timeout: 2 * time.Second, CoolOff: coolOff})
	tg := startGateway(t, is, cfg, sh)
	expect := func(phase, path string, codes ...int) {
		t.Helper()
		for i, want := range codes {
			resp := tg.status(t, path, "", nil)
			if resp.StatusCode != want {
				t.Fatalf("%s: %s request %d: %d, want %d", phase, path, i, resp.StatusCode, want)
			}
			if want == 503 && resp.Header.Get("Retry-After") == "" {
				t.Fatalf("%s: 503 without Retry-After", phase)
			}
		}
	}
	expect("redis up", "/open", 200, 200, 200, 429)
	expect("redis up", "/closed", 200)
	if sh.Down() {
		t.Fatal("redis marked down while up")
	}

	rs.Stop()
	expect("redis down", "/closed", 503, 503)
	if !sh.Down() {
		t.Fatal("redis not marked down")
	}
	// The local fallback has its own bucket: three more, then limited.
	expect("redis down", "/open", 200, 200, 200, 429, 429)
	expect("redis down", "/closed", 503)

	rs.Restart()
	deadline := time.Now().Add(5 * time.Second)
	for tg.status(t, "/closed", "", nil).StatusCode != 200 {
		if time.Now().After(deadline) {
			t.Fatal("shared limits did not come back after Redis restarted")
		}
		time.Sleep(coolOff / 2)
	}
	// The local bucket of /open is empty; a 200 now comes from Redis, whose
	// (new, empty) bucket holds three.
	expect("redis back", "/open", 200, 200, 200, 429)
	if sh.Down() {
		t.Fatal("redis still marked down")
	}
	n, err := rc.DBSize(t.Context()).Result()
	if err != nil || n == 0 {
		t.Fatalf("no bucket in the restarted Redis: %d %v", n, err)
	}
}
