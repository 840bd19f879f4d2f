package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/testutil/syncbuf"
)

// Credentials of the gateway's token-exchange client. The secret has
// characters that RFC 6749 §2.3.1 form-encodes before basic auth.
const (
	xchgClientID     = "gateway:edge"
	xchgClientSecret = "s3cr3t/+ &=x"
	ordersAudience   = "https://orders.internal"
	billingAudience  = "https://billing.internal"
)

// fakeTokenEndpoint is an RFC 8693 token endpoint. It checks every request
// strictly (problems are reported by check) and answers with answer, by
// default a valid exchanged token "xchg.<sha of subject>.<audience>.<n>".
type fakeTokenEndpoint struct {
	srv   *httptest.Server
	calls atomic.Int64
	delay time.Duration

	mu       sync.Mutex
	problems []string
	forms    []url.Values
	answer   func(form url.Values, n int64) (int, string)
}

func newFakeTokenEndpoint(t *testing.T) *fakeTokenEndpoint {
	t.Helper()
	f := &fakeTokenEndpoint{}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	t.Cleanup(func() { f.check(t) })
	return f
}

func (f *fakeTokenEndpoint) URL() string { return f.srv.URL + "/oauth/token" }

func (f *fakeTokenEndpoint) serve(w http.ResponseWriter, r *http.Request) {
	n := f.calls.Add(1)
	var bad []string
	if r.Method != http.MethodPost || r.URL.Path != "/oauth/token" {
		bad = append(bad, "request "+r.Method+" "+r.URL.Path)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
		bad = append(bad, "content type "+ct)
	}
	id, secret, ok := r.BasicAuth()
	id, _ = url.QueryUnescape(id)
	secret, _ = url.QueryUnescape(secret)
	if !ok || id != xchgClientID || secret != xchgClientSecret {
		bad = append(bad, "basic auth of the gateway client missing or wrong")
	}
	if err := r.ParseForm(); err != nil || r.URL.RawQuery != "" {
		bad = append(bad, "form not parsed or query used")
	}
	form := r.PostForm
	for k, want := range map[string]string{
		"grant_type":         "urn:ietf:params:oauth:grant-type:token-exchange",
		"subject_token_type": "urn:ietf:params:oauth:token-type:access_token",
	} {
		if v := form[k]; len(v) != 1 || v[0] != want {
			bad = append(bad, fmt.Sprintf("%s = %q", k, v))
		}
	}
	for _, k := range []string{"subject_token", "audience"} {
		if v := form[k]; len(v) != 1 || v[0] == "" {
			bad = append(bad, fmt.Sprintf("%s = %q", k, v))
		}
	}
	if len(form["scope"]) > 1 || form.Has("client_secret") || form.Has("client_id") {
		bad = append(bad, "scope repeated or client credentials in the body")
	}
	f.mu.Lock()
	f.problems = append(f.problems, bad...)
	f.forms = append(f.forms, form)
	answer := f.answer
	f.mu.Unlock()
	if f.delay > 0 {
		time.Sleep(f.delay)
	}
	status, body := http.StatusOK, ""
	if answer != nil {
		status, body = answer(form, n)
	} else {
		body = okExchange(form, n, 300)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}

// okExchange is a valid RFC 8693 answer for form.
func okExchange(form url.Values, n, expiresIn int64) string {
	sum := sha256.Sum256([]byte(form.Get("subject_token")))
	tok := fmt.Sprintf("xchg.%s.%s.%d", hex.EncodeToString(sum[:6]), url.QueryEscape(form.Get("audience")), n)
	b, _ := json.Marshal(map[string]any{"access_token": tok, "issued_token_type": tokenTypeAccess,
		"token_type": "Bearer", "expires_in": expiresIn})
	return string(b)
}

func (f *fakeTokenEndpoint) setAnswer(a func(form url.Values, n int64) (int, string)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.answer = a
}

func (f *fakeTokenEndpoint) lastForm() url.Values {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.forms) == 0 {
		return nil
	}
	return f.forms[len(f.forms)-1]
}

func (f *fakeTokenEndpoint) check(t *testing.T) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, p := range f.problems {
		t.Errorf("token endpoint: %s", p)
	}
	f.problems = nil
}

// exchangeConfig returns a gateway section with token exchange through f
// and three exchange routes: /orders and /orders-admin (same audience,
// different scopes) and /billing.
func exchangeGatewayConfig(is *testIssuer, f *fakeTokenEndpoint, upstream string) config.GatewayConfig {
	xr := func(name, prefix, aud string, scopes ...string) config.GatewayRoute {
		r := jwtRoute(name, prefix, upstream)
		r.Token = "exchange"
		r.Exchange = config.GatewayExchange{Audience: aud, Scopes: scopes}
		return r
	}
	c := gatewayConfig(is, xr("orders", "/orders", ordersAudience, "orders:read"),
		xr("orders-admin", "/orders-admin", ordersAudience, "orders:read", "orders:admin"),
		xr("billing", "/billing", billingAudience))
	c.TokenExchange = config.GatewayTokenExchange{TokenEndpoint: f.URL(), ClientID: xchgClientID, ClientSecret: xchgClientSecret}
	return c
}

// upstreamToken returns the bearer token the echo upstream received.
func upstreamToken(t *testing.T, resp *http.Response, body string) string {
	t.Helper()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	e := seen(t, body)
	if len(e.Header["Authorization"]) != 1 {
		t.Fatalf("upstream got Authorization %q", e.Header["Authorization"])
	}
	return strings.TrimPrefix(e.Header.Get("Authorization"), "Bearer ")
}

func TestExchangeThroughProxy(t *testing.T) {
	is := newTestIssuer(t)
	up := newEcho(t)
	f := newFakeTokenEndpoint(t)
	tg := startGateway(t, is, exchangeGatewayConfig(is, f, up.URL), nil)
	alice := is.user(t, "usr_alice", "orders:read")

	resp, body := tg.do(t, "GET", "/orders/1", alice, nil)
	got := upstreamToken(t, resp, body)
	if !strings.HasPrefix(got, "xchg.") || strings.Contains(body, alice) {
		t.Fatalf("upstream did not get only the exchanged token: %q", got)
	}
	form := f.lastForm()
	if form.Get("subject_token") != alice || form.Get("audience") != ordersAudience || form.Get("scope") != "orders:read" {
		t.Fatalf("exchange form %v", form)
	}
	if e := seen(t, body); e.Header.Get(HeaderSubject) != "usr_alice" {
		t.Fatalf("identity headers come from the caller's token: %v", e.Header)
	}

	steps := []struct {
		name, path, token string
		wantCalls         int64
	}{
		{"same token and route: cached", "/orders/2", alice, 1},
		{"other audience", "/billing/1", alice, 2},
		{"same audience, other scopes", "/orders-admin/1", alice, 3},
		{"other audience again: cached", "/billing/2", alice, 3},
		{"no exchange scopes", "/billing/3", is.user(t, "usr_dave"), 4},
		{"other user token", "/orders/1", is.user(t, "usr_bob", "orders:read"), 5},
	}
	for _, s := range steps {
		resp, body := tg.do(t, "GET", s.path, s.token, nil)
		tok := upstreamToken(t, resp, body)
		if strings.Contains(body, s.token) || !strings.HasPrefix(tok, "xchg.") {
			t.Fatalf("%s: the caller's token reached the upstream", s.name)
		}
		if n := f.calls.Load(); n != s.wantCalls {
			t.Fatalf("%s: %d exchanges, want %d", s.name, n, s.wantCalls)
		}
		if s.path == "/billing/3" && f.lastForm().Has("scope") {
			t.Fatalf("route without exchange scopes sent scope: %v", f.lastForm())
		}
	}
	if resp, body := tg.do(t, "GET", "/billing/1", is.user(t, "usr_carol"), nil); upstreamToken(t, resp, body) == "" {
		t.Fatal("no token")
	}
	if strings.Contains(tg.Logs.String(), alice) || strings.Contains(tg.Logs.String(), "xchg.") {
		t.Fatal("a token was logged")
	}
}

func TestExchangeSingleflight(t *testing.T) {
	is := newTestIssuer(t)
	up := newEcho(t)
	f := newFakeTokenEndpoint(t)
	f.delay = 150 * time.Millisecond
	tg := startGateway(t, is, exchangeGatewayConfig(is, f, up.URL), nil)
	tok := is.user(t, "usr_alice", "orders:read")
	var wg sync.WaitGroup
	got := make([]string, 50)
	for i := range got {
		wg.Go(func() {
			req, _ := http.NewRequest("GET", tg.Proxy.URL+"/orders/1", nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			var e echoed
			if resp.StatusCode != 200 || json.NewDecoder(resp.Body).Decode(&e) != nil {
				t.Errorf("status %d", resp.StatusCode)
				return
			}
			got[i] = e.Header.Get("Authorization")
		})
	}
	wg.Wait()
	if n := f.calls.Load(); n != 1 {
		t.Fatalf("%d exchanges for 50 identical requests, want 1", n)
	}
	for _, g := range got[1:] {
		if g != got[0] || g == "" {
			t.Fatalf("different tokens: %q vs %q", g, got[0])
		}
	}
}

// TestExchangeCallerCancel: the caller that started the shared call going
// away does not fail the others waiting for the same exchange.
func TestExchangeCallerCancel(t *testing.T) {
	f := newFakeTokenEndpoint(t)
	// The endpoint holds the exchange until released, so the first caller's
	// cancel always lands while the shared call is in flight, however slow
	// the machine.
	arrived, release := make(chan struct{}, 4), make(chan struct{})
	var releaseOnce sync.Once
	t.Cleanup(func() { releaseOnce.Do(func() { close(release) }) }) // a failed test does not hang the endpoint
	f.setAnswer(func(form url.Values, n int64) (int, string) {
		arrived <- struct{}{}
		<-release
		return http.StatusOK, okExchange(form, n, 300)
	})
	x := newTestExchanger(f, time.Now)
	first, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() {
		_, err := x.token(first, "subject", ordersAudience, nil, time.Time{})
		errc <- err
	}()
	<-arrived // the first caller's exchange is in flight
	type answer struct {
		tok string
		err error
	}
	second := make(chan answer, 1)
	go func() {
		tok, err := x.token(t.Context(), "subject", ordersAudience, nil, time.Time{})
		second <- answer{tok, err}
	}()
	cancel()
	if err := <-errc; !errors.Is(err, errExchangeUnavailable) || !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled caller: %v", err)
	}
	// Had the cancel reached the shared call, the second caller would now
	// fail or start an exchange of its own.
	releaseOnce.Do(func() { close(release) })
	if a := <-second; a.err != nil || a.tok == "" {
		t.Fatalf("second caller: %q %v", a.tok, a.err)
	}
	if n := f.calls.Load(); n != 1 {
		t.Fatalf("%d calls", n)
	}
}

func newTestExchanger(f *fakeTokenEndpoint, now func() time.Time) *exchanger {
	return newExchanger(exchangeConfig{Endpoint: f.URL(), ClientID: xchgClientID, ClientSecret: xchgClientSecret,
		HTTPClient: &http.Client{Timeout: 5 * time.Second}, Now: now})
}

// fakeClock is a settable clock safe for concurrent use.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock(t time.Time) *fakeClock {
	c := &fakeClock{}
	c.ns.Store(t.UnixNano())
	return c
}
func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// TestExchangeExpiry: an exchanged token is not reused in its last seconds,
// nor past the subject token's exp (through the proxy, with the clock
// injected via Deps.Now).
func TestExchangeExpiry(t *testing.T) {
	is := newTestIssuer(t)
	up := newEcho(t)
	f := newFakeTokenEndpoint(t)
	f.setAnswer(func(form url.Values, n int64) (int, string) { return 200, okExchange(form, n, 12) })
	cfg := exchangeGatewayConfig(is, f, up.URL)
	clk := newFakeClock(time.Now())
	g, err := New(cfg, Deps{Issuer: is.URL, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	ctx, cancel := testContext(t, 5*time.Second)
	defer cancel()
	if err := g.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(g)
	t.Cleanup(srv.Close)
	tg := &testGateway{G: g, Proxy: srv, Logs: &syncbuf.Buffer{}}
	tok := is.mint(t, map[string]any{"scope": "orders:read", "exp": time.Now().Add(time.Hour).Unix()})
	get := func() string {
		resp, body := tg.do(t, "GET", "/orders/1", tok, nil)
		return upstreamToken(t, resp, body)
	}
	first := get()
	clk.Advance(1500 * time.Millisecond) // 10.5s left: still handed out
	if get() != first || f.calls.Load() != 1 {
		t.Fatalf("token not reused while fresh (%d calls)", f.calls.Load())
	}
	clk.Advance(time.Second) // 9.5s left: too close to expiry
	if second := get(); second == first || f.calls.Load() != 2 {
		t.Fatalf("token reused in its last seconds (%d calls)", f.calls.Load())
	}

	// A token valid for less than the early-expiry margin serves one request.
	f.setAnswer(func(form url.Values, n int64) (int, string) { return 200, okExchange(form, n, 5) })
	clk.Advance(time.Minute)
	get()
	get()
	if n := f.calls.Load(); n != 4 {
		t.Fatalf("short-lived exchanged token cached: %d calls, want 4", n)
	}
}

func TestExchangeNeverPastSubjectExpiry(t *testing.T) {
	f := newFakeTokenEndpoint(t) // expires_in 300
	clk := newFakeClock(time.Now())
	x := newTestExchanger(f, clk.Now)
	subjectExp := clk.Now().Add(30 * time.Second)
	a, err := x.token(t.Context(), "subject", ordersAudience, nil, subjectExp)
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(29 * time.Second)
	if b, _ := x.token(t.Context(), "subject", ordersAudience, nil, subjectExp); b != a || f.calls.Load() != 1 {
		t.Fatalf("not cached before the subject's exp (%d calls)", f.calls.Load())
	}
	clk.Advance(time.Second) // exactly exp
	if b, _ := x.token(t.Context(), "subject", ordersAudience, nil, subjectExp); b == a || f.calls.Load() != 2 {
		t.Fatalf("exchanged token reused at the subject token's exp (%d calls)", f.calls.Load())
	}
}

func TestExchangeErrors(t *testing.T) {
	is := newTestIssuer(t)
	up := newEcho(t)
	f := newFakeTokenEndpoint(t)
	tg := startGateway(t, is, exchangeGatewayConfig(is, f, up.URL), nil)
	valid := map[string]any{"access_token": "leaked-internal-token", "issued_token_type": tokenTypeAccess, "token_type": "Bearer", "expires_in": 300}
	answer := func(mod map[string]any) string {
		m := map[string]any{}
		for k, v := range valid {
			m[k] = v
		}
		for k, v := range mod {
			if v == nil {
				delete(m, k)
			} else {
				m[k] = v
			}
		}
		b, _ := json.Marshal(m)
		return string(b)
	}
	oauthErr := func(code string) string { return `{"error":"` + code + `","error_description":"no"}` }
	tests := []struct {
		name   string
		status int
		body   string
		want   int
	}{
		{"refused/invalid_grant", 400, oauthErr("invalid_grant"), 401},
		{"refused/invalid_request", 400, oauthErr("invalid_request"), 401},
		{"refused/no body", 400, ``, 401},
		{"forbidden/invalid_scope", 400, oauthErr("invalid_scope"), 403},
		{"forbidden/invalid_target", 400, oauthErr("invalid_target"), 403},
		{"refused/suffix is not the code", 400, oauthErr("not_invalid_scope"), 401},
		{"unavailable/invalid_client", 401, oauthErr("invalid_client"), 503},
		{"unavailable/invalid_client as 400", 400, oauthErr("invalid_client"), 503},
		{"unavailable/unauthorized_client", 400, oauthErr("unauthorized_client"), 503},
		{"unavailable/500", 500, `oops`, 503},
		{"unavailable/redirect", 302, ``, 503},
		{"malformed/issued_token_type", 200, answer(map[string]any{"issued_token_type": "urn:ietf:params:oauth:token-type:id_token"}), 503},
		{"malformed/no issued_token_type", 200, answer(map[string]any{"issued_token_type": nil}), 503},
		{"malformed/token_type N_A", 200, answer(map[string]any{"token_type": "N_A"}), 503},
		{"malformed/token_type DPoP", 200, answer(map[string]any{"token_type": "DPoP"}), 503},
		{"malformed/no expires_in", 200, answer(map[string]any{"expires_in": nil}), 503},
		{"malformed/expires_in 0", 200, answer(map[string]any{"expires_in": 0}), 503},
		{"malformed/expires_in negative", 200, answer(map[string]any{"expires_in": -5}), 503},
		{"malformed/expires_in string", 200, answer(map[string]any{"expires_in": "300"}), 503},
		{"malformed/no access_token", 200, answer(map[string]any{"access_token": nil}), 503},
		{"malformed/access_token with space", 200, answer(map[string]any{"access_token": "a b"}), 503},
		{"malformed/access_token with newline", 200, answer(map[string]any{"access_token": "a\r\nX-Auth-Subject: admin"}), 503},
		{"malformed/access_token with NUL", 200, answer(map[string]any{"access_token": "a\x00b"}), 503},
		{"malformed/access_token non-ASCII", 200, answer(map[string]any{"access_token": "caf\u00e9"}), 503},
		{"malformed/access_token too long", 200, answer(map[string]any{"access_token": strings.Repeat("a", maxTokenLen+1)}), 503},
		{"malformed/trailing garbage", 200, answer(nil) + `garbage`, 503},
		{"malformed/second object", 200, answer(nil) + `{"access_token":"other"}`, 503},
		{"malformed/not JSON", 200, `access_token=x`, 503},
		{"malformed/array", 200, `[` + answer(nil) + `]`, 503},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f.setAnswer(func(url.Values, int64) (int, string) { return tc.status, tc.body })
			resp, body := tg.do(t, "GET", "/orders/1", is.user(t, "usr_alice", "orders:read"), nil)
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.want, body)
			}
			switch tc.want {
			case 401:
				if !strings.Contains(resp.Header.Get("WWW-Authenticate"), "invalid_token") {
					t.Fatalf("WWW-Authenticate %q", resp.Header.Get("WWW-Authenticate"))
				}
			case 403:
				if !strings.Contains(body, `"error":"forbidden"`) {
					t.Fatalf("body %s", body)
				}
			case 503:
				if resp.Header.Get("Retry-After") == "" {
					t.Fatal("503 without Retry-After")
				}
			}
			if strings.Contains(body, "leaked-internal-token") {
				t.Fatalf("the answer leaked: %s", body)
			}
		})
	}
	// Failures are never cached: a good answer is used at once.
	f.setAnswer(nil)
	resp, body := tg.do(t, "GET", "/orders/1", is.user(t, "usr_alice", "orders:read"), nil)
	upstreamToken(t, resp, body)
}

func TestExchangeIdPDown(t *testing.T) {
	is := newTestIssuer(t)
	up := newEcho(t)
	f := newFakeTokenEndpoint(t)
	cfg := exchangeGatewayConfig(is, f, up.URL)
	f.srv.Close() // nothing listens there any more
	tg := startGateway(t, is, cfg, nil)
	resp, body := tg.do(t, "GET", "/orders/1", is.user(t, "usr_alice", "orders:read"), nil)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("status %d, Retry-After %q: %s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	if !strings.Contains(body, "temporarily_unavailable") {
		t.Fatalf("body %s", body)
	}
}

func TestExchangeCacheBounded(t *testing.T) {
	now := time.Now()
	fill := func(x *exchanger, expired int) {
		for i := range exchangeCacheMax {
			exp := now.Add(time.Minute)
			if i < expired {
				exp = now.Add(-time.Second)
			}
			x.cache[exchangeKey(fmt.Sprint("tok", i), "aud", nil)] = exchanged{token: "t", expiry: exp}
		}
	}
	t.Run("expired first", func(t *testing.T) {
		x := newExchanger(exchangeConfig{Now: func() time.Time { return now }})
		fill(x, exchangeCacheMax/2)
		x.evict(now)
		if len(x.cache) != exchangeCacheMax-exchangeCacheMax/2 {
			t.Fatalf("%d entries left", len(x.cache))
		}
		for _, e := range x.cache {
			if !now.Before(e.expiry) {
				t.Fatal("an expired entry survived")
			}
		}
	})
	t.Run("all fresh", func(t *testing.T) {
		x := newExchanger(exchangeConfig{Now: func() time.Time { return now }})
		fill(x, 0)
		x.evict(now)
		if n := len(x.cache); n >= exchangeCacheMax*9/10 || n < exchangeCacheMax*8/10 {
			t.Fatalf("%d entries left", n)
		}
	})
	t.Run("through token", func(t *testing.T) {
		f := newFakeTokenEndpoint(t)
		x := newTestExchanger(f, func() time.Time { return now })
		fill(x, 0)
		if _, err := x.token(t.Context(), "new", "aud", nil, time.Time{}); err != nil {
			t.Fatal(err)
		}
		if n := len(x.cache); n > exchangeCacheMax*9/10 {
			t.Fatalf("cache not bounded: %d", n)
		}
		if _, ok := x.cache[exchangeKey("new", "aud", nil)]; !ok {
			t.Fatal("new entry not cached")
		}
	})
}

// TestExchangeKey: the cache key separates every component, with no
// ambiguity from concatenation.
func TestExchangeKey(t *testing.T) {
	base := exchangeKey("tok", "aud", []string{"a", "b"})
	for name, k := range map[string][32]byte{
		"token":    exchangeKey("tok2", "aud", []string{"a", "b"}),
		"audience": exchangeKey("tok", "aud2", []string{"a", "b"}),
		"scopes":   exchangeKey("tok", "aud", []string{"a"}),
		"shift":    exchangeKey("toka", "ud", []string{"a", "b"}),
		"join":     exchangeKey("tok", "aud", []string{"a b"}),
	} {
		if k == base {
			t.Errorf("%s: same key", name)
		}
	}
}

// TestExchangeNoRedirect: a redirect from the token endpoint is not
// followed; the subject token and client credentials go nowhere else (OA-D).
func TestExchangeNoRedirect(t *testing.T) {
	var elsewhere atomic.Int64
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		elsewhere.Add(1)
		_, _ = w.Write([]byte(okExchange(url.Values{}, 1, 300)))
	}))
	t.Cleanup(other.Close)
	for _, code := range []int{301, 302, 307, 308} {
		t.Run(strconv.Itoa(code), func(t *testing.T) {
			redir := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, other.URL+"/steal", code)
			}))
			t.Cleanup(redir.Close)
			x := newExchanger(exchangeConfig{Endpoint: redir.URL, ClientID: xchgClientID, ClientSecret: xchgClientSecret,
				HTTPClient: http.DefaultClient, Now: time.Now})
			_, err := x.token(t.Context(), "subject", ordersAudience, nil, time.Time{})
			if !errors.Is(err, errExchangeUnavailable) {
				t.Fatalf("err %v", err)
			}
			if n := elsewhere.Load(); n != 0 {
				t.Fatalf("the redirect was followed (%d requests)", n)
			}
			if http.DefaultClient.CheckRedirect != nil {
				t.Fatal("the shared client was changed")
			}
		})
	}
}

// FuzzExchangeAnswer: whatever the token endpoint answers, the parser either
// refuses with one of the two exchange errors or returns a header-safe token
// with a ttl of at most an hour.
func FuzzExchangeAnswer(f *testing.F) {
	f.Add(200, []byte(okExchange(url.Values{"subject_token": {"s"}, "audience": {"a"}}, 1, 300)))
	f.Add(200, []byte(`{"access_token":"x","issued_token_type":"`+tokenTypeAccess+`","token_type":"bearer","expires_in":1e3}`))
	f.Add(200, []byte(`{"access_token":"x","issued_token_type":"`+tokenTypeAccess+`","token_type":"Bearer","expires_in":99999999999} `))
	f.Add(400, []byte(`{"error":"invalid_scope"}`))
	f.Add(400, []byte(`{"error":"invalid_client"}`))
	f.Add(503, []byte(`<html>`))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		tok, ttl, err := parseExchangeAnswer(status, body)
		if err != nil {
			if !errors.Is(err, errExchangeRefused) && !errors.Is(err, errExchangeUnavailable) {
				t.Fatalf("unclassified error %v", err)
			}
			if tok != "" || ttl != 0 {
				t.Fatal("a token with an error")
			}
			if d := exchangeDenial(err); d.status != 401 && d.status != 403 && d.status != 503 {
				t.Fatalf("denial status %d", d.status)
			}
			return
		}
		if status != 200 || !visibleASCII(tok) || ttl <= 0 || ttl > time.Hour {
			t.Fatalf("accepted %d: %q %s", status, tok, ttl)
		}
	})
}
