package caserver

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/gatehouse/gatehouse/internal/storage"
	"github.com/gatehouse/gatehouse/sdk/workload"
)

// fakeRevocations is a revocation store; err fails every list.
type fakeRevocations struct {
	mu    sync.Mutex
	set   map[string]time.Time
	err   error
	calls int
}

func (f *fakeRevocations) ListSPIFFERevocations(context.Context) (map[string]time.Time, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.err != nil {
		return nil, f.err
	}
	out := make(map[string]time.Time, len(f.set))
	for k, v := range f.set {
		out[k] = v
	}
	return out, nil
}

func (f *fakeRevocations) revoke(id string, at time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.set[id] = at
}

func (f *fakeRevocations) fail(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err = err
}

// TestRevokedIDRenewal: an SVID issued before its ID's revocation is not
// renewed (401 svid_revoked); other IDs and a fresh bootstrap after the
// revocation are unaffected.
func TestRevokedIDRenewal(t *testing.T) {
	rev := &fakeRevocations{set: map[string]time.Time{}}
	h := newHarnessWith(t, func(d *Deps, c *Config) { d.Revocations = rev; c.RevocationRefresh = 5 * time.Second })
	const id, other = "spiffe://gatehouse.test/billing", "spiffe://gatehouse.test/orders"
	bootstrap := func(id string) *http.Client {
		t.Helper()
		body, key := svidBody(t)
		a := h.do(h.client(nil, nil), http.MethodPost, "/v1/svid", "JoinToken "+h.addJoinToken(id, time.Hour), body)
		if a.status != http.StatusOK {
			t.Fatalf("bootstrap %s: %d %s", id, a.status, a.raw)
		}
		return h.client(chainOf(t, a), key)
	}
	renew := func(c *http.Client) answer {
		body, _ := svidBody(t)
		return h.do(c, http.MethodPost, "/v1/svid", "", body)
	}
	old, unrelated := bootstrap(id), bootstrap(other)
	if a := renew(old); a.status != http.StatusOK {
		t.Fatalf("renewal before revocation: %d %s", a.status, a.raw)
	}
	h.ca.clock.Advance(time.Minute)
	revokedAt := h.ca.clock.Now()
	rev.revoke(id, revokedAt)
	h.ca.clock.Advance(6 * time.Second) // past the cache's refresh
	a := renew(old)
	if a.status != http.StatusUnauthorized || a.code() != "svid_revoked" ||
		!strings.Contains(a.body["error_description"].(string), revokedAt.UTC().Format(time.RFC3339)) {
		t.Fatalf("renewal after revocation: %d %s", a.status, a.raw)
	}
	if a := renew(unrelated); a.status != http.StatusOK {
		t.Fatalf("renewal of another ID: %d %s", a.status, a.raw)
	}
	fresh := bootstrap(id) // a new join token after the revocation
	if a := renew(fresh); a.status != http.StatusOK {
		t.Fatalf("renewal of an SVID issued after the revocation: %d %s", a.status, a.raw)
	}
}

// TestRevocationsCached: the set is listed at most once per refresh, and a
// failed reload keeps the last set.
func TestRevocationsCached(t *testing.T) {
	rev := &fakeRevocations{set: map[string]time.Time{}}
	h := newHarnessWith(t, func(d *Deps, c *Config) { d.Revocations = rev; c.RevocationRefresh = 10 * time.Second })
	for range 3 {
		if _, err := h.srv.preflight(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if rev.calls != 1 {
		t.Fatalf("lists within one refresh: %d, want 1", rev.calls)
	}
	rev.fail(storage.ErrUnavailable)
	h.ca.clock.Advance(11 * time.Second)
	if _, err := h.srv.preflight(context.Background()); err != nil {
		t.Fatalf("a failed reload must keep the last set: %v", err)
	}
}

// notReadyCA is a fakeCA that reports whether it is ready.
type notReadyCA struct {
	*fakeCA
	ready atomic.Bool
}

func (c *notReadyCA) Ready() bool { return c.ready.Load() }

// TestJoinTokenKeptOn503: a CA that is not ready, or a revocation set that
// cannot be loaded (fail closed), answers 503 before the join token is
// consumed; the same token works once the CA is back.
func TestJoinTokenKeptOn503(t *testing.T) {
	for _, tc := range []string{"ca_not_ready", "revocations_unavailable"} {
		t.Run(tc, func(t *testing.T) {
			rev := &fakeRevocations{set: map[string]time.Time{}}
			var nr *notReadyCA
			h := newHarnessWith(t, func(d *Deps, _ *Config) {
				d.Revocations = rev
				nr = &notReadyCA{fakeCA: d.CA.(*fakeCA)}
				nr.ready.Store(true)
				d.CA = nr
			})
			if tc == "ca_not_ready" {
				nr.ready.Store(false)
			} else {
				rev.fail(errors.New("storage down"))
			}
			tok := h.addJoinToken("spiffe://gatehouse.test/billing", time.Hour)
			body, _ := svidBody(t)
			a := h.do(h.client(nil, nil), http.MethodPost, "/v1/svid", "JoinToken "+tok, body)
			if a.status != http.StatusServiceUnavailable || a.code() != "temporarily_unavailable" {
				t.Fatalf("while down: %d %s", a.status, a.raw)
			}
			nr.ready.Store(true)
			rev.fail(nil)
			if a := h.do(h.client(nil, nil), http.MethodPost, "/v1/svid", "JoinToken "+tok, body); a.status != http.StatusOK {
				t.Fatalf("the join token was burnt by the 503: %d %s", a.status, a.raw)
			}
		})
	}
}

// TestBF01SVIDThrottle: failed credentials per client IP are limited; over
// the limit POST /v1/svid answers 429 with Retry-After before looking at the
// credential, so a valid join token is not spent.
func TestBF01SVIDThrottle(t *testing.T) {
	h := newHarnessWith(t, func(_ *Deps, c *Config) { c.MaxFailures = 3; c.FailureWindow = time.Minute })
	body, _ := svidBody(t)
	attacks := []struct{ name, authz string }{
		{"unknown join token", "JoinToken nope"},
		{"invalid access token", "Bearer nope"},
		{"another unknown join token", "JoinToken nope2"},
	}
	for _, a := range attacks {
		if got := h.do(h.client(nil, nil), http.MethodPost, "/v1/svid", a.authz, body); got.status != http.StatusUnauthorized {
			t.Fatalf("%s: %d %s", a.name, got.status, got.raw)
		}
	}
	tok := h.addJoinToken("spiffe://gatehouse.test/billing", time.Hour)
	a := h.do(h.client(nil, nil), http.MethodPost, "/v1/svid", "JoinToken "+tok, body)
	if a.status != http.StatusTooManyRequests || a.code() != "too_many_requests" || a.header.Get("Retry-After") == "" {
		t.Fatalf("over the limit: %d %v %s", a.status, a.header, a.raw)
	}
	h.ca.clock.Advance(61 * time.Second)
	if a := h.do(h.client(nil, nil), http.MethodPost, "/v1/svid", "JoinToken "+tok, body); a.status != http.StatusOK {
		t.Fatalf("after the window (the token must not have been spent): %d %s", a.status, a.raw)
	}
}

// TestPolicyCache: GET /v1/policy answers p.For(caller) whether cached or
// not, follows a new policy at once, and the cache stays bounded.
func TestPolicyCache(t *testing.T) {
	h := newHarness(t)
	key := mustKey(t)
	now := time.Now()
	id := spiffeid.RequireFromString("spiffe://gatehouse.test/payments")
	c := h.client(h.ca.sign(t, leafTemplate(id, now.Add(-time.Minute), now.Add(time.Hour)), key.Public()), key)
	for i, rules := range [][]workload.Rule{
		{{Name: "a", Effect: "allow", From: []string{"spiffe://gatehouse.test/orders"}, To: []string{"spiffe://gatehouse.test/payments"}},
			{Name: "b", Effect: "allow", From: []string{"spiffe://gatehouse.test/x"}, To: []string{"spiffe://gatehouse.test/ledger"}}},
		{{Name: "c", Effect: "deny", From: []string{"spiffe://gatehouse.test/*"}, To: []string{"spiffe://gatehouse.test/payments"}}},
	} {
		pol, err := workload.NewPolicy(rules)
		if err != nil {
			t.Fatal(err)
		}
		h.policy.Store(pol)
		want, err := pol.For(id).MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		for range 2 {
			a := h.do(c, http.MethodGet, "/v1/policy", "", "")
			if a.status != http.StatusOK || !bytes.Equal(bytes.TrimSpace(a.raw), bytes.TrimSpace(want)) {
				t.Fatalf("policy %d: %d %s, want %s", i, a.status, a.raw, want)
			}
		}
	}
	var pc policyCache
	pol, _ := workload.NewPolicy(nil)
	for i := range maxPolicyCache + 10 {
		if _, err := pc.get(pol, spiffeid.RequireFromSegments(testTD, "w", strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	if len(pc.m) > maxPolicyCache {
		t.Fatalf("policy cache holds %d entries, bound %d", len(pc.m), maxPolicyCache)
	}
}
