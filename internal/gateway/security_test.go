package gateway

import (
	"bufio"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
)

// rawDo writes a hand-made request (Go's client would clean the path) to
// the proxy and reads the answer.
func rawDo(t *testing.T, tg *testGateway, raw string) (*http.Response, string) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(tg.Proxy.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	// Written concurrently: the server may answer (431) and close before
	// reading a huge request to its end.
	go func() { _, _ = io.WriteString(conn, raw) }()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("reading the answer to %q: %v", raw[:min(len(raw), 80)], err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// rawGet is rawDo for "GET target" with a bearer token (may be empty).
func rawGet(t *testing.T, tg *testGateway, target, token string) (*http.Response, string) {
	t.Helper()
	raw := "GET " + target + " HTTP/1.1\r\nHost: api.test\r\nConnection: close\r\n"
	if token != "" {
		raw += "Authorization: Bearer " + token + "\r\n"
	}
	return rawDo(t, tg, raw+"\r\n")
}

// identityLike reports whether an upstream header name is one of the
// identity headers or a case/underscore variant of one.
func identityLike(name string) bool {
	n := strings.ToLower(strings.ReplaceAll(name, "_", "-"))
	return strings.HasPrefix(n, "x-auth-") || strings.HasPrefix(n, "x-user") || strings.Contains(n, "forwarded-user") ||
		strings.Contains(n, "client-cert") || strings.HasPrefix(n, "remote-")
}

func TestGW01IdentityHeaders(t *testing.T) {
	is := newTestIssuer(t)
	up := newEcho(t)
	tg := startGateway(t, is, gatewayConfig(is, jwtRoute("api", "/api", up.URL), anonRoute("pub", "/pub", up.URL)), nil)
	tok := is.mint(t, map[string]any{"sub": "usr_alice", "client_id": "web", "scope": "read"})
	forged := map[string]string{
		"x-auth-subject": "X-Auth-Subject: admin\r\n", "underscore": "x_auth_subject: admin\r\nX_Auth_Subject: admin\r\n",
		"upper": "X-AUTH-SUBJECT: admin\r\n", "duplicates": "X-Auth-Subject: usr_root\r\nX-Auth-Subject: admin\r\n",
		"mixed-underscore": "X-Auth_Roles: superuser\r\nx-auth-kind: user\r\nX-Auth-Tenant: other\r\n",
		"forwarded-user":   "X-Forwarded-User: admin\r\nX_Forwarded_User: admin\r\nX-Forwarded-Email: a@b\r\n",
		"client-cert":      "Client-Cert: :MIIB:\r\nX-Client-Cert: MIIB\r\nX-Forwarded-Client-Cert: By=x\r\nClient_Cert: x\r\n",
		"user-id":          "X-User-Id: 1\r\nX-User: admin\r\nRemote-User: admin\r\n",
		"gateway-own":      "X-Auth-Route: admin\r\nX-Auth-Issuer: https://evil\r\nX-Auth-Client: admin-cli\r\nX-Auth-Scopes: admin\r\n",
	}
	for name, hdrs := range forged {
		for _, rc := range []struct{ route, path, token string }{{"authenticated", "/api/x", tok}, {"anonymous", "/pub/x", ""}} {
			t.Run("GW-01/"+name+"/"+rc.route, func(t *testing.T) {
				raw := "GET " + rc.path + " HTTP/1.1\r\nHost: api.test\r\nConnection: close\r\n" + hdrs
				if rc.token != "" {
					raw += "Authorization: Bearer " + rc.token + "\r\n"
				}
				resp, body := rawDo(t, tg, raw+"\r\n")
				if resp.StatusCode != 200 {
					t.Fatalf("status %d: %s", resp.StatusCode, body)
				}
				e := seen(t, body)
				want := map[string]string{}
				if rc.token != "" {
					want = map[string]string{HeaderSubject: "usr_alice", HeaderKind: "user", HeaderClient: "web",
						HeaderScopes: "read", HeaderIssuer: is.URL}
				}
				want[HeaderRoute] = strings.TrimPrefix(rc.path[:4], "/")
				for k, vs := range e.Header {
					if !identityLike(k) {
						continue
					}
					if w, ok := want[k]; !ok || len(vs) != 1 || vs[0] != w {
						t.Errorf("upstream got %s: %q (want %q)", k, vs, want[k])
					}
				}
				for k, w := range want {
					if e.Header.Get(k) != w {
						t.Errorf("upstream %s = %q, want %q", k, e.Header.Get(k), w)
					}
				}
			})
		}
	}
}

func TestGW02ForwardedFor(t *testing.T) {
	is := newTestIssuer(t)
	up := newEcho(t)
	route := anonRoute("r", "/", up.URL)
	route.RateLimits = []config.GatewayRateRule{{By: "ip", Rate: 2, Period: config.Duration(time.Hour)}}
	spoof := []http.Header{
		{"X-Forwarded-For": {"1.1.1.1"}}, {"X-Forwarded-For": {"2.2.2.2, 3.3.3.3"}},
		{"X-Real-Ip": {"4.4.4.4"}}, {"Forwarded": {"for=5.5.5.5"}}, {"X-Forwarded-For": {"6.6.6.6"}},
	}
	t.Run("GW-02/untrusted-peer-ignored", func(t *testing.T) {
		tg := startGateway(t, is, gatewayConfig(is, route), nil)
		var codes []int
		for _, h := range spoof {
			resp, body := tg.do(t, "GET", "/x", "", h)
			codes = append(codes, resp.StatusCode)
			if resp.StatusCode == 200 {
				if got := seen(t, body).Header.Values("X-Forwarded-For"); len(got) != 1 || got[0] != "127.0.0.1" {
					t.Errorf("upstream X-Forwarded-For %q, want the peer", got)
				}
			}
		}
		// One key (the peer) for every spoofed address: 2 allowed, then 429.
		if codes[0] != 200 || codes[1] != 200 || codes[2] != 429 || codes[3] != 429 || codes[4] != 429 {
			t.Fatalf("statuses %v: spoofed addresses were used as rate-limit keys", codes)
		}
	})
	t.Run("GW-02/client-address-headers-not-forwarded", func(t *testing.T) {
		tg := startGateway(t, is, gatewayConfig(is, anonRoute("r", "/", up.URL)), nil)
		resp, body := tg.do(t, "GET", "/x", "", http.Header{"X-Real-Ip": {"10.0.0.1"}, "True-Client-Ip": {"10.0.0.1"},
			"X-Client-Ip": {"10.0.0.1"}, "Forwarded": {"for=10.0.0.1"}})
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		for k, v := range seen(t, body).Header {
			if strings.Contains(strings.Join(v, ","), "10.0.0.1") {
				t.Errorf("upstream got spoofed %s: %q", k, v)
			}
		}
	})
	t.Run("GW-02/trusted-proxy-honoured", func(t *testing.T) {
		cfg := gatewayConfig(is, route)
		cfg.TrustedProxies = []string{"127.0.0.1/32"}
		tg := startGateway(t, is, cfg, nil)
		for _, c := range []struct{ xff, want string }{
			{"1.1.1.1", "1.1.1.1"}, {"9.9.9.9, 1.1.1.1", "1.1.1.1"}, {"2.2.2.2", "2.2.2.2"}, {"3.3.3.3, 127.0.0.1", "3.3.3.3"},
		} {
			resp, body := tg.do(t, "GET", "/x", "", http.Header{"X-Forwarded-For": {c.xff}})
			if resp.StatusCode != 200 {
				t.Fatalf("XFF %q: status %d (keys are per client)", c.xff, resp.StatusCode)
			}
			if got := seen(t, body).Header.Values("X-Forwarded-For"); len(got) != 1 || got[0] != c.want {
				t.Errorf("XFF %q: upstream got %q, want %q", c.xff, got, c.want)
			}
		}
		// 1.1.1.1 has used its two requests.
		if resp, _ := tg.do(t, "GET", "/x", "", http.Header{"X-Forwarded-For": {"1.1.1.1"}}); resp.StatusCode != 429 {
			t.Fatalf("third request for 1.1.1.1: %d, want 429", resp.StatusCode)
		}
	})
}

func TestGW03PathNormalization(t *testing.T) {
	is := newTestIssuer(t)
	adminUp, adminHits := newCountingEcho(t)
	pubUp := newEcho(t)
	svc := anonRoute("svc", "/svc", pubUp.URL)
	svc.StripPrefix = true
	get := jwtRoute("get-only", "/getonly", adminUp.URL, "admin")
	get.Methods = []string{"GET"}
	tg := startGateway(t, is, gatewayConfig(is, jwtRoute("admin", "/admin", adminUp.URL, "admin"),
		anonRoute("public", "/public", pubUp.URL), svc, get, anonRoute("root", "/", pubUp.URL)), nil)
	admin := is.user(t, "usr_root", "admin")
	reader := is.user(t, "usr_alice", "read")
	refused := func(status int) bool {
		return status == 400 || status == 401 || status == 403 || status == 404 || status == 405
	}
	for _, target := range []string{
		"/admin", "/admin/", "/public/../admin", "/public/%2e%2e/admin", "/public/%2E%2E/admin", "/public/.%2e/admin",
		"/public/..%2fadmin", "/public/%2e%2e%2fadmin", "/public%2f..%2fadmin", "/public/%252e%252e/admin", "/admin%252f",
		"/public/..%5cadmin", "/public/..\\admin", "/admin%00", "/public/%00/../admin", "/admin%2500", "//admin", "///admin",
		"/./admin", "/public/./../admin", "/svc/../admin", "/svc/%2e%2e/admin", "/public/..;/admin", "/admin;x=1",
		"/admin;", "/public;/../admin", "/admin#frag", "/public#/../admin", "/admin?x=/../public", "/public/%c0%ae%c0%ae/admin",
		"/public/../../admin", "/%61dmin", "/admin/%2e", "http://api.test/admin", "/public/%2e%2e/getonly",
	} {
		t.Run("GW-03/"+url.PathEscape(target), func(t *testing.T) {
			before := adminHits()
			for _, tok := range []string{"", reader} {
				resp, body := rawGet(t, tg, target, tok)
				if !refused(resp.StatusCode) {
					t.Fatalf("token %t: status %d: %s", tok != "", resp.StatusCode, body)
				}
			}
			if n := adminHits() - before; n != 0 {
				t.Fatalf("admin upstream reached %d times without the admin scope", n)
			}
		})
	}
	for _, c := range []struct{ target, token, want string }{
		{"/public/../admin", admin, "/admin"}, {"/public/%2e%2e/admin/x", admin, "/admin/x"}, {"//admin//x/./y", admin, "/admin/x/y"},
		{"/%61dmin/%7Euser", admin, "/admin/~user"}, {"/admin/../public/x", "", "/public/x"}, {"/public/a/./b//c/", "", "/public/a/b/c/"},
		{"/svc/a/../admin", "", "/admin"}, {"/svc/%61", "", "/a"}, {"/ADMIN", "", "/ADMIN"}, {"/public?/../admin", "", "/public"},
	} {
		t.Run("GW-03/normalized/"+url.PathEscape(c.target), func(t *testing.T) {
			resp, body := rawGet(t, tg, c.target, c.token)
			if resp.StatusCode != 200 {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			if e := seen(t, body); e.RawPath != c.want {
				t.Fatalf("upstream got %q, want %q", e.RawPath, c.want)
			}
		})
	}
	// Headers an upstream framework may route by (IIS, Symfony, method
	// override) would let it serve a path or method no rule saw.
	t.Run("GW-03/url-and-method-override-headers", func(t *testing.T) {
		h := http.Header{"X-Original-Url": {"/admin"}, "X-Rewrite-Url": {"/admin"}, "X-Original-Uri": {"/admin"},
			"X-Forwarded-Uri": {"/admin"}, "X-Forwarded-Prefix": {"/admin"}, "X-Forwarded-Path": {"/admin"},
			"X-Http-Method-Override": {"DELETE"}, "X-Http-Method": {"DELETE"}, "X-Method-Override": {"DELETE"}}
		resp, body := tg.do(t, "GET", "/public/x", "", h)
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		for k, v := range seen(t, body).Header {
			if j := strings.Join(v, ","); strings.Contains(j, "/admin") || strings.Contains(j, "DELETE") {
				t.Errorf("upstream got %s: %q", k, v)
			}
		}
	})
	// A method a specific route does not allow must not fall through to a
	// less specific route (here the anonymous "/").
	t.Run("GW-03/method-fallthrough", func(t *testing.T) {
		before := adminHits()
		for _, m := range []string{"POST", "DELETE", "PUT", "get", "PATCH"} {
			resp, body := rawDo(t, tg, m+" /getonly/x HTTP/1.1\r\nHost: api.test\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
			if resp.StatusCode != 405 {
				t.Fatalf("%s: status %d: %s", m, resp.StatusCode, body)
			}
		}
		if adminHits() != before {
			t.Fatal("reached the upstream")
		}
	})
}

func TestGW04TokenPlacement(t *testing.T) {
	is := newTestIssuer(t)
	up, hits := newCountingEcho(t)
	tg := startGateway(t, is, gatewayConfig(is, jwtRoute("api", "/api", up.URL), anonRoute("pub", "/pub", up.URL)), nil)
	tok := is.user(t, "usr_alice")
	form := "application/x-www-form-urlencoded"
	for _, c := range []struct {
		name, raw string
		status    int
	}{
		{"query-and-header", "GET /api/x?access_token=" + tok + " HTTP/1.1\r\nAuthorization: Bearer " + tok + "\r\n", 400},
		{"query-only", "GET /api/x?access_token=" + tok + " HTTP/1.1\r\n", 400},
		{"query-encoded-name", "GET /api/x?%61ccess_token=" + tok + " HTTP/1.1\r\n", 400},
		{"query-anonymous", "GET /pub/x?access_token=" + tok + " HTTP/1.1\r\n", 400},
		{"two-authorization", "GET /api/x HTTP/1.1\r\nAuthorization: Bearer " + tok + "\r\nAuthorization: Bearer " + tok + "\r\n", 400},
		{"two-authorization-values", "GET /api/x HTTP/1.1\r\nAuthorization: Bearer " + tok + ", Bearer " + tok + "\r\n", 400},
		{"header-and-body", "POST /api/x HTTP/1.1\r\nAuthorization: Bearer " + tok + "\r\nContent-Type: " + form +
			"\r\nContent-Length: " + strconv.Itoa(len("a=1&access_token="+tok)) + "\r\n\r\na=1&access_token=" + tok, 400},
		{"header-and-body-charset", "POST /api/x HTTP/1.1\r\nAuthorization: Bearer " + tok + "\r\nContent-Type: " + form +
			"; charset=utf-8\r\nContent-Length: " + strconv.Itoa(len("access_token="+tok)) + "\r\n\r\naccess_token=" + tok, 400},
		{"body-only", "POST /api/x HTTP/1.1\r\nContent-Type: " + form + "\r\nContent-Length: " + strconv.Itoa(len("access_token="+tok)) +
			"\r\n\r\naccess_token=" + tok, 401},
		{"basic-scheme", "GET /api/x HTTP/1.1\r\nAuthorization: Basic dXNlcjpwYXNz\r\n", 400},
		{"bearer-no-space", "GET /api/x HTTP/1.1\r\nAuthorization: Bearer" + tok + "\r\n", 400},
	} {
		t.Run("GW-04/"+c.name, func(t *testing.T) {
			before := hits()
			raw := c.raw
			if !strings.Contains(raw, "\r\n\r\n") {
				raw += "\r\n"
			}
			raw = strings.Replace(raw, "HTTP/1.1\r\n", "HTTP/1.1\r\nHost: api.test\r\nConnection: close\r\n", 1)
			resp, body := rawDo(t, tg, raw)
			if resp.StatusCode != c.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, c.status, body)
			}
			if hits() != before {
				t.Fatal("the upstream got the request")
			}
		})
	}
	t.Run("GW-04/header-and-form-body-without-token-ok", func(t *testing.T) {
		const form = "a=1&token_type=x&b=%26"
		raw := "POST /api/x HTTP/1.1\r\nHost: api.test\r\nConnection: close\r\nAuthorization: Bearer " + tok +
			"\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: " + strconv.Itoa(len(form)) + "\r\n\r\n" + form
		resp, body := rawDo(t, tg, raw)
		if resp.StatusCode != 200 || seen(t, body).Body != form {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
	})
	t.Run("GW-04/header-and-plain-body-ok", func(t *testing.T) {
		raw := "POST /api/x HTTP/1.1\r\nHost: api.test\r\nConnection: close\r\nAuthorization: Bearer " + tok +
			"\r\nContent-Type: text/plain\r\nContent-Length: 18\r\n\r\naccess_token=hello"
		resp, body := rawDo(t, tg, raw)
		if resp.StatusCode != 200 || seen(t, body).Body != "access_token=hello" {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
	})
}

func TestGW05HopByHop(t *testing.T) {
	is := newTestIssuer(t)
	up := newEcho(t)
	fwd := jwtRoute("fwd", "/fwd", up.URL)
	fwd.Token = "forward"
	tg := startGateway(t, is, gatewayConfig(is, fwd), nil)
	tok := is.user(t, "usr_alice", "read")
	for _, conn := range []string{"X-Auth-Subject", "Authorization", "X-Request-Id", "X-Auth-Route, X-Auth-Kind",
		"x-auth-scopes", "X-Forwarded-For, X-Forwarded-Host", "close, X-Auth-Issuer"} {
		t.Run("GW-05/connection-"+conn, func(t *testing.T) {
			resp, body := tg.do(t, "GET", "/fwd/x", tok, http.Header{"Connection": {conn}, "X-Auth-Subject": {"admin"}})
			if resp.StatusCode != 200 {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			e := seen(t, body)
			for k, want := range map[string]string{HeaderSubject: "usr_alice", "Authorization": "Bearer " + tok,
				HeaderReqID: resp.Header.Get(HeaderReqID), HeaderRoute: "fwd", HeaderKind: "user", HeaderScopes: "read",
				HeaderIssuer: is.URL, "X-Forwarded-For": "127.0.0.1", "X-Forwarded-Host": "127.0.0.1"} {
				if got := e.Header.Values(k); len(got) != 1 || got[0] != want {
					t.Errorf("upstream %s = %q, want %q", k, got, want)
				}
			}
		})
	}
}

// settableClock is a clock tests move by hand.
type settableClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *settableClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *settableClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func TestGW06CachedAuthentication(t *testing.T) {
	is := newTestIssuer(t)
	up := newEcho(t)
	other := jwtRoute("other-aud", "/b-aud", up.URL)
	other.Auth.Audience = "https://api.other.example"
	clock := &settableClock{now: time.Now()}
	cfg := gatewayConfig(is, jwtRoute("a", "/a", up.URL, "read"), jwtRoute("b", "/b", up.URL, "write"), other)
	if _, err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	g, err := New(cfg, Deps{Issuer: is.URL, Now: clock.Now, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	ctx, cancel := testContext(t, 5*time.Second)
	defer cancel()
	if err := g.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	tg := &testGateway{G: g, Proxy: httptest.NewServer(g)}
	t.Cleanup(tg.Proxy.Close)
	read := is.mint(t, map[string]any{"scope": "read", "exp": clock.Now().Add(time.Minute).Unix()})
	t.Run("GW-06/scope-not-shared-across-routes", func(t *testing.T) {
		for range 3 { // first verification, then from the cache
			if resp, _ := tg.do(t, "GET", "/a/x", read, nil); resp.StatusCode != 200 {
				t.Fatalf("route a: %d", resp.StatusCode)
			}
			if resp, _ := tg.do(t, "GET", "/b/x", read, nil); resp.StatusCode != 403 {
				t.Fatalf("route b: %d, want 403", resp.StatusCode)
			}
		}
	})
	t.Run("GW-06/audience-not-shared", func(t *testing.T) {
		if resp, _ := tg.do(t, "GET", "/b-aud/x", read, nil); resp.StatusCode != 401 {
			t.Fatalf("token for %s on a route for another audience: %d", testAudience, resp.StatusCode)
		}
		otherTok := is.mint(t, map[string]any{"aud": "https://api.other.example", "exp": clock.Now().Add(time.Minute).Unix()})
		if resp, _ := tg.do(t, "GET", "/b-aud/x", otherTok, nil); resp.StatusCode != 200 {
			t.Fatalf("positive control: %d", resp.StatusCode)
		}
		if resp, _ := tg.do(t, "GET", "/a/x", otherTok, nil); resp.StatusCode != 401 {
			t.Fatalf("cached token of another audience accepted: %d", resp.StatusCode)
		}
	})
	t.Run("GW-06/cache-never-outlives-exp", func(t *testing.T) {
		clock.Advance(59 * time.Second)
		if resp, _ := tg.do(t, "GET", "/a/x", read, nil); resp.StatusCode != 200 {
			t.Fatalf("before exp: %d", resp.StatusCode)
		}
		clock.Advance(time.Second + 29*time.Second) // exp + 29 s: inside the 30 s leeway, verified again
		if resp, _ := tg.do(t, "GET", "/a/x", read, nil); resp.StatusCode != 200 {
			t.Fatalf("inside the leeway: %d", resp.StatusCode)
		}
		clock.Advance(2 * time.Second) // exp + 31 s
		if resp, _ := tg.do(t, "GET", "/a/x", read, nil); resp.StatusCode != 401 {
			t.Fatalf("expired (cached) token: %d, want 401", resp.StatusCode)
		}
	})
}

// deadUpstream returns the URL of a listener that was closed: connections
// are refused.
func deadUpstream(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return "http://" + addr
}

func TestForwardedHeaders(t *testing.T) {
	is := newTestIssuer(t)
	up := newEcho(t)
	tg := startGateway(t, is, gatewayConfig(is, anonRoute("r", "/", up.URL)), nil)
	h := http.Header{"X-Forwarded-Host": {"evil.example"}, "X-Forwarded-Proto": {"https"}, "Forwarded": {"for=9.9.9.9;proto=https"}}
	resp, body := tg.send(t, newReq(t, tg, "GET", "API.Example.com:8080", "/x", h))
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	e := seen(t, body)
	for k, want := range map[string]string{"X-Forwarded-For": "127.0.0.1", "X-Forwarded-Host": "api.example.com", "X-Forwarded-Proto": "http"} {
		if got := e.Header.Values(k); len(got) != 1 || got[0] != want {
			t.Errorf("upstream %s = %q, want %q", k, got, want)
		}
	}
	if len(e.Header.Values("Forwarded")) != 0 {
		t.Errorf("inbound Forwarded passed through: %q", e.Header.Values("Forwarded"))
	}
	if e.Host != strings.TrimPrefix(up.URL, "http://") {
		t.Errorf("upstream Host %q", e.Host)
	}
}

func TestUpgradeAndTrailers(t *testing.T) {
	is := newTestIssuer(t)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "echo" || r.Header.Get(HeaderSubject) != "usr_alice" {
			http.Error(w, "no upgrade: "+r.Header.Get("Upgrade"), http.StatusBadRequest)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
		_ = brw.Flush()
		line, _ := brw.ReadString('\n')
		_, _ = brw.WriteString(line)
		_ = brw.Flush()
	}))
	t.Cleanup(up.Close)
	echo := newEcho(t)
	tg := startGateway(t, is, gatewayConfig(is, jwtRoute("ws", "/ws", up.URL), jwtRoute("grpc", "/grpc", echo.URL)), nil)
	tok := is.user(t, "usr_alice")
	t.Run("GW-05/upgrade-kept", func(t *testing.T) {
		conn, err := net.Dial("tcp", strings.TrimPrefix(tg.Proxy.URL, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		_, _ = conn.Write([]byte("GET /ws HTTP/1.1\r\nHost: api.test\r\nConnection: Upgrade\r\nUpgrade: echo\r\n" +
			"Authorization: Bearer " + tok + "\r\n\r\n"))
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, nil)
		if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
			t.Fatalf("upgrade answer %v %v", resp, err)
		}
		_, _ = conn.Write([]byte("ping\n"))
		if l, _ := br.ReadString('\n'); l != "ping\n" {
			t.Fatalf("echoed %q", l)
		}
	})
	t.Run("GW-05/te-trailers-kept", func(t *testing.T) {
		resp, body := tg.do(t, "GET", "/grpc/x", tok, http.Header{"Te": {"trailers"}})
		if resp.StatusCode != 200 || seen(t, body).Header.Get("Te") != "trailers" {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
	})
}
