package gateway

import (
	"bufio"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gatehouse/gatehouse/internal/config"
)

func TestRouting(t *testing.T) {
	is := newTestIssuer(t)
	up := newEcho(t)
	get := func(name string) config.GatewayRoute {
		r := anonRoute(name, "/orders", up.URL)
		r.Methods = []string{"GET"}
		return r
	}
	exact, wild := anonRoute("exact", "/r", up.URL), anonRoute("wild", "/r", up.URL)
	exact.Hosts, wild.Hosts = []string{"api.example.com"}, []string{"*.example.com"}
	read, write := anonRoute("items-read", "/items", up.URL), anonRoute("items-write", "/items", up.URL)
	read.Methods, write.Methods = []string{"GET", "HEAD"}, []string{"POST"}
	tg := startGateway(t, is, gatewayConfig(is, read, write, anonRoute("any", "/r", up.URL), wild, exact,
		get("orders"), anonRoute("orders-deep", "/orders/admin", up.URL), anonRoute("deep", "/a/b/c", up.URL),
		anonRoute("shallow", "/a", up.URL)), nil)
	for _, c := range []struct {
		name, method, host, path string
		status                   int
		route                    string
	}{
		{"exact-host", "GET", "api.example.com", "/r", 200, "exact"},
		{"exact-host-case-port", "GET", "API.Example.COM:8443", "/r/x", 200, "exact"},
		{"exact-host-trailing-dot", "GET", "api.example.com.", "/r", 200, "exact"},
		{"wildcard-one-label", "GET", "a.example.com", "/r", 200, "wild"},
		{"wildcard-two-labels", "GET", "a.b.example.com", "/r", 200, "wild"},
		{"wildcard-not-apex", "GET", "example.com", "/r", 200, "any"},
		{"wildcard-not-suffix-lookalike", "GET", "evilexample.com", "/r", 200, "any"},
		{"any-host", "GET", "other.test", "/r/1", 200, "any"},
		{"prefix-exact", "GET", "", "/orders", 200, "orders"},
		{"prefix-child", "GET", "", "/orders/1", 200, "orders"},
		{"prefix-trailing-slash", "GET", "", "/orders/", 200, "orders"},
		{"prefix-not-segment", "GET", "", "/orders-admin", 404, ""},
		{"prefix-not-segment-2", "GET", "", "/ordersx/1", 404, ""},
		{"longest-prefix-wins", "GET", "", "/orders/admin/1", 200, "orders-deep"},
		{"longest-prefix-any-method", "DELETE", "", "/orders/admin", 200, "orders-deep"},
		{"longest-prefix-config-order", "GET", "", "/a/b/c/d", 200, "deep"},
		{"shorter-prefix", "GET", "", "/a/b", 200, "shallow"},
		{"method-mismatch-405", "POST", "", "/orders/1", 405, ""},
		{"same-prefix-by-method-get", "GET", "", "/items/1", 200, "items-read"},
		{"same-prefix-by-method-post", "POST", "", "/items", 200, "items-write"},
		{"same-prefix-neither-method", "DELETE", "", "/items/1", 405, ""},
		{"no-route-404", "GET", "", "/nothing", 404, ""},
		{"root-404", "GET", "", "/", 404, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp, body := tg.send(t, newReq(t, tg, c.method, c.host, c.path, nil))
			if resp.StatusCode != c.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, c.status, body)
			}
			if c.route == "" {
				var e map[string]string
				if err := json.Unmarshal([]byte(body), &e); err != nil || e["error"] == "" {
					t.Fatalf("refusal is not a JSON error: %s", body)
				}
				return
			}
			if got := seen(t, body).Header.Get(HeaderRoute); got != c.route {
				t.Fatalf("route %q, want %q", got, c.route)
			}
		})
	}
}

func TestStripPrefixAndQuery(t *testing.T) {
	is := newTestIssuer(t)
	up := newEcho(t)
	strip := anonRoute("svc", "/svc", up.URL+"/base/")
	strip.StripPrefix = true
	keep := anonRoute("keep", "/keep", up.URL+"/b")
	tg := startGateway(t, is, gatewayConfig(is, strip, keep), nil)
	for _, c := range []struct{ path, wantRaw, wantQuery string }{
		{"/svc/a/b?x=1&y=%2F", "/base/a/b", "x=1&y=%2F"},
		{"/svc", "/base/", ""},
		{"/svc/", "/base/", ""},
		{"/svc/a%20b/c%3Fd", "/base/a%20b/c%3Fd", ""},
		{"/keep/x?q=a+b", "/b/keep/x", "q=a+b"},
	} {
		t.Run(c.path, func(t *testing.T) {
			resp, body := tg.do(t, "GET", c.path, "", nil)
			if resp.StatusCode != 200 {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			e := seen(t, body)
			if e.RawPath != c.wantRaw || e.Query != c.wantQuery {
				t.Fatalf("upstream got path %q query %q, want %q %q", e.RawPath, e.Query, c.wantRaw, c.wantQuery)
			}
		})
	}
}

func TestRequestID(t *testing.T) {
	is := newTestIssuer(t)
	up := newEcho(t)
	t.Run("generated-unique-echoed", func(t *testing.T) {
		tg := startGateway(t, is, gatewayConfig(is, anonRoute("r", "/", up.URL)), nil)
		ids := map[string]bool{}
		for range 5 {
			resp, body := tg.do(t, "GET", "/x", "", http.Header{"X-Request-Id": {"attacker-chosen"}})
			id := resp.Header.Get(HeaderReqID)
			if id == "" || id == "attacker-chosen" || ids[id] {
				t.Fatalf("request id %q (seen %v)", id, ids)
			}
			ids[id] = true
			if e := seen(t, body); e.Header.Values(HeaderReqID)[0] != id || len(e.Header.Values(HeaderReqID)) != 1 {
				t.Fatalf("upstream got %q, client %q", e.Header.Values(HeaderReqID), id)
			}
		}
	})
	t.Run("trusted-proxy-id-kept", func(t *testing.T) {
		cfg := gatewayConfig(is, anonRoute("r", "/", up.URL))
		cfg.TrustedProxies = []string{"127.0.0.1/32"}
		tg := startGateway(t, is, cfg, nil)
		resp, body := tg.do(t, "GET", "/x", "", http.Header{"X-Request-Id": {"lb-123.abc"}})
		if resp.Header.Get(HeaderReqID) != "lb-123.abc" || seen(t, body).Header.Get(HeaderReqID) != "lb-123.abc" {
			t.Fatalf("trusted id not kept: %q", resp.Header.Get(HeaderReqID))
		}
		resp, _ = tg.do(t, "GET", "/x", "", http.Header{"X-Request-Id": {"bad id\t<script>"}})
		if resp.Header.Get(HeaderReqID) == "bad id\t<script>" {
			t.Fatal("malformed id kept")
		}
	})
}

func TestUpstreamFailures(t *testing.T) {
	is := newTestIssuer(t)
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(3 * time.Second):
		}
	}))
	t.Cleanup(slow.Close)
	up := newEcho(t)
	dead := deadUpstream(t)
	timeout := anonRoute("slow", "/slow", slow.URL)
	timeout.Timeout = config.Duration(200 * time.Millisecond)
	retry := anonRoute("retry", "/retry", dead+"/v1")
	retry.Upstreams = append(retry.Upstreams, up.URL+"/v2")
	retry.Retries = 1
	tg := startGateway(t, is, gatewayConfig(is, anonRoute("down", "/down", dead), timeout, retry), nil)

	jsonErr := func(t *testing.T, resp *http.Response, body string, status int, code string) {
		t.Helper()
		var e map[string]string
		if resp.StatusCode != status || json.Unmarshal([]byte(body), &e) != nil || e["error"] != code ||
			!strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
			t.Fatalf("got %d %q %s, want %d %s", resp.StatusCode, resp.Header.Get("Content-Type"), body, status, code)
		}
	}
	t.Run("down-502", func(t *testing.T) {
		resp, body := tg.do(t, "GET", "/down", "", nil)
		jsonErr(t, resp, body, 502, "bad_gateway")
	})
	t.Run("timeout-504", func(t *testing.T) {
		start := time.Now()
		resp, body := tg.do(t, "GET", "/slow", "", nil)
		jsonErr(t, resp, body, 504, "upstream_timeout")
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("took %v", d)
		}
	})
	t.Run("get-retried", func(t *testing.T) {
		for i := range 4 {
			resp, body := tg.do(t, "GET", "/retry/x%20y", "", nil)
			if resp.StatusCode != 200 {
				t.Fatalf("GET %d: %d %s", i, resp.StatusCode, body)
			}
			if e := seen(t, body); e.RawPath != "/v2/retry/x%20y" {
				t.Fatalf("GET %d: upstream got %q (the retried upstream's base path)", i, e.RawPath)
			}
		}
	})
	t.Run("post-not-retried", func(t *testing.T) {
		codes := map[int]int{}
		for range 4 {
			resp, _ := tg.do(t, "POST", "/retry/x", "", nil)
			codes[resp.StatusCode]++
		}
		if codes[502] != 2 || codes[200] != 2 {
			t.Fatalf("POST answers %v, want two 200 and two 502 (round robin, no retry)", codes)
		}
	})
	if n := metricValue(t, tg.G, "gatehouse_gateway_upstream_errors_total", "route", "down"); n != 1 {
		t.Fatalf("upstream errors for down = %v", n)
	}
}

func TestRoundRobin(t *testing.T) {
	is := newTestIssuer(t)
	a, b := newEcho(t), newEcho(t)
	r := anonRoute("rr", "/", a.URL)
	r.Upstreams = append(r.Upstreams, b.URL)
	tg := startGateway(t, is, gatewayConfig(is, r), nil)
	hosts := map[string]int{}
	for range 6 {
		_, body := tg.do(t, "GET", "/", "", nil)
		hosts[seen(t, body).Host]++
	}
	if hosts[strings.TrimPrefix(a.URL, "http://")] != 3 || hosts[strings.TrimPrefix(b.URL, "http://")] != 3 {
		t.Fatalf("distribution %v", hosts)
	}
}

func TestStreaming(t *testing.T) {
	is := newTestIssuer(t)
	release := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = w.Write([]byte("data: first\n"))
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-time.After(5 * time.Second):
		}
		_, _ = w.Write([]byte("data: second\n"))
	}))
	t.Cleanup(up.Close)
	tg := startGateway(t, is, gatewayConfig(is, anonRoute("sse", "/", up.URL)), nil)
	resp, err := http.Get(tg.Proxy.URL + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got := make(chan string, 1)
	br := bufio.NewReader(resp.Body)
	go func() { l, _ := br.ReadString('\n'); got <- l }()
	select {
	case l := <-got:
		if l != "data: first\n" {
			t.Fatalf("first chunk %q", l)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("first chunk not received before the upstream finished")
	}
	close(release)
	if l, _ := br.ReadString('\n'); l != "data: second\n" {
		t.Fatalf("second chunk %q", l)
	}
}

func TestCORS(t *testing.T) {
	is := newTestIssuer(t)
	up, hits := newCountingEcho(t)
	policy := &config.GatewayCORS{AllowedOrigins: []string{"https://app.example"}, AllowedMethods: []string{"GET", "PUT"},
		AllowedHeaders: []string{"Content-Type", "X-Custom"}, ExposedHeaders: []string{"X-Request-Id"},
		AllowCredentials: true, MaxAge: config.Duration(10 * time.Minute)}
	// An upstream with its own (too broad) CORS answer.
	loose := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Access-Control-Allow-Origin", "*")
		w.Header().Set("Access-Control-Allow-Credentials", "true")
	}))
	t.Cleanup(loose.Close)
	lr := anonRoute("loose", "/loose", loose.URL)
	lr.CORS = policy
	anon, jwt := anonRoute("anon", "/anon", up.URL), jwtRoute("jwt", "/jwt", up.URL)
	anon.CORS, jwt.CORS = policy, policy
	tg := startGateway(t, is, gatewayConfig(is, anon, jwt, lr, anonRoute("nocors", "/nocors", up.URL)), nil)
	pre := func(path, origin, method, headers string) http.Header {
		h := http.Header{"Origin": {origin}, "Access-Control-Request-Method": {method}}
		if headers != "" {
			h.Set("Access-Control-Request-Headers", headers)
		}
		resp, body := tg.send(t, newReq(t, tg, "OPTIONS", "", path, h))
		if resp.StatusCode != http.StatusNoContent {
			t.Fatalf("preflight status %d: %s", resp.StatusCode, body)
		}
		return resp.Header
	}
	for _, path := range []string{"/anon/x", "/jwt/x"} {
		t.Run("preflight-allowed"+path, func(t *testing.T) {
			h := pre(path, "https://app.example", "PUT", "content-type, X-Custom")
			if h.Get("Access-Control-Allow-Origin") != "https://app.example" || h.Get("Access-Control-Allow-Credentials") != "true" ||
				!strings.Contains(h.Get("Access-Control-Allow-Methods"), "PUT") || h.Get("Access-Control-Max-Age") != "600" ||
				!strings.Contains(h.Get("Access-Control-Allow-Headers"), "X-Custom") {
				t.Fatalf("preflight headers %v", h)
			}
		})
		for name, c := range map[string][3]string{
			"origin": {"https://evil.example", "GET", ""}, "origin-suffix": {"https://app.example.evil", "GET", ""},
			"origin-null": {"null", "GET", ""}, "method": {"https://app.example", "DELETE", ""},
			"header": {"https://app.example", "GET", "X-Custom, X-Evil"},
		} {
			t.Run("preflight-refused-"+name+path, func(t *testing.T) {
				if h := pre(path, c[0], c[1], c[2]); h.Get("Access-Control-Allow-Origin") != "" || h.Get("Access-Control-Allow-Methods") != "" {
					t.Fatalf("refused preflight got CORS headers %v", h)
				}
			})
		}
	}
	if n := hits(); n != 0 {
		t.Fatalf("preflights reached the upstream %d times", n)
	}
	t.Run("actual", func(t *testing.T) {
		tok := is.user(t, "usr_alice")
		for _, c := range []struct {
			path, origin, token string
			status              int
			allow               string
		}{
			{"/anon/x", "https://app.example", "", 200, "https://app.example"},
			{"/anon/x", "https://evil.example", "", 200, ""},
			{"/jwt/x", "https://app.example", tok, 200, "https://app.example"},
			{"/jwt/x", "https://evil.example", tok, 200, ""},
			{"/jwt/x", "https://app.example", "", 401, "https://app.example"},
			{"/nocors/x", "https://app.example", "", 200, ""},
			{"/loose/x", "https://evil.example", "", 200, ""},
			{"/loose/x", "https://app.example", "", 200, "https://app.example"},
		} {
			resp, body := tg.do(t, "GET", c.path, c.token, http.Header{"Origin": {c.origin}})
			h := resp.Header
			if resp.StatusCode != c.status || h.Get("Access-Control-Allow-Origin") != c.allow {
				t.Fatalf("%s from %s: %d ACAO %q: %s", c.path, c.origin, resp.StatusCode, h.Get("Access-Control-Allow-Origin"), body)
			}
			if c.allow != "" && (h.Get("Access-Control-Allow-Credentials") != "true" || h.Get("Access-Control-Expose-Headers") != "X-Request-Id") {
				t.Fatalf("credentials/expose headers missing: %v", h)
			}
			if len(h.Values("Access-Control-Allow-Origin")) > 1 || len(h.Values("Access-Control-Allow-Credentials")) > 1 {
				t.Fatalf("repeated CORS headers: %v", h)
			}
			if c.allow == "" && h.Get("Access-Control-Allow-Credentials") != "" {
				t.Fatalf("credentials allowed for a refused origin: %v", h)
			}
		}
	})
}

func TestTokenModesAndIdentity(t *testing.T) {
	is := newTestIssuer(t)
	up := newEcho(t)
	fwd := jwtRoute("fwd", "/fwd", up.URL)
	fwd.Token = "forward"
	anonFwd := anonRoute("anon-fwd", "/anon-fwd", up.URL)
	anonFwd.Token = "forward"
	tg := startGateway(t, is, gatewayConfig(is, fwd, jwtRoute("strip", "/strip", up.URL), anonRoute("anon", "/anon", up.URL), anonFwd), nil)
	user := is.mint(t, map[string]any{"sub": "usr_alice", "client_id": "web", "scope": "orders:read orders:write",
		"roles": []string{"admin", "ops"}, "tenant": "acme"})
	client := is.mint(t, map[string]any{"sub": "svc-billing", "client_id": "svc-billing", "scope": "billing"})
	forged := http.Header{"X-Auth-Subject": {"usr_root"}, "X-Auth-Kind": {"user"}, "X-Auth-Roles": {"superuser"}}
	for _, c := range []struct {
		name, path, token string
		wantAuthz         string
		want              map[string]string // "" = must be absent
	}{
		{"forward", "/fwd/x", user, "Bearer " + user, map[string]string{HeaderSubject: "usr_alice", HeaderClient: "web",
			HeaderScopes: "orders:read orders:write", HeaderRoles: "admin ops", HeaderTenant: "acme", HeaderKind: "user",
			HeaderIssuer: is.URL, HeaderRoute: "fwd"}},
		{"strip", "/strip/x", user, "", map[string]string{HeaderSubject: "usr_alice", HeaderKind: "user"}},
		{"client-kind", "/strip/x", client, "", map[string]string{HeaderSubject: "svc-billing", HeaderClient: "svc-billing",
			HeaderKind: "client", HeaderScopes: "billing", HeaderRoles: "", HeaderTenant: ""}},
		{"anonymous-no-token", "/anon/x", "", "", map[string]string{HeaderSubject: "", HeaderKind: "", HeaderRoles: "", HeaderRoute: "anon"}},
		{"anonymous-token-stripped", "/anon/x", user, "", map[string]string{HeaderSubject: "", HeaderKind: ""}},
		{"anonymous-forward", "/anon-fwd/x", user, "Bearer " + user, map[string]string{HeaderSubject: ""}},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp, body := tg.do(t, "GET", c.path, c.token, forged)
			if resp.StatusCode != 200 {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			e := seen(t, body)
			if got := strings.Join(e.Header.Values("Authorization"), ","); got != c.wantAuthz {
				t.Fatalf("upstream Authorization %q, want %q", got, c.wantAuthz)
			}
			for k, v := range c.want {
				if got := e.Header.Values(k); (v == "" && len(got) != 0) || (v != "" && (len(got) != 1 || got[0] != v)) {
					t.Errorf("upstream %s = %q, want %q", k, got, v)
				}
			}
		})
	}
	t.Run("no-token-401", func(t *testing.T) {
		resp, _ := tg.do(t, "GET", "/strip/x", "", nil)
		if resp.StatusCode != 401 || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
			t.Fatalf("status %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
		}
	})
}

func TestAccessLogAndMetrics(t *testing.T) {
	is := newTestIssuer(t)
	up := newEcho(t)
	tg := startGateway(t, is, gatewayConfig(is, jwtRoute("orders", "/orders", up.URL, "orders:read")), nil)
	tok := is.user(t, "usr_alice", "orders:read")
	bad := is.user(t, "usr_alice", "other")
	const secret = "s3cr3t-query-value"
	steps := []struct {
		path, token string
		status      int
	}{
		{"/orders/1?api_key=" + secret, tok, 200},
		{"/orders/1?x=" + secret, bad, 403},
		{"/orders/1?access_token=" + tok, "", 400},
		{"/orders/1?x=" + secret, "not-a-jwt", 401},
		{"/nothing?x=" + secret, "", 404},
	}
	var ids []string
	for _, s := range steps {
		resp, body := tg.do(t, "GET", s.path, s.token, nil)
		if resp.StatusCode != s.status {
			t.Fatalf("%s: %d, want %d: %s", s.path, resp.StatusCode, s.status, body)
		}
		ids = append(ids, resp.Header.Get(HeaderReqID))
	}
	// The access line is written after the answer: wait for the last one.
	tg.waitLog(t, func(l string) bool { return strings.Count(l, `"msg":"access"`) >= len(steps) })
	logs := tg.Logs.String()
	for _, leak := range []string{tok, bad, secret, "api_key", "access_token="} {
		if strings.Contains(logs, leak) {
			t.Fatalf("log contains %q:\n%s", leak, logs)
		}
	}
	var access []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line is not JSON: %q", line)
		}
		if m["msg"] == "access" {
			access = append(access, m)
		}
	}
	if len(access) != len(steps) {
		t.Fatalf("%d access lines for %d requests:\n%s", len(access), len(steps), logs)
	}
	for i, m := range access {
		wantRoute := "orders"
		if i == len(steps)-1 {
			wantRoute = "-"
		}
		if m["request_id"] != ids[i] || m["route"] != wantRoute || m["status"] != float64(steps[i].status) {
			t.Errorf("access line %d = %v, want id %s route %s status %d", i, m, ids[i], wantRoute, steps[i].status)
		}
	}
	g := tg.G
	for _, c := range []struct {
		got  float64
		want float64
		name string
	}{
		{metricValue(t, g, "gatehouse_gateway_requests_total", "route", "orders", "code", "2xx", "decision", "allow"), 1, "requests 2xx"},
		{metricValue(t, g, "gatehouse_gateway_denied_total", "route", "orders", "reason", "rule"), 1, "denied rule"},
		{metricValue(t, g, "gatehouse_gateway_denied_total", "route", "orders", "reason", "invalid_token"), 1, "denied invalid_token"},
		{metricValue(t, g, "gatehouse_gateway_denied_total", "route", "orders", "reason", "bad_authorization"), 1, "denied bad_authorization"},
		{metricValue(t, g, "gatehouse_gateway_denied_total", "route", "-", "reason", "no_route"), 1, "denied no_route"},
		{metricValue(t, g, "gatehouse_gateway_request_duration_seconds", "route", "orders"), 1, "duration observations"},
	} {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

// metricValue gathers the gateway's collectors and returns the value of the
// counter (or the sample count of the histogram) name whose labels include
// the given name/value pairs, summed over matching series.
func metricValue(t *testing.T, g *Gateway, name string, labels ...string) float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	for _, c := range g.Collectors() {
		if err := reg.Register(c); err != nil {
			t.Fatal(err)
		}
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, l := range m.GetLabel() {
					found = found || (l.GetName() == labels[i] && l.GetValue() == labels[i+1])
				}
				if !found {
					continue series
				}
			}
			sum += m.GetCounter().GetValue() + float64(m.GetHistogram().GetSampleCount())
		}
	}
	return sum
}

func TestClientGoneLogged499(t *testing.T) {
	is := newTestIssuer(t)
	arrived := make(chan struct{}, 1)
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		select {
		case <-r.Context().Done():
		case <-time.After(3 * time.Second):
		}
	}))
	t.Cleanup(slow.Close)
	tg := startGateway(t, is, gatewayConfig(is, anonRoute("slow", "/", slow.URL)), nil)
	ctx, cancel := testContext(t, 5*time.Second)
	req, _ := http.NewRequestWithContext(ctx, "GET", tg.Proxy.URL+"/x", nil)
	go func() { <-arrived; cancel() }()
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		t.Fatal("request was not cancelled")
	}
	deadline := time.Now().Add(3 * time.Second)
	for !strings.Contains(tg.Logs.String(), `"msg":"access"`) {
		if time.Now().After(deadline) {
			t.Fatalf("no access line: %s", tg.Logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !strings.Contains(tg.Logs.String(), `"status":499`) {
		t.Fatalf("client-gone request not logged as 499: %s", tg.Logs.String())
	}
	if n := metricValue(t, tg.G, "gatehouse_gateway_requests_total", "route", "slow", "code", "2xx"); n != 0 {
		t.Fatalf("client-gone request counted as 2xx")
	}
}

func TestEarlyHintsStatusLogged(t *testing.T) {
	is := newTestIssuer(t)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</style.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		w.WriteHeader(http.StatusCreated)
	}))
	t.Cleanup(up.Close)
	tg := startGateway(t, is, gatewayConfig(is, anonRoute("hints", "/", up.URL)), nil)
	if resp, _ := tg.do(t, "GET", "/x", "", nil); resp.StatusCode != http.StatusCreated {
		t.Fatalf("status %d", resp.StatusCode)
	}
	tg.waitLog(t, func(l string) bool { return strings.Contains(l, `"msg":"access"`) })
	if !strings.Contains(tg.Logs.String(), `"status":201`) {
		t.Fatalf("final status not logged: %s", tg.Logs.String())
	}
}

// waitLog waits (up to 5 s) until the logs satisfy ok: access lines are
// written after the answer has been sent.
func (tg *testGateway) waitLog(t *testing.T, ok func(logs string) bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !ok(tg.Logs.String()) {
		if time.Now().After(deadline) {
			t.Fatalf("expected log lines did not appear:\n%s", tg.Logs.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}
