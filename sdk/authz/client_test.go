package authz

import (
	"context"
	"errors"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"
)

func readReq(principal Principal) Request {
	return Request{Principal: principal, Action: "read", Resource: Resource{Type: "order", ID: "o-1", Tenant: "acme",
		Attrs: map[string]any{"status": "open"}}, Context: map[string]any{"ip": "10.0.0.1"}}
}

func TestAuthorizePassthrough(t *testing.T) {
	f := newFakeService(t)
	c, _ := newTestClient(t, f, nil)
	tests := []struct {
		name      string
		req       Request
		allow     bool
		principal map[string]any
	}{
		{"allow/claims", readReq(Principal{ID: "usr_alice", Roles: []string{"clerk"}, Tenant: "acme"}), true,
			map[string]any{"id": "usr_alice", "roles": []any{"clerk"}, "tenant": "acme"}},
		{"deny/claims", Request{Principal: Principal{Type: "user", ID: "usr_bob"}, Action: "delete",
			Resource: Resource{Type: "order", ID: "o-2"}}, false, map[string]any{"type": "user", "id": "usr_bob"}},
		{"allow/token", Request{Principal: Principal{Token: "tok-admin", ID: "ignored"}, Action: "delete",
			Resource: Resource{Type: "order", ID: "o-3"}}, true, map[string]any{"token": "tok-admin"}},
		{"deny/token", Request{Principal: Principal{Token: "tok-user"}, Action: "delete",
			Resource: Resource{Type: "order", ID: "o-4"}}, false, map[string]any{"token": "tok-user"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := c.Authorize(t.Context(), tt.req)
			if d.Err != nil || d.Allow != tt.allow || d.Cached {
				t.Fatalf("decision %+v, want allow=%v without error", d, tt.allow)
			}
			got := f.lastRequest()
			if !reflect.DeepEqual(got.Principal, tt.principal) {
				t.Errorf("principal sent %v, want %v", got.Principal, tt.principal)
			}
			if got.Action != tt.req.Action || got.Resource.Type != tt.req.Resource.Type || got.Resource.ID != tt.req.Resource.ID ||
				got.Resource.Tenant != tt.req.Resource.Tenant || !reflect.DeepEqual(got.Resource.Attrs, tt.req.Resource.Attrs) ||
				!reflect.DeepEqual(got.Context, tt.req.Context) || got.Consistency != nil {
				t.Errorf("request sent %+v, want %+v", got, tt.req)
			}
			want := "no permit for "
			if tt.allow {
				want = "permitted for "
			}
			if !strings.HasPrefix(d.Reason, want) || d.DecisionID != "dec_1" || d.PolicyVersion != "3f2a9c0d5e6b7a81" ||
				d.Revision != "57" || !reflect.DeepEqual(d.Policies, []string{"p-" + tt.req.Action}) ||
				len(d.Relations) != 1 || d.Relations[0].Allowed != tt.allow || !reflect.DeepEqual(d.Relations[0].Path, []string{"a", "b"}) {
				t.Errorf("decision fields not passed through: %+v", d)
			}
		})
	}
}

func TestAuthorizeCache(t *testing.T) {
	f := newFakeService(t)
	c, clk := newTestClient(t, f, func(c *Config) { c.CacheTTL = time.Second })
	ctx := t.Context()
	alice := Principal{ID: "usr_alice"}
	calls := func() int { return f.count("/authorize") }

	d := c.Authorize(ctx, readReq(alice))
	if !d.Allow || d.Cached || calls() != 1 {
		t.Fatalf("first call: %+v, %d calls", d, calls())
	}
	d = c.Authorize(ctx, readReq(alice))
	if !d.Allow || !d.Cached || calls() != 1 {
		t.Fatalf("second call must hit the cache: %+v, %d calls", d, calls())
	}
	d.Policies[0] = "mutated" // a caller's change must not reach the cache
	if d := c.Authorize(ctx, readReq(alice)); d.Policies[0] != "p-read" {
		t.Errorf("cache shares slices with callers: %v", d.Policies)
	}

	// Every deciding input is in the key.
	variants := map[string]func(r *Request){
		"resource attrs":  func(r *Request) { r.Resource.Attrs = map[string]any{"status": "closed"} },
		"resource tenant": func(r *Request) { r.Resource.Tenant = "globex" },
		"resource id":     func(r *Request) { r.Resource.ID = "o-9" },
		"context":         func(r *Request) { r.Context = map[string]any{"ip": "10.0.0.2"} },
		"principal roles": func(r *Request) { r.Principal.Roles = []string{"admin"} },
		"principal attrs": func(r *Request) { r.Principal.Attrs = map[string]any{"level": 3} },
		"principal token": func(r *Request) { r.Principal = Principal{Token: "tok-a"} },
		"other token":     func(r *Request) { r.Principal = Principal{Token: "tok-b"} },
		"action":          func(r *Request) { r.Action = "list" },
	}
	for name, mod := range variants {
		before := calls()
		r := readReq(alice)
		mod(&r)
		if d := c.Authorize(ctx, r); d.Cached || calls() != before+1 {
			t.Errorf("%s: a different input was answered from the cache (%+v)", name, d)
		}
	}
	// Map order does not change the key.
	r := readReq(alice)
	r.Resource.Attrs = map[string]any{"b": 1, "a": 2, "c": map[string]any{"y": 1, "x": 2}}
	c.Authorize(ctx, r)
	r.Resource.Attrs = map[string]any{"c": map[string]any{"x": 2, "y": 1}, "a": 2, "b": 1}
	if d := c.Authorize(ctx, r); !d.Cached {
		t.Errorf("equal attributes built in another order missed the cache")
	}

	// Denies are cached too.
	del := Request{Principal: alice, Action: "delete", Resource: Resource{Type: "order", ID: "o-1"}}
	c.Authorize(ctx, del)
	if d := c.Authorize(ctx, del); d.Allow || !d.Cached || d.Err != nil {
		t.Errorf("deny not cached: %+v", d)
	}

	// AtLeastAsFresh bypasses the cache (and does not replace the entry).
	before := calls()
	fresh := readReq(alice)
	fresh.AtLeastAsFresh = "58"
	if d := c.Authorize(ctx, fresh); d.Cached || calls() != before+1 {
		t.Errorf("AtLeastAsFresh answered from the cache: %+v", d)
	}
	if got := f.lastRequest().Consistency; got == nil || got.AtLeastAsFresh != "58" {
		t.Errorf("consistency not sent: %+v", got)
	}

	// Expiry.
	clk.Advance(999 * time.Millisecond)
	if d := c.Authorize(ctx, readReq(alice)); !d.Cached {
		t.Errorf("entry expired early")
	}
	clk.Advance(time.Millisecond)
	before = calls()
	if d := c.Authorize(ctx, readReq(alice)); d.Cached || calls() != before+1 {
		t.Errorf("entry used at its expiry: %+v", d)
	}
}

func TestAuthorizeErrorsAreNotCached(t *testing.T) {
	f := newFakeService(t)
	c, _ := newTestClient(t, f, nil)
	f.setOverride(func(w http.ResponseWriter, _ *http.Request) bool {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return true
	})
	if d := c.Authorize(t.Context(), readReq(Principal{ID: "usr_alice"})); d.Allow || d.Err == nil {
		t.Fatalf("want a fail-closed deny, got %+v", d)
	}
	f.setOverride(nil)
	if d := c.Authorize(t.Context(), readReq(Principal{ID: "usr_alice"})); !d.Allow || d.Cached || d.Err != nil {
		t.Fatalf("the failure was cached: %+v", d)
	}
}

func TestCacheDisabledAndBounded(t *testing.T) {
	f := newFakeService(t)
	c, _ := newTestClient(t, f, func(c *Config) { c.CacheTTL = -1 })
	for range 3 {
		if d := c.Authorize(t.Context(), readReq(Principal{ID: "usr_alice"})); d.Cached {
			t.Fatal("cache disabled but used")
		}
	}
	if n := f.count("/authorize"); n != 3 {
		t.Errorf("%d calls, want 3", n)
	}

	c, _ = newTestClient(t, f, func(c *Config) { c.CacheSize = 5 })
	for i := range 20 {
		r := readReq(Principal{ID: "usr_alice"})
		r.Resource.ID = strings.Repeat("x", i+1)
		c.Authorize(t.Context(), r)
		if n := c.cache.len(); n > 5 {
			t.Fatalf("cache holds %d entries, bound 5", n)
		}
	}
}

func TestInvalidRequests(t *testing.T) {
	f := newFakeService(t)
	c, _ := newTestClient(t, f, nil)
	tests := map[string]Request{
		"no principal":     {Action: "read", Resource: Resource{Type: "order", ID: "o-1"}},
		"no action":        {Principal: Principal{ID: "u"}, Resource: Resource{Type: "order", ID: "o-1"}},
		"no resource type": {Principal: Principal{ID: "u"}, Action: "read", Resource: Resource{ID: "o-1"}},
		"no resource id":   {Principal: Principal{ID: "u"}, Action: "read", Resource: Resource{Type: "order"}},
		"unencodable":      {Principal: Principal{ID: "u"}, Action: "read", Resource: Resource{Type: "order", ID: "o", Attrs: map[string]any{"f": func() {}}}},
	}
	for name, r := range tests {
		t.Run(name, func(t *testing.T) {
			d := c.Authorize(t.Context(), r)
			if d.Allow || !errors.Is(d.Err, ErrInvalidRequest) || d.Reason != UnavailableReason {
				t.Errorf("got %+v, want a deny with ErrInvalidRequest", d)
			}
		})
	}
	if n := f.count("/authorize"); n != 0 {
		t.Errorf("invalid requests reached the service %d times", n)
	}
}

func TestNewValidation(t *testing.T) {
	hc := &http.Client{}
	tests := map[string]Config{
		"no http client":     {URL: "https://authz.example.com"},
		"http not loopback":  {URL: "http://authz.example.com", HTTPClient: hc},
		"user info":          {URL: "https://u:p@authz.example.com", HTTPClient: hc},
		"query":              {URL: "https://authz.example.com?x=1", HTTPClient: hc},
		"fragment":           {URL: "https://authz.example.com#f", HTTPClient: hc},
		"relative":           {URL: "/authz", HTTPClient: hc},
		"empty":              {HTTPClient: hc},
		"ttl over AZ-05":     {URL: "https://authz.example.com", HTTPClient: hc, CacheTTL: 11 * time.Second},
		"negative timeout":   {URL: "https://authz.example.com", HTTPClient: hc, Timeout: -1},
		"negative cache max": {URL: "https://authz.example.com", HTTPClient: hc, CacheSize: -1},
	}
	for name, cfg := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := New(cfg); err == nil {
				t.Error("accepted")
			}
		})
	}
	for _, u := range []string{"https://authz.example.com/base/", "http://127.0.0.1:8002", "http://localhost:1", "http://[::1]:2"} {
		c, err := New(Config{URL: u, HTTPClient: hc})
		if err != nil {
			t.Errorf("%s refused: %v", u, err)
			continue
		}
		if c.timeout != DefaultTimeout || c.cache == nil || c.cache.ttl != DefaultCacheTTL || c.cache.max != DefaultCacheSize {
			t.Errorf("%s: defaults not applied", u)
		}
	}
}

func TestConcurrentAuthorize(t *testing.T) {
	f := newFakeService(t)
	c, clk := newTestClient(t, f, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	done := make(chan error, 32)
	for g := range 32 {
		go func() {
			for i := range 40 {
				r := readReq(Principal{ID: "usr_alice"})
				r.Resource.ID = string(rune('a' + (g+i)%7))
				if i%5 == 0 {
					r.Action = "delete"
				}
				d := c.Authorize(ctx, r)
				if d.Err != nil || d.Allow != (r.Action == "read") {
					done <- errors.New("wrong decision under concurrency: " + d.Reason)
					return
				}
				if i%10 == 0 {
					clk.Advance(300 * time.Millisecond)
				}
			}
			done <- nil
		}()
	}
	for range 32 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
	if n := f.count("/authorize"); n >= 32*40 {
		t.Errorf("%d calls: the cache was never used", n)
	}
}

// instantTransport answers at once from memory.
type instantTransport struct{}

func (instantTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: http.StatusOK, Body: io.NopCloser(strings.NewReader(`{"allow":true}`)),
		Header: http.Header{}, Request: r}, nil
}

// TestFastAnswersAreNeverLost: an answer that arrives as the call's context
// is released is used, never replaced by a cancellation error.
func TestFastAnswersAreNeverLost(t *testing.T) {
	c, err := New(Config{URL: "https://authz.example.com", HTTPClient: &http.Client{Transport: instantTransport{}}, CacheTTL: -1})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3000 {
		if d := c.Authorize(t.Context(), readReq(Principal{ID: "usr_alice"})); !d.Allow || d.Err != nil {
			t.Fatalf("call %d: %+v", i, d)
		}
	}
}
