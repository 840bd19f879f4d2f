package auth

import (
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

	"golang.org/x/oauth2"
)

// fakeTokenEndpoint issues client credentials tokens "t-1", "t-2", ...
type fakeTokenEndpoint struct {
	t     testing.TB
	srv   *httptest.Server
	calls atomic.Int64
	mu    sync.Mutex
	fail  bool
	typ   string
	life  int // expires_in; 0: omitted
	block chan struct{}
}

func newFakeTokenEndpoint(t testing.TB, life int) *fakeTokenEndpoint {
	f := &fakeTokenEndpoint{t: t, typ: "Bearer", life: life}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeTokenEndpoint) serve(w http.ResponseWriter, r *http.Request) {
	n := f.calls.Add(1)
	f.mu.Lock()
	fail, typ, life, block := f.fail, f.typ, f.life, f.block
	f.mu.Unlock()
	if block != nil {
		<-block
	}
	if u, p, ok := r.BasicAuth(); !ok || u != "svc%3Aorders" || p != "pa%26ss" {
		f.t.Errorf("client auth: %q %q %v", u, p, ok)
	}
	_ = r.ParseForm()
	if r.PostForm.Get("grant_type") != "client_credentials" || r.PostForm.Get("scope") != "inventory:read inventory:write" ||
		!slices.Equal(r.PostForm["resource"], []string{"https://inventory.example", "https://billing.example"}) ||
		r.PostForm.Get("client_secret") != "" {
		f.t.Errorf("token request form: %v", r.PostForm)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if fail {
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"error":"invalid_client"}`))
		return
	}
	exp := ""
	if life > 0 {
		exp = fmt.Sprintf(`,"expires_in":%d`, life)
	}
	fmt.Fprintf(w, `{"access_token":"t-%d","token_type":%q%s}`, n, typ, exp)
}

func (f *fakeTokenEndpoint) setFail(b bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail = b
}

// ccClock is real time plus an adjustable offset: oauth2 computes expiry
// from expires_in with the real clock.
type ccClock struct{ off atomic.Int64 }

func (c *ccClock) now() time.Time          { return time.Now().Add(time.Duration(c.off.Load())) }
func (c *ccClock) advance(d time.Duration) { c.off.Add(int64(d)) }

func newTestClientCredentials(t testing.TB, f *fakeTokenEndpoint, clk *ccClock, early time.Duration) oauth2.TokenSource {
	t.Helper()
	ts, err := NewClientCredentials(ClientCredentialsConfig{
		TokenURL: f.srv.URL + "/token", ClientID: "svc:orders", ClientSecret: "pa&ss",
		Scopes:       []string{"inventory:read", "inventory:write"},
		Audience:     []string{"https://inventory.example", "https://billing.example"},
		EarlyRefresh: early, now: clk.now,
	})
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

func mustToken(t testing.TB, ts oauth2.TokenSource) string {
	t.Helper()
	tok, err := ts.Token()
	if err != nil {
		t.Fatal(err)
	}
	return tok.AccessToken
}

// waitToken polls ts until it returns want (a background refresh).
func waitToken(t testing.TB, ts oauth2.TokenSource, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if mustToken(t, ts) == want {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("token never became %q", want)
}

func TestClientCredentialsCached(t *testing.T) {
	f := newFakeTokenEndpoint(t, 3600)
	clk := &ccClock{}
	ts := newTestClientCredentials(t, f, clk, 0)
	for range 100 {
		if got := mustToken(t, ts); got != "t-1" {
			t.Fatalf("got %q", got)
		}
	}
	clk.advance(59 * time.Minute) // still before the 30s refresh window
	if got := mustToken(t, ts); got != "t-1" || f.calls.Load() != 1 {
		t.Fatalf("got %q after %d calls", got, f.calls.Load())
	}
}

func TestClientCredentialsEarlyRefresh(t *testing.T) {
	cases := []struct {
		name   string
		life   int
		early  time.Duration
		before time.Duration // still the first token, no fetch
		after  time.Duration // refreshed
	}{
		{"default-30s", 3600, 0, 3600*time.Second - 31*time.Second, 3600*time.Second - 29*time.Second},
		{"default-10pct-of-short-lifetime", 60, 0, 53 * time.Second, 55 * time.Second},
		{"explicit", 3600, 5 * time.Minute, 54 * time.Minute, 56 * time.Minute},
		{"explicit-capped-at-half", 60, 5 * time.Minute, 29 * time.Second, 31 * time.Second},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeTokenEndpoint(t, tc.life)
			clk := &ccClock{}
			ts := newTestClientCredentials(t, f, clk, tc.early)
			if got := mustToken(t, ts); got != "t-1" {
				t.Fatal(got)
			}
			clk.advance(tc.before)
			if got := mustToken(t, ts); got != "t-1" || f.calls.Load() != 1 {
				t.Fatalf("refreshed too early: %q, %d calls", got, f.calls.Load())
			}
			clk.advance(tc.after - tc.before)
			waitToken(t, ts, "t-2")
			if n := f.calls.Load(); n != 2 {
				t.Fatalf("%d calls, want 2", n)
			}
		})
	}
}

func TestClientCredentialsConcurrentOneFetch(t *testing.T) {
	f := newFakeTokenEndpoint(t, 3600)
	block := make(chan struct{})
	f.mu.Lock()
	f.block = block
	f.mu.Unlock()
	ts := newTestClientCredentials(t, f, &ccClock{}, 0)
	const n = 50
	var wg sync.WaitGroup
	got := make(chan string, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tok, err := ts.Token()
			if err != nil {
				got <- err.Error()
				return
			}
			got <- tok.AccessToken
		}()
	}
	deadline := time.Now().Add(10 * time.Second)
	for f.calls.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	close(block)
	wg.Wait()
	close(got)
	for s := range got {
		if s != "t-1" {
			t.Fatalf("got %q", s)
		}
	}
	if c := f.calls.Load(); c != 1 {
		t.Fatalf("%d fetches, want 1", c)
	}
}

func TestClientCredentialsErrors(t *testing.T) {
	t.Run("error-surfaces-then-recovers", func(t *testing.T) {
		f := newFakeTokenEndpoint(t, 3600)
		f.setFail(true)
		ts := newTestClientCredentials(t, f, &ccClock{}, 0)
		_, err := ts.Token()
		if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "invalid_client") {
			t.Fatalf("got %v", err)
		}
		if strings.Contains(err.Error(), "pa&ss") {
			t.Fatal("error leaks the client secret")
		}
		f.setFail(false)
		if got := mustToken(t, ts); got != "t-2" {
			t.Fatalf("errors are cached: %q", got)
		}
	})
	t.Run("failed-early-refresh-serves-current-token-until-expiry", func(t *testing.T) {
		f := newFakeTokenEndpoint(t, 3600)
		clk := &ccClock{}
		ts := newTestClientCredentials(t, f, clk, 0)
		mustToken(t, ts)
		f.setFail(true)
		clk.advance(3600*time.Second - 20*time.Second)
		deadline := time.Now().Add(10 * time.Second)
		for f.calls.Load() < 2 && time.Now().Before(deadline) {
			if got := mustToken(t, ts); got != "t-1" {
				t.Fatalf("got %q", got)
			}
			time.Sleep(5 * time.Millisecond)
		}
		if f.calls.Load() < 2 {
			t.Fatal("no refresh attempted")
		}
		clk.advance(21 * time.Second) // past expiry
		if _, err := ts.Token(); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("expired token served: %v", err)
		}
	})
	t.Run("not-bearer", func(t *testing.T) {
		f := newFakeTokenEndpoint(t, 3600)
		f.mu.Lock()
		f.typ = "DPoP"
		f.mu.Unlock()
		ts := newTestClientCredentials(t, f, &ccClock{}, 0)
		if _, err := ts.Token(); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("no-expires-in-bounded-reuse", func(t *testing.T) {
		f := newFakeTokenEndpoint(t, 0)
		clk := &ccClock{}
		ts := newTestClientCredentials(t, f, clk, 0)
		mustToken(t, ts)
		clk.advance(noExpiryReuse + time.Second)
		if got := mustToken(t, ts); got != "t-2" {
			t.Fatalf("token without expiry reused forever: %q", got)
		}
	})
}

func TestClientCredentialsConfig(t *testing.T) {
	ok := ClientCredentialsConfig{TokenURL: "https://idp.example/token", ClientID: "c", ClientSecret: "s"}
	cases := []struct {
		name  string
		tweak func(*ClientCredentialsConfig)
		ok    bool
	}{
		{"valid", func(*ClientCredentialsConfig) {}, true},
		{"loopback-http", func(c *ClientCredentialsConfig) { c.TokenURL = "http://127.0.0.1:1/token" }, true},
		{"remote-http", func(c *ClientCredentialsConfig) { c.TokenURL = "http://idp.example/token" }, false},
		{"relative", func(c *ClientCredentialsConfig) { c.TokenURL = "/token" }, false},
		{"no-id", func(c *ClientCredentialsConfig) { c.ClientID = "" }, false},
		{"no-secret", func(c *ClientCredentialsConfig) { c.ClientSecret = "" }, false},
		{"negative-early", func(c *ClientCredentialsConfig) { c.EarlyRefresh = -time.Second }, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := ok
			tc.tweak(&cfg)
			if _, err := NewClientCredentials(cfg); (err == nil) != tc.ok {
				t.Fatalf("err = %v", err)
			}
		})
	}
}

// staticTS is a fake TokenSource.
type staticTS struct {
	tok *oauth2.Token
	err error
}

func (s staticTS) Token() (*oauth2.Token, error) { return s.tok, s.err }

func TestServiceTransport(t *testing.T) {
	down := newPropServer(t, nil)
	other := newPropServer(t, nil)
	f := newFakeTokenEndpoint(t, 3600)
	ts := newTestClientCredentials(t, f, &ccClock{}, 0)
	rt, err := NewServiceTransport(nil, ts, down.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: rt}
	for range 3 {
		resp, err := client.Get(down.srv.URL + "/items")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	if got := down.headers(); len(got) != 3 || got[0] != "Bearer t-1" || got[2] != "Bearer t-1" {
		t.Fatalf("downstream saw %q", got)
	}
	if f.calls.Load() != 1 {
		t.Fatalf("%d token fetches", f.calls.Load())
	}
	if _, err := client.Get(other.srv.URL + "/x"); !errors.Is(err, ErrOriginNotAllowed) {
		t.Fatalf("other origin: %v", err)
	}
	if other.calls.Load() != 0 {
		t.Fatal("the other origin was called")
	}

	failing, _ := NewServiceTransport(nil, staticTS{err: errors.New("boom")}, down.srv.URL)
	if _, err := (&http.Client{Transport: failing}).Get(down.srv.URL); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("token source error: %v", err)
	}
	empty, _ := NewServiceTransport(nil, staticTS{tok: &oauth2.Token{}}, down.srv.URL)
	if _, err := (&http.Client{Transport: empty}).Get(down.srv.URL); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("empty token: %v", err)
	}
	if n := down.calls.Load(); n != 3 {
		t.Fatalf("%d requests reached the API, want 3", n)
	}
	if _, err := NewServiceTransport(nil, ts); err == nil {
		t.Fatal("no origins accepted")
	}
	if _, err := NewServiceTransport(nil, nil, down.srv.URL); err == nil {
		t.Fatal("nil token source accepted")
	}
}
