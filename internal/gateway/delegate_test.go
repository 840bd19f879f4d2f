package gateway

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/gateway/edge"
)

const (
	delegateClientID     = "demo-gateway"
	delegateClientSecret = "gateway-authz-secret"
	delegateServiceToken = "gw-service-token"
)

// authzCall is what the fake authorization service received.
type authzCall struct {
	Principal map[string]any `json:"principal"`
	Action    string         `json:"action"`
	Resource  struct {
		Type string `json:"type"`
		ID   string `json:"id"`
	} `json:"resource"`
}

// fakeAuthz is the IdP's token endpoint (client credentials) and the
// authorization service's POST /authorize. It checks the gateway's own
// credential and decodes requests strictly. It allows the resources in
// allowed; mode "down" answers 500, "hang" never answers in time.
type fakeAuthz struct {
	t   *testing.T
	srv *httptest.Server

	mu      sync.Mutex
	allowed map[string]bool
	mode    string
	calls   []authzCall
	tokens  int
	stop    chan struct{}
}

func newFakeAuthz(t *testing.T, allowed ...string) *fakeAuthz {
	t.Helper()
	f := &fakeAuthz{t: t, allowed: map[string]bool{}, stop: make(chan struct{})}
	for _, a := range allowed {
		f.allowed[a] = true
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /oauth/token", f.token)
	mux.HandleFunc("POST /authorize", f.authorize)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(func() {
		close(f.stop)
		f.srv.Close()
	})
	return f
}

func (f *fakeAuthz) setMode(m string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.mode = m
}

func (f *fakeAuthz) received() []authzCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]authzCall(nil), f.calls...)
}

func (f *fakeAuthz) token(w http.ResponseWriter, r *http.Request) {
	id, secret, ok := r.BasicAuth()
	if err := r.ParseForm(); err != nil || !ok || id != delegateClientID || secret != delegateClientSecret ||
		r.PostForm.Get("grant_type") != "client_credentials" || r.PostForm.Get("resource") != "gatehouse-authz" ||
		r.PostForm.Get("scope") != "authz:check" {
		f.t.Errorf("bad client-credentials request: %v %v", r.PostForm, ok)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	f.mu.Lock()
	f.tokens++
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"access_token": delegateServiceToken, "token_type": "Bearer", "expires_in": 300})
}

func (f *fakeAuthz) authorize(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer "+delegateServiceToken {
		f.t.Errorf("authorize without the gateway's service token: %q", r.Header.Get("Authorization"))
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var c authzCall
	if err := dec.Decode(&c); err != nil {
		f.t.Errorf("malformed authorize request %s: %v", body, err)
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	f.calls = append(f.calls, c)
	mode, allow := f.mode, f.allowed[c.Resource.Type+":"+c.Resource.ID]
	f.mu.Unlock()
	switch mode {
	case "down":
		w.WriteHeader(http.StatusInternalServerError)
		return
	case "hang":
		select {
		case <-r.Context().Done():
		case <-f.stop:
		}
		return
	case "garbage":
		_, _ = w.Write([]byte(`{"allow":"true"}`))
		return
	}
	reason := "no policy permits " + c.Action + " on " + c.Resource.Type + ":" + c.Resource.ID
	if allow {
		reason = "permitted by owner"
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"allow": allow, "reason": reason, "decision_id": "dec_1",
		"policy_version": "v1", "revision": "1", "policies": []string{"owner"}})
}

// delegateGateway serves routes "orders" (DELETE /orders/{id}, delegate
// delete on order, segment 2, scope orders:write) and "open" (no delegate).
func delegateGateway(t *testing.T, is *testIssuer, f *fakeAuthz, cacheTTL, timeout time.Duration) *testGateway {
	t.Helper()
	up := newEcho(t)
	orders := jwtRoute("orders", "/orders", up.URL, "orders:write")
	orders.Delegate = &config.GatewayDelegate{Action: "delete", ResourceType: "order", ResourceIDSegment: 2}
	cfg := gatewayConfig(is, orders, jwtRoute("open", "/open", up.URL))
	cfg.Authz = config.GatewayAuthz{URL: f.srv.URL, TokenEndpoint: f.srv.URL + "/oauth/token", ClientID: delegateClientID,
		ClientSecret: delegateClientSecret, Audience: "gatehouse-authz", Timeout: config.Duration(timeout),
		CacheTTL: config.Duration(cacheTTL)}
	return startGateway(t, is, cfg, nil)
}

// errorBody decodes a JSON refusal.
func errorBody(t *testing.T, body string) (code, desc string) {
	t.Helper()
	var e struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if err := json.Unmarshal([]byte(body), &e); err != nil {
		t.Fatalf("not a JSON error: %v: %s", err, body)
	}
	return e.Error, e.Description
}

func TestDelegateProxy(t *testing.T) {
	is := newTestIssuer(t)
	f := newFakeAuthz(t, "order:o-1", "order:o 3")
	tg := delegateGateway(t, is, f, 0, 5*time.Second)
	tok := is.user(t, "usr_alice", "orders:write")

	// Allowed: the upstream is reached, the service saw the caller's token.
	resp, body := tg.do(t, "DELETE", "/orders/o-1", tok, nil)
	if resp.StatusCode != http.StatusOK || seen(t, body).Path != "/orders/o-1" {
		t.Fatalf("allow: %d %s", resp.StatusCode, body)
	}
	calls := f.received()
	if len(calls) != 1 {
		t.Fatalf("%d calls to the service, want 1", len(calls))
	}
	c := calls[0]
	if len(c.Principal) != 1 || c.Principal["token"] != tok || c.Action != "delete" || c.Resource.Type != "order" || c.Resource.ID != "o-1" {
		t.Errorf("service asked %+v, want the caller's token, delete, order:o-1", c)
	}
	// Escaped ids are unescaped: /orders/o%203 names order "o 3".
	if resp, body := tg.do(t, "DELETE", "/orders/o%203/items", tok, nil); resp.StatusCode != http.StatusOK {
		t.Errorf("escaped id: %d %s", resp.StatusCode, body)
	}

	// Denied: 403 with the service's reason; the upstream is not reached.
	resp, body = tg.do(t, "DELETE", "/orders/o-2", tok, nil)
	code, desc := errorBody(t, body)
	if resp.StatusCode != http.StatusForbidden || code != "access_denied" || desc != "no policy permits delete on order:o-2" {
		t.Errorf("deny: %d %s", resp.StatusCode, body)
	}

	// No resource segment: refused without asking.
	before := len(f.received())
	resp, body = tg.do(t, "DELETE", "/orders", tok, nil)
	if code, _ := errorBody(t, body); resp.StatusCode != http.StatusForbidden || code != "access_denied" {
		t.Errorf("no resource: %d %s", resp.StatusCode, body)
	}
	if resp, _ := tg.do(t, "DELETE", "/orders/", tok, nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("empty resource segment: %d", resp.StatusCode)
	}
	// The route's rules come first: no token, a token without the scope.
	if resp, _ := tg.do(t, "DELETE", "/orders/o-1", "", nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("no token: %d", resp.StatusCode)
	}
	if resp, _ := tg.do(t, "DELETE", "/orders/o-1", is.user(t, "usr_alice", "orders:read"), nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("missing scope: %d", resp.StatusCode)
	}
	if n := len(f.received()); n != before {
		t.Errorf("the service was asked %d more times for requests refused earlier", n-before)
	}
	// A route without delegate never asks.
	if resp, _ := tg.do(t, "GET", "/open/x", tok, nil); resp.StatusCode != http.StatusOK || len(f.received()) != before {
		t.Errorf("route without delegate: %d, calls %d", resp.StatusCode, len(f.received()))
	}

	if v := metricValue(t, tg.G, "gatehouse_gateway_denied_total", "route", "orders", "reason", "delegate"); v != 1 {
		t.Errorf("denied{reason=delegate} = %v, want 1", v)
	}
	if v := metricValue(t, tg.G, "gatehouse_gateway_delegate_decisions_total", "route", "orders", "result", "allow"); v != 2 {
		t.Errorf("delegate allow = %v, want 2", v)
	}
	logs := tg.Logs.String()
	if !strings.Contains(logs, `"decision":"delegate"`) || !strings.Contains(logs, `"decision":"delegate_no_resource"`) {
		t.Errorf("access log does not name the delegate refusals:\n%s", logs)
	}
	if strings.Contains(logs, tok) || strings.Contains(logs, delegateServiceToken) || strings.Contains(logs, delegateClientSecret) {
		t.Error("a token or secret reached the log")
	}
}

// TestDelegateFailsClosed: every failure to get a decision is a 403 with
// the documented reason, never an allow.
func TestDelegateFailsClosed(t *testing.T) {
	is := newTestIssuer(t)
	f := newFakeAuthz(t, "order:o-1")
	tg := delegateGateway(t, is, f, 0, 300*time.Millisecond)
	tok := is.user(t, "usr_alice", "orders:write")
	for _, mode := range []string{"down", "hang", "garbage"} {
		t.Run("AZ-01/"+mode, func(t *testing.T) {
			f.setMode(mode)
			defer f.setMode("")
			resp, body := tg.do(t, "DELETE", "/orders/o-1", tok, nil) // o-1 is allowed when the service works
			code, desc := errorBody(t, body)
			if resp.StatusCode != http.StatusForbidden || code != "access_denied" || desc != "authorization service unavailable" {
				t.Errorf("%d %s", resp.StatusCode, body)
			}
			// Through the authorizer too.
			resp, body = tg.authorize(t, "GET", ForwardAuthPath, "", traefik("DELETE", "/orders/o-1", tok))
			if code, desc := errorBody(t, body); resp.StatusCode != http.StatusForbidden || code != "access_denied" || desc != "authorization service unavailable" {
				t.Errorf("forward-auth: %d %s", resp.StatusCode, body)
			}
		})
	}
	if v := metricValue(t, tg.G, "gatehouse_gateway_denied_total", "route", "orders", "reason", "delegate_unavailable"); v != 6 {
		t.Errorf("denied{reason=delegate_unavailable} = %v, want 6", v)
	}
}

func TestDelegateForwardAuth(t *testing.T) {
	is := newTestIssuer(t)
	f := newFakeAuthz(t, "order:o-1")
	tg := delegateGateway(t, is, f, 0, 5*time.Second)
	tok := is.user(t, "usr_alice", "orders:write")
	resp, body := tg.authorize(t, "GET", ForwardAuthPath, "", traefik("DELETE", "/orders/o-1", tok))
	if resp.StatusCode != http.StatusOK || resp.Header.Get(HeaderSubject) != "usr_alice" {
		t.Fatalf("allow: %d %s", resp.StatusCode, body)
	}
	resp, body = tg.authorize(t, "GET", ForwardAuthPath, "", nginx("DELETE", "/orders/o-2", tok))
	if code, desc := errorBody(t, body); resp.StatusCode != http.StatusForbidden || code != "access_denied" ||
		desc != "no policy permits delete on order:o-2" || resp.Header.Get(HeaderSubject) != "" {
		t.Errorf("deny: %d %v %s", resp.StatusCode, resp.Header, body)
	}
	calls := f.received()
	if len(calls) != 2 || calls[0].Principal["token"] != tok || calls[1].Resource.ID != "o-2" {
		t.Errorf("service calls %+v", calls)
	}
}

func TestDelegateCache(t *testing.T) {
	is := newTestIssuer(t)
	f := newFakeAuthz(t, "order:o-1")
	tg := delegateGateway(t, is, f, 10*time.Second, 5*time.Second)
	alice, bob := is.user(t, "usr_alice", "orders:write"), is.user(t, "usr_bob", "orders:write")
	for range 3 {
		tg.do(t, "DELETE", "/orders/o-1", alice, nil)
	}
	tg.do(t, "DELETE", "/orders/o-1", bob, nil) // another caller: another key
	tg.do(t, "DELETE", "/orders/o-9", alice, nil)
	if n := len(f.received()); n != 3 {
		t.Errorf("%d service calls, want 3 (alice o-1 once, bob o-1, alice o-9)", n)
	}
	f.mu.Lock()
	tokens := f.tokens
	f.mu.Unlock()
	if tokens != 1 {
		t.Errorf("%d service token requests, want 1 (cached)", tokens)
	}
}

func TestDelegateCompile(t *testing.T) {
	is := newTestIssuer(t)
	f := newFakeAuthz(t)
	tg := delegateGateway(t, is, f, 0, 5*time.Second)
	up := newEcho(t)
	anon := anonRoute("anon", "/anon", up.URL)
	anon.Delegate = &config.GatewayDelegate{Action: "read", ResourceType: "doc", ResourceIDSegment: 2}
	noSeg := jwtRoute("noseg", "/n", up.URL)
	noSeg.Delegate = &config.GatewayDelegate{Action: "read", ResourceType: "doc"}
	for name, r := range map[string]config.GatewayRoute{"anonymous": anon, "segment 0": noSeg} {
		if err := tg.G.Reload([]config.GatewayRoute{r}); err == nil {
			t.Errorf("%s: a delegate route compiled", name)
		}
	}
	// Without gateway.authz, a delegate route does not compile.
	cfg := gatewayConfig(is, jwtRoute("plain", "/p", up.URL))
	g, err := New(cfg, Deps{Issuer: is.URL})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	d := jwtRoute("d", "/d", up.URL)
	d.Delegate = &config.GatewayDelegate{Action: "read", ResourceType: "doc", ResourceIDSegment: 2}
	if err := g.Reload([]config.GatewayRoute{d}); err == nil || !strings.Contains(err.Error(), "gateway.authz") {
		t.Errorf("delegate without gateway.authz: %v", err)
	}
}

func TestPathSegment(t *testing.T) {
	tests := []struct {
		path string
		n    int
		want string
		ok   bool
	}{
		{"/orders/o-1", 2, "o-1", true},
		{"/orders/o-1", 1, "orders", true},
		{"/orders/o-1/items/7", 4, "7", true},
		{"/orders/o-1", 3, "", false},
		{"/orders/", 2, "", false},
		{"/orders", 2, "", false},
		{"/", 1, "", false},
		{"/orders/o%2F1", 2, "o/1", true},
		{"/orders/%E2%82%AC", 2, "€", true},
		{"/orders/a%2", 2, "", false},
	}
	for _, tt := range tests {
		got, ok := pathSegment(tt.path, tt.n)
		if got != tt.want || ok != tt.ok {
			t.Errorf("pathSegment(%q, %d) = %q, %v; want %q, %v", tt.path, tt.n, got, ok, tt.want, tt.ok)
		}
	}
}

func TestPublicReason(t *testing.T) {
	for in, want := range map[string]string{
		"":                         "denied",
		"  no\npermit\x00 ":        "no permit",
		strings.Repeat("é", 200):   strings.Repeat("é", 128) + "...",
		"tenant acme ≠ globex\xff": "tenant acme ≠ globex?",
	} {
		if got := publicReason(in); got != want {
			t.Errorf("publicReason(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzPathSegment: pathSegment agrees with a split-and-unescape reference
// on every normalized path.
func FuzzPathSegment(f *testing.F) {
	for _, s := range []string{"/orders/o-1", "/", "/a/b/c/", "/a%20b/%E2%82%AC", "/x/%zz"} {
		f.Add(s, 2)
	}
	f.Fuzz(func(t *testing.T, raw string, n int) {
		if n < 1 || n > 64 {
			return
		}
		p, err := edge.NormalizePath(raw)
		if err != nil {
			return
		}
		seg, ok := pathSegment(p, n)
		// Reference: split on "/" and unescape.
		parts := strings.Split(p, "/")
		want, wantOK := "", false
		if n < len(parts) {
			if u, err := url.PathUnescape(parts[n]); err == nil && u != "" {
				want, wantOK = u, true
			}
		}
		if seg != want || ok != wantOK {
			t.Fatalf("pathSegment(%q, %d) = %q, %v; reference %q, %v", p, n, seg, ok, want, wantOK)
		}
	})
}
