package caserver

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/gatehouse/gatehouse/internal/ca"
)

// TestMT01CachedRenewal: a renewal certificate that verified once is not
// trusted beyond what verifying it again would allow. On the same
// keep-alive connection: expiry is svid_expired, an expired intermediate,
// a new bundle without its root, or another root under the same sequence
// are invalid_svid.
func TestMT01CachedRenewal(t *testing.T) {
	id := spiffeid.RequireFromString("spiffe://gatehouse.test/orders")
	other := newFakeCA(t, testTD) // identical subjects, other keys
	tests := []struct {
		name    string
		life    time.Duration // of the leaf, from now − 1 min
		change  func(h *harness)
		status  int
		code    string
		recheck bool // the chain must have been verified again (still cached after)
	}{
		{"leaf expired", time.Hour, func(h *harness) { h.ca.clock.Advance(2 * time.Hour) }, 401, "svid_expired", false},
		{"intermediate expired, leaf not", 47 * time.Hour, func(h *harness) { h.ca.clock.Advance(25 * time.Hour) }, 401, "invalid_svid", false},
		{"bundle rotated away from the root", time.Hour, func(h *harness) {
			h.ca.bundle.Store(&fakeBundle{roots: []*x509.Certificate{other.root}, seq: 2})
		}, 401, "invalid_svid", false},
		{"other root, same sequence", time.Hour, func(h *harness) {
			h.ca.bundle.Store(&fakeBundle{roots: []*x509.Certificate{other.root}, seq: 1})
		}, 401, "invalid_svid", false},
		{"same root, new sequence", time.Hour, func(h *harness) {
			h.ca.bundle.Store(&fakeBundle{roots: []*x509.Certificate{other.root, h.ca.root}, seq: 2})
		}, 200, "", true},
		{"same root, another copy", time.Hour, func(h *harness) {
			cp, err := x509.ParseCertificate(h.ca.root.Raw)
			if err != nil {
				t.Fatal(err)
			}
			h.ca.bundle.Store(&fakeBundle{roots: []*x509.Certificate{cp}, seq: 1})
		}, 200, "", true},
		{"nothing changed", time.Hour, func(*harness) {}, 200, "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			key := mustKey(t)
			now := time.Now()
			chain := h.ca.sign(t, leafTemplate(id, now.Add(-time.Minute), now.Add(tc.life)), key.Public())
			// The client trusts the original root throughout: only the
			// server's view of the bundle changes.
			orig, _ := h.ca.Bundle()
			c := tlsClient(func() *x509bundle.Bundle { return orig }, chain, key)
			for i := range 2 {
				body, _ := svidBody(t)
				if a := h.do(c, http.MethodPost, "/v1/svid", "", body); a.status != http.StatusOK {
					t.Fatalf("renewal %d: %d %s", i, a.status, a.raw)
				}
			}
			if n := h.srv.verified.len(); n != 1 {
				t.Fatalf("%d cached chains after two renewals, want 1", n)
			}
			tc.change(h)
			if tc.recheck {
				h.srv.verified = newVerifyCache() // only a real verification fills it again
			}
			for _, req := range []struct{ method, path, body string }{
				{http.MethodPost, "/v1/svid", func() string { b, _ := svidBody(t); return b }()},
				{http.MethodGet, "/v1/policy", ""},
			} {
				a := h.do(c, req.method, req.path, "", req.body)
				if a.status != tc.status || a.code() != tc.code {
					t.Fatalf("%s %s: %d %s; want %d %q", req.method, req.path, a.status, a.raw, tc.status, tc.code)
				}
			}
			if tc.recheck && h.srv.verified.len() != 1 {
				t.Fatal("the chain was not verified and cached again")
			}
		})
	}
}

// TestMT01CacheOtherChains: only the very chain that verified hits the
// cache. The same leaf with another intermediate, a certificate for the
// same ID and key from another CA with identical subjects, and a leaf
// whose ID differs are verified in full (and refused).
func TestMT01CacheOtherChains(t *testing.T) {
	ours := newFakeCA(t, testTD)
	other := newFakeCA(t, testTD)
	id := spiffeid.RequireFromString("spiffe://gatehouse.test/orders")
	now := time.Now()
	key := mustKey(t)
	tmpl := leafTemplate(id, now.Add(-time.Minute), now.Add(time.Hour))
	good := ours.sign(t, tmpl, key.Public())
	bundle, seq := ours.Bundle()
	cache := newVerifyCache()
	if got, _, err := verifySVID(good, bundle, seq, testTD, now, cache); err != nil || got != id {
		t.Fatalf("valid chain: %v %v", got, err)
	}
	tests := []struct {
		name  string
		chain []*x509.Certificate
	}{
		{"same leaf, other intermediate", []*x509.Certificate{good[0], other.inter}},
		{"same leaf, no intermediate", good[:1]},
		{"same ID, key and serial, other CA", other.sign(t, tmpl, key.Public())},
		{"same leaf, intermediate twice", []*x509.Certificate{good[0], other.inter, good[1]}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if chainKey(tc.chain) == chainKey(good) {
				t.Fatal("same cache key as the verified chain")
			}
			_, _, err := verifySVID(tc.chain, bundle, seq, testTD, now, cache)
			if tc.name == "same leaf, intermediate twice" {
				// Go finds the real intermediate in the pool: valid, and
				// cached under its own key.
				if err != nil {
					t.Fatalf("chain with an extra certificate: %v", err)
				}
				return
			}
			var e *apiError
			if !errors.As(err, &e) || e.Code != "invalid_svid" {
				t.Fatalf("got %v, want invalid_svid", err)
			}
		})
	}
	// The verified chain hits until its window ends, then is dropped.
	k := chainKey(good)
	if cached, ok := cache.lookup(k, bundle, seq, now); !ok || cached != id {
		t.Fatalf("lookup of the verified chain: %v %v", cached, ok)
	}
	if _, ok := cache.lookup(k, bundle, seq, good[1].NotAfter.Add(time.Second)); ok {
		t.Fatal("hit past the chain's NotAfter")
	}
	if _, ok := cache.lookup(k, bundle, seq, now); ok {
		t.Fatal("the entry outlived its window")
	}
}

// TestVerifyCacheBounded: the cache never holds more than maxVerified
// chains, and a new bundle empties it.
func TestVerifyCacheBounded(t *testing.T) {
	f := newFakeCA(t, testTD)
	bundle, seq := f.Bundle()
	id := spiffeid.RequireFromString("spiffe://gatehouse.test/a")
	chain := []*x509.Certificate{f.inter, f.root}
	cache := newVerifyCache()
	for i := range maxVerified + 50 {
		var k [sha256.Size]byte
		binary.BigEndian.PutUint64(k[:], uint64(i))
		cache.store(k, bundle, seq, id, chain)
	}
	if n := cache.len(); n != maxVerified {
		t.Fatalf("%d entries, want %d", n, maxVerified)
	}
	next, _ := f.Bundle()
	var k [sha256.Size]byte
	cache.store(k, next, seq+1, id, chain)
	if n := cache.len(); n != 1 {
		t.Fatalf("%d entries after a bundle change, want 1", n)
	}
	if _, ok := cache.lookup(k, bundle, seq, time.Now()); ok {
		t.Fatal("hit with the previous bundle's sequence")
	}
}

// TestVerifyCacheConcurrent runs verifications of cached and uncached
// chains in parallel (for -race).
func TestVerifyCacheConcurrent(t *testing.T) {
	f := newFakeCA(t, testTD)
	other := newFakeCA(t, testTD)
	bundle, seq := f.Bundle()
	now := time.Now()
	id := spiffeid.RequireFromString("spiffe://gatehouse.test/a")
	key := mustKey(t)
	good := f.sign(t, leafTemplate(id, now.Add(-time.Minute), now.Add(time.Hour)), key.Public())
	bad := other.sign(t, leafTemplate(id, now.Add(-time.Minute), now.Add(time.Hour)), key.Public())
	cache := newVerifyCache()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			for range 20 {
				if _, _, err := verifySVID(good, bundle, seq, testTD, now, cache); err != nil {
					errs <- err
					return
				}
				if g%2 == 0 {
					if _, _, err := verifySVID(bad, bundle, seq, testTD, now, cache); err == nil {
						errs <- errors.New("a chain of another CA verified")
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := cache.len(); n != 1 {
		t.Fatalf("%d cached chains, want 1", n)
	}
}

// TestRenewalIssuesCheckedCSR: the API hands the CA the CSR it checked
// (IssueRequest), once per issuance.
func TestRenewalIssuesCheckedCSR(t *testing.T) {
	h := newHarness(t)
	id := spiffeid.RequireFromString("spiffe://gatehouse.test/orders")
	key := mustKey(t)
	now := time.Now()
	c := h.client(h.ca.sign(t, leafTemplate(id, now.Add(-time.Minute), now.Add(time.Hour)), key.Public()), key)
	for range 3 {
		body, _ := svidBody(t)
		if a := h.do(c, http.MethodPost, "/v1/svid", "", body); a.status != http.StatusOK {
			t.Fatalf("renewal: %d %s", a.status, a.raw)
		}
	}
	if n := h.ca.requests.Load(); n != 3 {
		t.Fatalf("%d IssueRequest calls, want 3", n)
	}
}

// TestSVIDResponseEncoding: the hand-written answer is what encoding/json
// makes of svidResponse, and a broken bundle is refused.
func TestSVIDResponseEncoding(t *testing.T) {
	f := newFakeCA(t, testTD)
	id := spiffeid.RequireFromString("spiffe://gatehouse.test/orders")
	svid, err := f.Issue(t.Context(), id, mustKey(t).Public(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	bundle, err := f.BundleJSON()
	if err != nil {
		t.Fatal(err)
	}
	exp := svid.NotAfter.UTC().Format(time.RFC3339)
	got, err := appendSVIDResponse(nil, svid, exp, bundle)
	if err != nil {
		t.Fatal(err)
	}
	resp := svidResponse{SPIFFEID: id.String(), ExpiresAt: exp, Bundle: bundle}
	for _, c := range svid.Certificates {
		resp.X509SVID = append(resp.X509SVID, base64.StdEncoding.EncodeToString(c.Raw))
	}
	want, err := json.Marshal(resp)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Fatalf("answer\n%s\nwant\n%s", got, want)
	}
	h := newHarness(t)
	for _, b := range [][]byte{nil, []byte(`{"keys":`), []byte(`{}x`), bundle[:len(bundle)-1]} {
		if _, err := appendSVIDResponse(nil, svid, exp, h.srv.checkedBundle(b)); err == nil {
			t.Fatalf("bundle %q accepted", b)
		}
		if got := h.srv.checkedBundle(bundle); string(got) != string(bundle) {
			t.Fatal("a valid bundle refused")
		}
	}
	empty := &ca.SVID{ID: id}
	if b, err := appendSVIDResponse(nil, empty, exp, bundle); err != nil || !json.Valid(b) {
		t.Fatalf("no certificates: %s %v", b, err)
	}
}
