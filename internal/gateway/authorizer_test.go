package gateway

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
)

// authzHost is the Host of the original requests described to the authorizer.
const authzHost = "api.test.example"

// authorizerGateway starts a gateway with routes covering every authorizer
// decision: /orders (jwt, orders:read), /admin (jwt, admin), /public
// (anonymous), /limited (2 per minute per subject), /fwd (token forward)
// and /xorders (token exchange through f).
func authorizerGateway(t *testing.T, is *testIssuer) (*testGateway, *fakeTokenEndpoint) {
	t.Helper()
	up := newEcho(t)
	f := newFakeTokenEndpoint(t)
	limited := jwtRoute("limited", "/limited", up.URL)
	limited.RateLimits = []config.GatewayRateRule{{By: "subject", Rate: 2, Period: config.Duration(time.Minute)}}
	fwd := jwtRoute("fwd", "/fwd", up.URL)
	fwd.Token = "forward"
	x := jwtRoute("xorders", "/xorders", up.URL)
	x.Token, x.Exchange = "exchange", config.GatewayExchange{Audience: ordersAudience}
	public := config.GatewayRoute{Name: "public", PathPrefix: "/public", Upstreams: []string{up.URL}, Token: "strip",
		Auth: config.GatewayAuth{Mode: "anonymous"}}
	cfg := gatewayConfig(is, jwtRoute("orders", "/orders", up.URL, "orders:read"), jwtRoute("admin", "/admin", up.URL, "admin"),
		public, limited, fwd, x)
	cfg.TokenExchange = config.GatewayTokenExchange{TokenEndpoint: f.URL(), ClientID: xchgClientID, ClientSecret: xchgClientSecret}
	return startGateway(t, is, cfg, nil), f
}

// authorize sends one request to the authorizer: path is ForwardAuthPath or
// under EnvoyPrefix; header describes the original request.
func (tg *testGateway) authorize(t *testing.T, method, path, host string, header http.Header) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, tg.Authorizer.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	for k, vs := range header {
		req.Header[k] = append(req.Header[k], vs...)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// traefik describes an original request as Traefik and Caddy do.
func traefik(method, uri, token string) http.Header {
	h := http.Header{"X-Forwarded-Method": {method}, "X-Forwarded-Host": {authzHost}, "X-Forwarded-Uri": {uri},
		"X-Forwarded-Proto": {"https"}}
	if token != "" {
		h.Set("Authorization", "Bearer "+token)
	}
	return h
}

// nginx describes an original request as an nginx auth_request location.
func nginx(method, uri, token string) http.Header {
	h := http.Header{"X-Original-Method": {method}, "X-Forwarded-Host": {authzHost}, "X-Original-Uri": {uri}}
	if token != "" {
		h.Set("Authorization", "Bearer "+token)
	}
	return h
}

// identityNames are the headers an allow answer always carries.
var identityNames = []string{HeaderSubject, HeaderClient, HeaderScopes, HeaderRoles, HeaderTenant, HeaderIssuer, HeaderKind, HeaderRoute}

func TestAuthorizerForwardAuth(t *testing.T) {
	is := newTestIssuer(t)
	tg, _ := authorizerGateway(t, is)
	alice := is.user(t, "usr_alice", "orders:read")
	for name, describe := range map[string]func(string, string, string) http.Header{"traefik": traefik, "nginx": nginx} {
		t.Run(name+"/allow", func(t *testing.T) {
			h := describe("GET", "/orders/1?x=1", alice)
			h.Set("X-Auth-Subject", "usr_admin") // the client's own: overwritten (GW-01)
			resp, body := tg.authorize(t, "GET", ForwardAuthPath, "", h)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			for _, n := range identityNames {
				if len(resp.Header.Values(n)) != 1 {
					t.Errorf("%s: %q, want exactly one value", n, resp.Header.Values(n))
				}
			}
			want := map[string]string{HeaderSubject: "usr_alice", HeaderClient: "web", HeaderScopes: "orders:read",
				HeaderRoles: "", HeaderTenant: "", HeaderIssuer: is.URL, HeaderKind: "user", HeaderRoute: "orders",
				"Authorization": "", "Cache-Control": "no-store"}
			for k, v := range want {
				if got := resp.Header.Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			if _, ok := resp.Header["Authorization"]; !ok {
				t.Error("token: strip must answer an empty Authorization")
			}
		})
		t.Run(name+"/deny", func(t *testing.T) {
			resp, _ := tg.authorize(t, "GET", ForwardAuthPath, "", describe("GET", "/orders/1", ""))
			if resp.StatusCode != 401 || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer ") {
				t.Fatalf("no token: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
			}
			if resp.Header.Get(HeaderSubject) != "" {
				t.Fatal("identity on a denial")
			}
			resp, _ = tg.authorize(t, "GET", ForwardAuthPath, "", describe("GET", "/orders/1", "not.a.jwt"))
			if resp.StatusCode != 401 || !strings.Contains(resp.Header.Get("WWW-Authenticate"), "invalid_token") {
				t.Fatalf("bad token: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
			}
			resp, _ = tg.authorize(t, "GET", ForwardAuthPath, "", describe("GET", "/admin/x", alice))
			if resp.StatusCode != 403 || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="insufficient_scope"`) {
				t.Fatalf("scope: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
			}
			resp, _ = tg.authorize(t, "GET", ForwardAuthPath, "", describe("GET", "/nowhere", alice))
			if resp.StatusCode != 404 {
				t.Fatalf("no route: %d", resp.StatusCode)
			}
		})
	}
}

func TestAuthorizerRateLimit(t *testing.T) {
	is := newTestIssuer(t)
	tg, _ := authorizerGateway(t, is)
	tok := is.user(t, "usr_rl")
	for i := range 2 {
		resp, body := tg.authorize(t, "GET", ForwardAuthPath, "", traefik("GET", "/limited", tok))
		if resp.StatusCode != 200 || resp.Header.Get("RateLimit-Remaining") != []string{"1", "0"}[i] {
			t.Fatalf("request %d: %d remaining %q: %s", i, resp.StatusCode, resp.Header.Get("RateLimit-Remaining"), body)
		}
	}
	resp, _ := tg.authorize(t, "GET", ForwardAuthPath, "", traefik("GET", "/limited", tok))
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" || resp.Header.Get("RateLimit-Limit") != "2" {
		t.Fatalf("status %d, headers %v", resp.StatusCode, resp.Header)
	}
}

func TestAuthorizerBadDescription(t *testing.T) {
	is := newTestIssuer(t)
	tg, _ := authorizerGateway(t, is)
	tok := is.user(t, "usr_alice", "orders:read")
	ok := traefik("GET", "/orders/1", tok)
	mod := func(f func(h http.Header)) http.Header {
		h := ok.Clone()
		f(h)
		return h
	}
	tests := []struct {
		name string
		path string
		h    http.Header
	}{
		{"missing method", ForwardAuthPath, mod(func(h http.Header) { h.Del("X-Forwarded-Method") })},
		{"missing host", ForwardAuthPath, mod(func(h http.Header) { h.Del("X-Forwarded-Host") })},
		{"missing uri", ForwardAuthPath, mod(func(h http.Header) { h.Del("X-Forwarded-Uri") })},
		{"relative uri", ForwardAuthPath, mod(func(h http.Header) { h.Set("X-Forwarded-Uri", "orders/1") })},
		{"absolute uri", ForwardAuthPath, mod(func(h http.Header) { h.Set("X-Forwarded-Uri", "http://evil/orders/1") })},
		{"duplicated method", ForwardAuthPath, mod(func(h http.Header) { h.Add("X-Forwarded-Method", "POST") })},
		{"duplicated host", ForwardAuthPath, mod(func(h http.Header) { h.Add("X-Forwarded-Host", "other.example") })},
		{"duplicated uri", ForwardAuthPath, mod(func(h http.Header) { h.Add("X-Forwarded-Uri", "/public") })},
		{"GW-03/uri in both styles", ForwardAuthPath, mod(func(h http.Header) { h.Set("X-Original-Uri", "/admin") })},
		{"GW-03/method in both styles", ForwardAuthPath, mod(func(h http.Header) { h.Set("X-Original-Method", "DELETE") })},
		{"empty host", ForwardAuthPath, mod(func(h http.Header) { h.Set("X-Forwarded-Host", "") })},
		{"GW-04/token in the described query", ForwardAuthPath, mod(func(h http.Header) { h.Set("X-Forwarded-Uri", "/orders/1?access_token="+tok) })},
		{"GW-04/two Authorization headers", ForwardAuthPath, mod(func(h http.Header) { h.Add("Authorization", "Bearer "+tok) })},
		{"unknown authorizer path", "/auth", ok},
		{"prefix of the envoy path", "/envoyx/orders/1", ok},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := tg.authorize(t, "GET", tc.path, "", tc.h)
			if resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			if resp.Header.Get(HeaderSubject) != "" || resp.Header.Get(HeaderRoute) != "" {
				t.Fatal("identity on a refusal")
			}
		})
	}
}

func TestAuthorizerEnvoy(t *testing.T) {
	is := newTestIssuer(t)
	tg, _ := authorizerGateway(t, is)
	alice := is.user(t, "usr_alice", "orders:read")
	bearer := func(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }
	resp, body := tg.authorize(t, "POST", EnvoyPrefix+"/orders/1?x=1", authzHost, bearer(alice))
	if resp.StatusCode != 200 || resp.Header.Get(HeaderSubject) != "usr_alice" || resp.Header.Get(HeaderRoute) != "orders" {
		t.Fatalf("allow: %d %v %s", resp.StatusCode, resp.Header, body)
	}
	if _, ok := resp.Header[HeaderTenant]; !ok {
		t.Fatal("X-Auth-Tenant missing from the allow answer")
	}
	tests := []struct {
		name, path, token string
		want              int
	}{
		{"no token", "/orders/1", "", 401},
		{"scope", "/admin/1", alice, 403},
		{"anonymous", "/public/x", "", 200},
		{"root", "", "", 404},
		{"GW-03/dotdot", "/public/../admin", "", 401},
		{"GW-03/encoded dot", "/public/%2e%2e/admin", "", 401},
		{"GW-03/encoded slash", "/public%2fadmin", "", 400},
		{"GW-03/double encoded", "/public%252fadmin", "", 400},
		{"GW-03/above root", "/../admin", "", 400},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			if tc.token != "" {
				h = bearer(tc.token)
			}
			resp, body := tg.authorize(t, "GET", EnvoyPrefix+tc.path, authzHost, h)
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.want, body)
			}
		})
	}
}

// TestAuthorizerPathAttacks: a path in X-Forwarded-Uri is decided exactly
// as the proxy decides the same request line (GW-03).
func TestAuthorizerPathAttacks(t *testing.T) {
	is := newTestIssuer(t)
	tg, _ := authorizerGateway(t, is)
	alice := is.user(t, "usr_alice", "orders:read")
	tests := []struct {
		name, uri, token string
		want             int
	}{
		{"GW-03/public", "/public/x", "", 200},
		{"GW-03/dotdot", "/public/../admin", "", 401},
		{"GW-03/dotdot with token", "/orders/../admin/x", alice, 403},
		{"GW-03/encoded dotdot", "/public/%2e%2e/admin", "", 401},
		{"GW-03/mixed case encoded dotdot", "/public/%2E%2e/admin", "", 401},
		{"GW-03/encoded slash", "/public%2fadmin", "", 400},
		{"GW-03/encoded slash upper", "/public%2Fadmin", "", 400},
		{"GW-03/double encoded slash", "/public%252f..%252fadmin", "", 400},
		{"GW-03/backslash", "/public%5c..%5cadmin", "", 400},
		{"GW-03/nul", "/public%00/admin", "", 400},
		{"GW-03/double slash", "//admin", "", 401},
		{"GW-03/dot segment", "/./admin", "", 401},
		{"GW-03/path parameter", "/admin;public", "", 400},
		{"GW-03/query is not the path", "/admin?/public", "", 401},
		{"GW-03/prefix is whole segments", "/publicity", "", 404},
		{"GW-03/case", "/PUBLIC/x", "", 404},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := tg.authorize(t, "GET", ForwardAuthPath, "", traefik("GET", tc.uri, tc.token))
			if resp.StatusCode != tc.want {
				t.Fatalf("authorizer: status %d, want %d: %s", resp.StatusCode, tc.want, body)
			}
			h := http.Header{}
			if tc.token != "" {
				h.Set("Authorization", "Bearer "+tc.token)
			}
			presp, pbody := tg.do(t, "GET", tc.uri, "", h)
			if presp.StatusCode != tc.want {
				t.Fatalf("proxy: status %d, want %d: %s", presp.StatusCode, tc.want, pbody)
			}
		})
	}
	for _, uri := range []string{"/public/x#frag", "/public#/../admin", "/admin#"} {
		t.Run("GW-03/fragment "+uri, func(t *testing.T) {
			resp, body := tg.authorize(t, "GET", ForwardAuthPath, "", traefik("GET", uri, ""))
			if resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
		})
	}
}

func TestAuthorizerTokenModes(t *testing.T) {
	is := newTestIssuer(t)
	tg, f := authorizerGateway(t, is)
	tok := is.user(t, "usr_alice", "orders:read")
	resp, body := tg.authorize(t, "GET", ForwardAuthPath, "", traefik("GET", "/xorders/1", tok))
	got := resp.Header.Get("Authorization")
	if resp.StatusCode != 200 || !strings.HasPrefix(got, "Bearer xchg.") || strings.Contains(got, tok) {
		t.Fatalf("exchange: %d %q %s", resp.StatusCode, got, body)
	}
	if f.lastForm().Get("audience") != ordersAudience || f.lastForm().Get("subject_token") != tok {
		t.Fatalf("exchange form %v", f.lastForm())
	}
	resp, _ = tg.authorize(t, "GET", ForwardAuthPath, "", traefik("GET", "/xorders/2", tok))
	if resp.Header.Get("Authorization") != got || f.calls.Load() != 1 {
		t.Fatalf("exchange not cached: %d calls", f.calls.Load())
	}
	resp, _ = tg.authorize(t, "GET", ForwardAuthPath, "", traefik("GET", "/fwd/1", tok))
	if resp.StatusCode != 200 {
		t.Fatalf("forward: %d", resp.StatusCode)
	}
	if _, ok := resp.Header["Authorization"]; ok {
		t.Fatalf("token: forward must leave the client's Authorization alone, got %q", resp.Header.Values("Authorization"))
	}
	resp, _ = tg.authorize(t, "GET", ForwardAuthPath, "", traefik("GET", "/public/x", tok))
	if v, ok := resp.Header["Authorization"]; resp.StatusCode != 200 || !ok || len(v) != 1 || v[0] != "" {
		t.Fatalf("strip: %d %q", resp.StatusCode, v)
	}
	// An anonymous route answers every identity header, all empty (GW-01).
	h := traefik("GET", "/public/x", "")
	h.Set("X-Auth-Subject", "usr_admin")
	h.Set("X-Auth-Roles", "admin")
	resp, _ = tg.authorize(t, "GET", ForwardAuthPath, "", h)
	for _, n := range identityNames {
		v := resp.Header.Values(n)
		if len(v) != 1 || (n != HeaderRoute && v[0] != "") {
			t.Errorf("anonymous %s = %q", n, v)
		}
	}
}

// TestAuthorizerOnly: a gateway with no proxy listener and routes without
// upstreams validates and serves the authorizer; the proxy handler has no
// route to send them to.
func TestAuthorizerOnly(t *testing.T) {
	is := newTestIssuer(t)
	cfg := gatewayConfig(is, config.GatewayRoute{Name: "orders", PathPrefix: "/orders", Token: "strip",
		Auth: config.GatewayAuth{Mode: "jwt", Audience: testAudience, ScopesAll: []string{"orders:read"}}})
	cfg.Listen = ""
	tg := startGateway(t, is, cfg, nil)
	tok := is.user(t, "usr_alice", "orders:read")
	resp, body := tg.authorize(t, "GET", ForwardAuthPath, "", traefik("GET", "/orders/1", tok))
	if resp.StatusCode != 200 || resp.Header.Get(HeaderSubject) != "usr_alice" {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	resp, _ = tg.authorize(t, "GET", ForwardAuthPath, "", traefik("GET", "/orders/1", ""))
	if resp.StatusCode != 401 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if resp, _ := tg.do(t, "GET", "/orders/1", tok, nil); resp.StatusCode != 404 {
		t.Fatalf("proxy served an authorizer-only route: %d", resp.StatusCode)
	}
}
