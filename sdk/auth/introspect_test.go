package auth

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const (
	testIntroIssuer   = "https://idp.example"
	testIntroAudience = "https://api.example"
	testIntroClientID = "rs:orders" // needs form-encoding in Basic auth
	testIntroSecret   = "s3cr&t%"
)

// introClock is an injectable clock for the introspection tests.
type introClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *introClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *introClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// fakeIntrospectionIdP is an RFC 7662 endpoint whose answer the test sets.
type fakeIntrospectionIdP struct {
	t      testing.TB
	srv    *httptest.Server
	calls  atomic.Int64
	mu     sync.Mutex
	status int
	ctype  string
	body   func(token string) string
}

func newFakeIntrospectionIdP(t testing.TB) *fakeIntrospectionIdP {
	f := &fakeIntrospectionIdP{t: t, status: http.StatusOK, ctype: "application/json; charset=utf-8"}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeIntrospectionIdP) serve(w http.ResponseWriter, r *http.Request) {
	f.calls.Add(1)
	user, pass, ok := r.BasicAuth()
	if !ok || user != "rs%3Aorders" || pass != "s3cr%26t%25" {
		f.t.Errorf("client authentication: got %q %q %v", user, pass, ok)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
		f.t.Errorf("request: %s %q", r.Method, r.Header.Get("Content-Type"))
	}
	if err := r.ParseForm(); err != nil || r.PostForm.Get("token_type_hint") != "access_token" || len(r.URL.Query()) != 0 {
		f.t.Errorf("form: %v %v (query %v)", err, r.PostForm, r.URL.RawQuery)
	}
	f.mu.Lock()
	status, ctype, body := f.status, f.ctype, f.body
	f.mu.Unlock()
	w.Header().Set("Content-Type", ctype)
	w.WriteHeader(status)
	if body != nil {
		_, _ = w.Write([]byte(body(r.PostForm.Get("token"))))
	}
}

func (f *fakeIntrospectionIdP) set(status int, body func(token string) string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.status, f.body = status, body
}

func (f *fakeIntrospectionIdP) answer(s string) {
	f.set(http.StatusOK, func(string) string { return s })
}

// activeAnswer is a Gatehouse-style answer for a token expiring at exp.
func activeAnswer(exp time.Time) string {
	m := map[string]any{
		"active": true, "scope": "orders:read orders:write", "client_id": "web", "sub": "alice",
		"aud": []string{testIntroAudience, "https://other.example"}, "iss": testIntroIssuer, "exp": exp.Unix(),
		"iat": exp.Add(-time.Hour).Unix(), "jti": "j-1", "token_type": "Bearer",
		"roles": []string{"admin"}, "groups": []string{"eng"}, "tenant": "acme", "acr": "mfa",
	}
	b, _ := json.Marshal(m)
	return string(b)
}

func newTestIntrospector(t testing.TB, f *fakeIntrospectionIdP, clk *introClock, tweak func(*IntrospectorConfig)) *Introspector {
	t.Helper()
	cfg := IntrospectorConfig{
		Endpoint: f.srv.URL + "/introspect", ClientID: testIntroClientID, ClientSecret: testIntroSecret,
		Issuer: testIntroIssuer, Audience: testIntroAudience, Now: clk.now,
	}
	if tweak != nil {
		tweak(&cfg)
	}
	i, err := NewIntrospector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return i
}

func newIntroClock() *introClock { return &introClock{t: time.Unix(1_800_000_000, 0)} }

func TestIntrospectorActive(t *testing.T) {
	clk := newIntroClock()
	f := newFakeIntrospectionIdP(t)
	exp := clk.now().Add(time.Hour)
	f.answer(activeAnswer(exp))
	i := newTestIntrospector(t, f, clk, nil)
	c, err := i.Authenticate(context.Background(), "tok-1")
	if err != nil {
		t.Fatal(err)
	}
	if c.Issuer != testIntroIssuer || c.Subject != "alice" || c.ClientID != "web" || c.Tenant != "acme" ||
		c.ID != "j-1" || c.Token != "tok-1" || !c.Expiry.Equal(exp) || !c.IssuedAt.Equal(exp.Add(-time.Hour)) {
		t.Fatalf("claims: %+v", c)
	}
	if !c.HasScope("orders:read") || !c.HasScope("orders:write") || len(c.Scopes) != 2 ||
		!c.HasRole("admin") || !c.HasGroup("eng") || len(c.Audience) != 2 {
		t.Fatalf("claims lists: %+v", c)
	}
	if string(c.Extra["acr"]) != `"mfa"` || c.Extra["active"] != nil {
		t.Fatalf("extra: %v", c.Extra)
	}
}

func TestIntrospectorRejects(t *testing.T) {
	now := newIntroClock().now()
	exp := now.Add(time.Hour).Unix()
	// base returns an active answer with member k replaced by raw JSON v
	// (or removed when v is empty).
	base := func(k, v string) string {
		m := map[string]json.RawMessage{
			"active": json.RawMessage(`true`), "iss": json.RawMessage(`"` + testIntroIssuer + `"`),
			"aud": json.RawMessage(`"` + testIntroAudience + `"`), "exp": json.RawMessage(fmt.Sprint(exp)),
			"sub": json.RawMessage(`"alice"`), "token_type": json.RawMessage(`"access_token"`),
		}
		if v == "" {
			delete(m, k)
		} else {
			m[k] = json.RawMessage(v)
		}
		b, err := json.Marshal(m)
		if err != nil {
			panic(err)
		}
		return string(b)
	}
	cases := []struct {
		name string
		body string
		want error // nil: accepted
	}{
		{"baseline", base("", ""), nil},
		{"inactive", `{"active":false}`, ErrInvalidToken},
		{"inactive-with-claims", base("active", "false"), ErrInvalidToken},
		{"active-string", base("active", `"true"`), ErrUnavailable},
		{"active-number", base("active", `1`), ErrUnavailable},
		{"active-null", base("active", `null`), ErrUnavailable},
		{"active-missing", base("active", ""), ErrUnavailable},
		{"JWT-E02/duplicate-active", `{"active":false,"active":true,"aud":"` + testIntroAudience + `","exp":` + fmt.Sprint(exp) + `}`, ErrUnavailable},
		{"JWT-E02/case-variant-active", `{"Active":true,"active":false}`, ErrUnavailable},
		{"JWT-E02/duplicate-sub", strings.Replace(base("", ""), `"sub":"alice"`, `"sub":"alice","sub":"admin"`, 1), ErrUnavailable},
		{"JWT-E02/case-variant-sub", strings.Replace(base("", ""), `"sub":"alice"`, `"sub":"alice","Sub":"admin"`, 1), ErrUnavailable},
		{"JWT-E02/kelvin-variant", strings.Replace(base("", ""), `"sub":"alice"`, `"sub":"alice","to\u212aen_type":"refresh_token"`, 1), ErrUnavailable},
		{"JWT-E02/trailing-garbage", base("", "") + `{}`, ErrUnavailable},
		{"JWT-E02/not-object", `[true]`, ErrUnavailable},
		{"JWT-E02/non-utf8", "{\"active\":true,\"sub\":\"\xff\"}", ErrUnavailable},
		{"JWT-E02/empty", ``, ErrUnavailable},
		{"JWT-C02/iss-trailing-slash", base("iss", `"`+testIntroIssuer+`/"`), ErrInvalidToken},
		{"JWT-C02/iss-other-case", base("iss", `"HTTPS://IDP.EXAMPLE"`), ErrInvalidToken},
		{"JWT-C02/iss-suffix", base("iss", `"`+testIntroIssuer+`.evil"`), ErrInvalidToken},
		{"JWT-C02/iss-array", base("iss", `["`+testIntroIssuer+`"]`), ErrUnavailable},
		{"JWT-C02/iss-absent-accepted", base("iss", ""), nil},
		{"JWT-C03/aud-array-accepted", base("aud", `["x","`+testIntroAudience+`"]`), nil},
		{"JWT-C03/aud-empty-array", base("aud", `[]`), ErrUnavailable},
		{"JWT-C03/aud-empty-string", base("aud", `""`), ErrUnavailable},
		{"JWT-C03/aud-missing", base("aud", ""), ErrInvalidToken},
		{"JWT-C03/aud-number", base("aud", `5`), ErrUnavailable},
		{"JWT-C03/aud-mixed", base("aud", `["`+testIntroAudience+`",5]`), ErrUnavailable},
		{"JWT-C03/aud-case", base("aud", `["HTTPS://API.EXAMPLE"]`), ErrInvalidToken},
		{"JWT-C03/aud-other-api", base("aud", `"https://billing.example"`), ErrInvalidToken},
		{"JWT-C01/exp-missing", base("exp", ""), ErrInvalidToken},
		{"JWT-C01/exp-now", base("exp", fmt.Sprint(now.Unix())), ErrInvalidToken},
		{"JWT-C01/exp-past", base("exp", fmt.Sprint(now.Unix()-1)), ErrInvalidToken},
		{"JWT-C01/exp-string", base("exp", `"`+fmt.Sprint(exp)+`"`), ErrUnavailable},
		{"JWT-C01/exp-1e300", base("exp", `1e300`), ErrUnavailable},
		{"JWT-C01/exp-negative", base("exp", `-1`), ErrUnavailable},
		{"JWT-C01/exp-null", base("exp", `null`), ErrUnavailable},
		{"JWT-C01/exp-maxint", base("exp", `9223372036854775807`), ErrUnavailable},
		{"JWT-C01/exp-fraction", base("exp", fmt.Sprint(exp)+`.5`), ErrUnavailable},
		{"JWT-C01/nbf-future", base("nbf", fmt.Sprint(now.Unix()+60)), ErrInvalidToken},
		{"JWT-D01/refresh-token", base("token_type", `"refresh_token"`), ErrInvalidToken},
		{"JWT-D01/id-token", base("token_type", `"id_token"`), ErrInvalidToken},
		{"JWT-D01/bearer-case-accepted", base("token_type", `"bEaReR"`), nil},
		{"JWT-D01/token-type-absent-accepted", base("token_type", ""), nil},
		{"JWT-C04/scope-array", base("scope", `["a","b"]`), ErrUnavailable},
		{"roles-not-array", base("roles", `"admin"`), ErrUnavailable},
		{"tenant-number", base("tenant", `1`), ErrUnavailable},
		{"JWT-F01/huge-body", `{"active":true,"x":"` + strings.Repeat("a", maxIntrospectBody) + `"}`, ErrUnavailable},
		{"JWT-F01/deep-nesting", `{"active":true,"x":` + strings.Repeat("[", 10000) + strings.Repeat("]", 10000) + `}`, ErrUnavailable},
		{"JWT-F01/huge-aud-within-cap", base("aud", `[`+strings.Repeat(`"x",`, 50000)+`"y"]`), ErrInvalidToken},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clk := newIntroClock()
			f := newFakeIntrospectionIdP(t)
			f.answer(tc.body)
			i := newTestIntrospector(t, f, clk, nil)
			c, err := i.Authenticate(context.Background(), "tok")
			if tc.want == nil {
				if err != nil || c == nil {
					t.Fatalf("want accepted, got %v", err)
				}
				return
			}
			if !errors.Is(err, tc.want) || c != nil {
				t.Fatalf("got %v (claims %v), want %v", err, c, tc.want)
			}
			// A refusal is never cached.
			_, _ = i.Authenticate(context.Background(), "tok")
			if n := f.calls.Load(); n != 2 {
				t.Fatalf("refusal cached: %d calls", n)
			}
		})
	}
}

func TestIntrospectorIdPFailuresFailClosed(t *testing.T) {
	clk := newIntroClock()
	cases := []struct {
		name  string
		setup func(f *fakeIntrospectionIdP)
	}{
		{"500", func(f *fakeIntrospectionIdP) {
			f.set(500, func(string) string { return activeAnswer(clk.now().Add(time.Hour)) })
		}},
		{"503", func(f *fakeIntrospectionIdP) { f.set(503, nil) }},
		{"401", func(f *fakeIntrospectionIdP) { f.set(401, func(string) string { return `{"error":"invalid_client"}` }) }},
		{"400", func(f *fakeIntrospectionIdP) {
			f.set(400, func(string) string { return `{"error":"invalid_request"}` })
		}},
		{"redirect-not-followed", func(f *fakeIntrospectionIdP) { f.set(http.StatusTemporaryRedirect, nil) }},
		{"wrong-content-type", func(f *fakeIntrospectionIdP) {
			f.mu.Lock()
			f.ctype = "text/html"
			f.mu.Unlock()
			f.answer(activeAnswer(clk.now().Add(time.Hour)))
		}},
		{"connection-refused", func(f *fakeIntrospectionIdP) { f.srv.Close() }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeIntrospectionIdP(t)
			tc.setup(f)
			i := newTestIntrospector(t, f, clk, nil)
			c, err := i.Authenticate(context.Background(), "tok")
			if !errors.Is(err, ErrUnavailable) || c != nil {
				t.Fatalf("got %v, want ErrUnavailable", err)
			}
			if strings.Contains(err.Error(), "tok\"") || strings.Contains(err.Error(), testIntroSecret) {
				t.Fatalf("error leaks a secret: %v", err)
			}
		})
	}
}

func TestIntrospectorTokenPrechecks(t *testing.T) {
	clk := newIntroClock()
	f := newFakeIntrospectionIdP(t)
	f.answer(activeAnswer(clk.now().Add(time.Hour)))
	i := newTestIntrospector(t, f, clk, nil)
	for name, tok := range map[string]string{
		"empty": "", "JWT-F01/too-long": strings.Repeat("a", maxIntrospectTokenLen+1),
		"JWT-E01/space": "a b", "JWT-E01/newline": "a\nb", "non-ascii": "tök",
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := i.Authenticate(context.Background(), tok); !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("got %v", err)
			}
		})
	}
	if n := f.calls.Load(); n != 0 {
		t.Fatalf("%d calls made for malformed tokens", n)
	}
}

func TestIntrospectorConfig(t *testing.T) {
	ok := IntrospectorConfig{Endpoint: "https://idp.example/introspect", ClientID: "c", ClientSecret: "s", Issuer: testIntroIssuer, Audience: testIntroAudience}
	cases := []struct {
		name   string
		tweak  func(*IntrospectorConfig)
		wantOK bool
	}{
		{"valid", func(*IntrospectorConfig) {}, true},
		{"http-loopback", func(c *IntrospectorConfig) { c.Endpoint = "http://127.0.0.1:8080/i" }, true},
		{"http-localhost", func(c *IntrospectorConfig) { c.Endpoint = "http://localhost:8080/i" }, true},
		{"http-ipv6-loopback", func(c *IntrospectorConfig) { c.Endpoint = "http://[::1]:8080/i" }, true},
		{"http-remote", func(c *IntrospectorConfig) { c.Endpoint = "http://idp.example/i" }, false},
		{"http-localhost-suffix", func(c *IntrospectorConfig) { c.Endpoint = "http://localhost.evil.example/i" }, false},
		{"relative", func(c *IntrospectorConfig) { c.Endpoint = "/introspect" }, false},
		{"userinfo", func(c *IntrospectorConfig) { c.Endpoint = "https://u:p@idp.example/i" }, false},
		{"ftp", func(c *IntrospectorConfig) { c.Endpoint = "ftp://idp.example/i" }, false},
		{"no-client-id", func(c *IntrospectorConfig) { c.ClientID = "" }, false},
		{"no-secret", func(c *IntrospectorConfig) { c.ClientSecret = "" }, false},
		{"no-issuer", func(c *IntrospectorConfig) { c.Issuer = "" }, false},
		{"no-audience", func(c *IntrospectorConfig) { c.Audience = "" }, false},
		{"negative-ttl", func(c *IntrospectorConfig) { c.CacheTTL = -time.Second }, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := ok
			tc.tweak(&cfg)
			_, err := NewIntrospector(cfg)
			if (err == nil) != tc.wantOK {
				t.Fatalf("err = %v, want ok=%v", err, tc.wantOK)
			}
		})
	}
}

func TestIntrospectorCache(t *testing.T) {
	t.Run("hit-avoids-second-call", func(t *testing.T) {
		clk := newIntroClock()
		f := newFakeIntrospectionIdP(t)
		f.answer(activeAnswer(clk.now().Add(time.Hour)))
		i := newTestIntrospector(t, f, clk, nil)
		for range 5 {
			if _, err := i.Authenticate(context.Background(), "tok"); err != nil {
				t.Fatal(err)
			}
			clk.advance(time.Second)
		}
		if n := f.calls.Load(); n != 1 {
			t.Fatalf("%d calls, want 1", n)
		}
	})
	t.Run("GW-06/never-past-exp", func(t *testing.T) {
		clk := newIntroClock()
		f := newFakeIntrospectionIdP(t)
		f.answer(activeAnswer(clk.now().Add(3 * time.Second)))
		i := newTestIntrospector(t, f, clk, func(c *IntrospectorConfig) { c.CacheTTL = time.Minute })
		if _, err := i.Authenticate(context.Background(), "tok"); err != nil {
			t.Fatal(err)
		}
		clk.advance(3 * time.Second) // now == exp: the cached entry must be gone
		if _, err := i.Authenticate(context.Background(), "tok"); !errors.Is(err, ErrInvalidToken) {
			t.Fatalf("expired token accepted: %v", err)
		}
		if n := f.calls.Load(); n != 2 {
			t.Fatalf("%d calls, want 2", n)
		}
	})
	t.Run("revocation-visible-after-ttl", func(t *testing.T) {
		clk := newIntroClock()
		f := newFakeIntrospectionIdP(t)
		f.answer(activeAnswer(clk.now().Add(time.Hour)))
		i := newTestIntrospector(t, f, clk, func(c *IntrospectorConfig) { c.CacheTTL = 5 * time.Second })
		if _, err := i.Authenticate(context.Background(), "tok"); err != nil {
			t.Fatal(err)
		}
		f.answer(`{"active":false}`) // revoked at the IdP
		clk.advance(4 * time.Second)
		if _, err := i.Authenticate(context.Background(), "tok"); err != nil {
			t.Fatalf("within TTL: %v", err)
		}
		clk.advance(time.Second)
		if _, err := i.Authenticate(context.Background(), "tok"); !errors.Is(err, ErrInvalidToken) {
			t.Fatalf("revoked token accepted after TTL: %v", err)
		}
	})
	t.Run("bounded-size", func(t *testing.T) {
		clk := newIntroClock()
		f := newFakeIntrospectionIdP(t)
		f.answer(activeAnswer(clk.now().Add(time.Hour)))
		i := newTestIntrospector(t, f, clk, func(c *IntrospectorConfig) { c.CacheSize = 3 })
		for k := range 10 {
			if _, err := i.Authenticate(context.Background(), fmt.Sprint("tok-", k)); err != nil {
				t.Fatal(err)
			}
		}
		if n := i.cache.len(); n != 3 {
			t.Fatalf("cache holds %d entries, want 3", n)
		}
		// The most recent tokens are cached; the oldest were evicted.
		before := f.calls.Load()
		_, _ = i.Authenticate(context.Background(), "tok-9")
		_, _ = i.Authenticate(context.Background(), "tok-0")
		if got := f.calls.Load() - before; got != 1 {
			t.Fatalf("%d calls, want 1 (tok-9 cached, tok-0 evicted)", got)
		}
	})
	t.Run("keys-are-hashes", func(t *testing.T) {
		clk := newIntroClock()
		f := newFakeIntrospectionIdP(t)
		f.answer(activeAnswer(clk.now().Add(time.Hour)))
		i := newTestIntrospector(t, f, clk, nil)
		if _, err := i.Authenticate(context.Background(), "tok"); err != nil {
			t.Fatal(err)
		}
		if _, ok := i.cache.items[sha256.Sum256([]byte("tok"))]; !ok || len(i.cache.items) != 1 {
			t.Fatal("cache is not keyed by the token's SHA-256")
		}
	})
	t.Run("disabled", func(t *testing.T) {
		clk := newIntroClock()
		f := newFakeIntrospectionIdP(t)
		f.answer(activeAnswer(clk.now().Add(time.Hour)))
		i := newTestIntrospector(t, f, clk, func(c *IntrospectorConfig) { c.CacheSize = -1 })
		for range 3 {
			if _, err := i.Authenticate(context.Background(), "tok"); err != nil {
				t.Fatal(err)
			}
		}
		if n := f.calls.Load(); n != 3 {
			t.Fatalf("%d calls, want 3", n)
		}
	})
}

func TestIntrospectorSingleFlight(t *testing.T) {
	clk := newIntroClock()
	f := newFakeIntrospectionIdP(t)
	release := make(chan struct{})
	exp := clk.now().Add(time.Hour)
	f.set(http.StatusOK, func(string) string { <-release; return activeAnswer(exp) })
	i := newTestIntrospector(t, f, clk, nil)
	const n = 20
	var started, done sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		started.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			started.Done()
			_, err := i.Authenticate(context.Background(), "tok")
			errs <- err
		}()
	}
	started.Wait()
	// Wait until the one call is at the IdP, and every caller has joined it.
	deadline := time.Now().Add(10 * time.Second)
	for f.calls.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	close(release)
	done.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	// Callers that joined the flight share its answer; any that arrived
	// after it ended find the cache filled.
	if got := f.calls.Load(); got != 1 {
		t.Fatalf("%d calls for %d concurrent identical lookups", got, n)
	}
}

func TestIntrospectorCallerCancelDoesNotFailOthers(t *testing.T) {
	clk := newIntroClock()
	f := newFakeIntrospectionIdP(t)
	release := make(chan struct{})
	exp := clk.now().Add(time.Hour)
	f.set(http.StatusOK, func(string) string { <-release; return activeAnswer(exp) })
	i := newTestIntrospector(t, f, clk, nil)
	ctx, cancel := context.WithCancel(context.Background())
	first := make(chan error, 1)
	go func() { _, err := i.Authenticate(ctx, "tok"); first <- err }()
	deadline := time.Now().Add(10 * time.Second)
	for f.calls.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-first; !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled caller: %v", err)
	}
	second := make(chan error, 1)
	go func() { _, err := i.Authenticate(context.Background(), "tok"); second <- err }()
	close(release)
	if err := <-second; err != nil {
		t.Fatalf("other caller: %v", err)
	}
}

func FuzzParseIntrospection(f *testing.F) {
	f.Add([]byte(activeAnswer(time.Unix(1_900_000_000, 0))))
	f.Add([]byte(`{"active":false}`))
	f.Add([]byte(`{"active":"true","aud":["a",1],"exp":1e300}`))
	f.Add([]byte(`{"active":true,"Active":false}`))
	f.Add([]byte(`{"a":[[[{"b":{}}]]],"active":true}`))
	now := time.Unix(1_800_000_000, 0)
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := parseIntrospection(body)
		if err != nil {
			if !errors.Is(err, errMalformedResponse) {
				t.Fatalf("unexpected error class: %v", err)
			}
			return
		}
		c, err := r.claims(testIntroIssuer, testIntroAudience, now)
		if err != nil {
			if !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("unexpected error class: %v", err)
			}
			return
		}
		if !r.active || !c.Expiry.After(now) || !slices.Contains(c.Audience, testIntroAudience) {
			t.Fatalf("accepted an unacceptable answer: %q", body)
		}
	})
}

// TestIntrospectorBehindProtect runs the Introspector under the HTTP
// middleware: valid tokens reach the handler with their claims, inactive
// ones get 401 and an unreachable IdP 503, never an allow.
func TestIntrospectorBehindProtect(t *testing.T) {
	clk := newIntroClock()
	f := newFakeIntrospectionIdP(t)
	f.set(http.StatusOK, func(tok string) string {
		if tok == "active-tok" {
			return activeAnswer(clk.now().Add(time.Hour))
		}
		return `{"active":false}`
	})
	i := newTestIntrospector(t, f, clk, nil)
	h := Protect(i, RequireScopes("orders:read"), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := ClaimsFromContext(r.Context())
		_, _ = w.Write([]byte(c.Subject))
	}))
	do := func(tok string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, "/orders", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		h.ServeHTTP(rec, req)
		return rec
	}
	if rec := do("active-tok"); rec.Code != http.StatusOK || rec.Body.String() != "alice" {
		t.Fatalf("active: %d %q", rec.Code, rec.Body.String())
	}
	if rec := do("revoked-tok"); rec.Code != http.StatusUnauthorized {
		t.Fatalf("inactive: %d", rec.Code)
	}
	f.set(http.StatusInternalServerError, nil)
	if rec := do("other-tok"); rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("IdP down: %d", rec.Code)
	}
}
