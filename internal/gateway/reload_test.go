package gateway

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
)

func TestReloadAppliesRoutes(t *testing.T) {
	is := newTestIssuer(t)
	up := newEcho(t)
	tg := startGateway(t, is, gatewayConfig(is, jwtRoute("orders", "/orders", up.URL)), nil)
	tok := is.user(t, "usr_alice")
	if c := tg.status(t, "/billing/1", tok, nil).StatusCode; c != 404 {
		t.Fatalf("before reload: %d", c)
	}
	billing := jwtRoute("billing", "/billing", up.URL, "billing:read")
	if err := tg.G.Reload([]config.GatewayRoute{billing}); err != nil {
		t.Fatal(err)
	}
	if c := tg.status(t, "/orders/1", tok, nil).StatusCode; c != 404 {
		t.Fatalf("removed route still served: %d", c)
	}
	if c := tg.status(t, "/billing/1", tok, nil).StatusCode; c != 403 {
		t.Fatalf("new route's rule not applied: %d", c)
	}
	resp, body := tg.do(t, "GET", "/billing/1", is.user(t, "usr_alice", "billing:read"), nil)
	if resp.StatusCode != 200 || seen(t, body).Header.Get(HeaderRoute) != "billing" {
		t.Fatalf("new route: %d %s", resp.StatusCode, body)
	}
	// A route for an audience no route had before verifies at once.
	other := jwtRoute("other", "/other", up.URL)
	other.Auth.Audience = "https://other.test.example"
	if err := tg.G.Reload([]config.GatewayRoute{other}); err != nil {
		t.Fatal(err)
	}
	if c := tg.status(t, "/other/1", is.mint(t, map[string]any{"aud": "https://other.test.example"}), nil).StatusCode; c != 200 {
		t.Fatalf("route with a new audience right after reload: %d", c)
	}
}

func TestReloadRejectsBadRoutes(t *testing.T) {
	is := newTestIssuer(t)
	up := newEcho(t)
	tg := startGateway(t, is, gatewayConfig(is, jwtRoute("orders", "/orders", up.URL)), nil)
	tok := is.user(t, "usr_alice")
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	good := jwtRoute("billing", "/billing", up.URL)
	bad := func(f func(r *config.GatewayRoute)) config.GatewayRoute {
		r := jwtRoute("bad", "/bad", up.URL)
		f(&r)
		return r
	}
	tests := []struct {
		name  string
		route config.GatewayRoute
		want  string
	}{
		{"shared limit without redis", bad(func(r *config.GatewayRoute) {
			r.RateLimits = []config.GatewayRateRule{{By: "route", Rate: 1, Period: config.Duration(time.Second), Shared: true, OnRedisDown: "open"}}
		}), "shared rate limit without gateway.redis"},
		{"missing CA file", bad(func(r *config.GatewayRoute) { r.UpstreamTLS.CAFile = filepath.Join(dir, "missing.pem") }), "ca_file"},
		{"CA file without PEM", bad(func(r *config.GatewayRoute) { r.UpstreamTLS.CAFile = notPEM }), "no PEM"},
		{"missing client certificate", bad(func(r *config.GatewayRoute) {
			r.UpstreamTLS.CertFile, r.UpstreamTLS.KeyFile = filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
		}), "client certificate"},
		{"exchange not configured", bad(func(r *config.GatewayRoute) {
			r.Token, r.Exchange = "exchange", config.GatewayExchange{Audience: "https://x"}
		}), "token exchange is not configured"},
		{"path not normalized", bad(func(r *config.GatewayRoute) { r.PathPrefix = "/a/../bad" }), "path_prefix"},
		{"bad upstream", bad(func(r *config.GatewayRoute) { r.Upstreams = []string{"ftp://x"} }), "upstream"},
		{"invalid limit", bad(func(r *config.GatewayRoute) {
			r.RateLimits = []config.GatewayRateRule{{By: "ip", Rate: 0, Period: config.Duration(time.Second)}}
		}), "invalid limit"},
		{"subject limit on anonymous", bad(func(r *config.GatewayRoute) {
			r.Auth = config.GatewayAuth{Mode: "anonymous"}
			r.RateLimits = []config.GatewayRateRule{perMinute("subject", 5)}
		}), "anonymous"},
		{"unknown limit key", bad(func(r *config.GatewayRoute) { r.RateLimits = []config.GatewayRateRule{perMinute("user", 5)} }), "rate limit by"},
		{"unknown auth mode", bad(func(r *config.GatewayRoute) { r.Auth.Mode = "none" }), "unknown auth mode"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tg.G.Reload([]config.GatewayRoute{good, tc.route})
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "(bad)") {
				t.Fatalf("Reload: %v, want an error naming the route and %q", err, tc.want)
			}
			if c := tg.status(t, "/orders/1", tok, nil).StatusCode; c != 200 {
				t.Fatalf("old route not served after a rejected reload: %d", c)
			}
			if c := tg.status(t, "/billing/1", tok, nil).StatusCode; c != 404 {
				t.Fatalf("part of a rejected route set was applied: %d", c)
			}
		})
	}
}

// TestReloadUnderTraffic: 50 reloads while 8 clients send requests: every
// request is answered 200 by the route set it started with.
func TestReloadUnderTraffic(t *testing.T) {
	is := newTestIssuer(t)
	upA, upB := newEcho(t), newEcho(t)
	setA := []config.GatewayRoute{jwtRoute("orders-a", "/orders", upA.URL), jwtRoute("misc", "/misc", upA.URL)}
	b := jwtRoute("orders-b", "/orders", upB.URL+"/v2")
	setB := []config.GatewayRoute{b}
	tg := startGateway(t, is, gatewayConfig(is, setA...), nil)
	tok := is.user(t, "usr_alice")
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	defer client.CloseIdleConnections()
	stop := make(chan struct{})
	var total, failed atomic.Int64
	var routes sync.Map
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				req, _ := http.NewRequest("GET", tg.Proxy.URL+"/orders/1", nil)
				req.Header.Set("Authorization", "Bearer "+tok)
				resp, err := client.Do(req)
				total.Add(1)
				if err != nil {
					failed.Add(1)
					t.Errorf("request: %v", err)
					continue
				}
				var e echoed
				if resp.StatusCode != 200 {
					failed.Add(1)
					t.Errorf("status %d", resp.StatusCode)
				} else if err := jsonDecode(resp, &e); err != nil {
					failed.Add(1)
				} else {
					routes.Store(e.Header.Get(HeaderRoute)+" "+e.Path, true)
				}
				resp.Body.Close()
			}
		})
	}
	for i := range 50 {
		set := setA
		if i%2 == 0 {
			set = setB
		}
		if err := tg.G.Reload(set); err != nil {
			t.Fatal(err)
		}
		time.Sleep(40 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if failed.Load() != 0 || total.Load() < 50 {
		t.Fatalf("%d of %d requests failed", failed.Load(), total.Load())
	}
	for _, want := range []string{"orders-a /orders/1", "orders-b /v2/orders/1"} {
		if _, ok := routes.Load(want); !ok {
			t.Errorf("no request served by %q", want)
		}
	}
	routes.Range(func(k, _ any) bool {
		if s := k.(string); s != "orders-a /orders/1" && s != "orders-b /v2/orders/1" {
			t.Errorf("request served by a mixed route: %q", s)
		}
		return true
	})
}

// TestReloadInFlight: requests in flight when their route is removed still
// complete on the route they started with.
func TestReloadInFlight(t *testing.T) {
	is := newTestIssuer(t)
	arrived := make(chan struct{}, 16)
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		time.Sleep(300 * time.Millisecond)
		w.Header().Set("X-Slow", "done")
		_, _ = w.Write([]byte("slow answer"))
	}))
	t.Cleanup(slow.Close)
	up := newEcho(t)
	tg := startGateway(t, is, gatewayConfig(is, jwtRoute("slow", "/slow", slow.URL), jwtRoute("orders", "/orders", up.URL)), nil)
	tok := is.user(t, "usr_alice")
	const n = 5
	type result struct {
		code int
		body string
	}
	results := make(chan result, n)
	for range n {
		go func() {
			req, _ := http.NewRequest("GET", tg.Proxy.URL+"/slow/1", nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				results <- result{code: -1, body: err.Error()}
				return
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			results <- result{resp.StatusCode, resp.Header.Get("X-Slow") + " " + string(b)}
		}()
	}
	for range n {
		select {
		case <-arrived:
		case <-time.After(5 * time.Second):
			t.Fatal("slow requests did not reach the upstream")
		}
	}
	if err := tg.G.Reload([]config.GatewayRoute{jwtRoute("orders", "/orders", up.URL)}); err != nil {
		t.Fatal(err)
	}
	if c := tg.status(t, "/slow/1", tok, nil).StatusCode; c != 404 {
		t.Fatalf("removed route still served to new requests: %d", c)
	}
	for range n {
		r := <-results
		if r.code != 200 || r.body != "done slow answer" {
			t.Fatalf("in-flight request: %d %q", r.code, r.body)
		}
	}
}

func jsonDecode(resp *http.Response, v any) error { return json.NewDecoder(resp.Body).Decode(v) }
