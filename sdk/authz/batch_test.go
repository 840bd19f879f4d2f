package authz

import (
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
)

func orderChecks(n int) []Check {
	cs := make([]Check, n)
	for i := range cs {
		action := "read"
		if i%3 == 0 {
			action = "delete"
		}
		cs[i] = Check{Action: action, Resource: Resource{Type: "order", ID: fmt.Sprintf("o-%d", i)},
			Context: map[string]any{"n": i}}
	}
	return cs
}

func TestAuthorizeBatchOrderAndChunks(t *testing.T) {
	f := newFakeService(t)
	c, _ := newTestClient(t, f, nil)
	alice := Principal{ID: "usr_alice"}
	checks := orderChecks(250)
	// One check answered beforehand: the batch takes it from the cache.
	pre := c.Authorize(t.Context(), Request{Principal: alice, Action: checks[7].Action, Resource: checks[7].Resource, Context: checks[7].Context})
	if pre.Err != nil || pre.Cached {
		t.Fatalf("prefill: %+v", pre)
	}
	ds := c.AuthorizeBatch(t.Context(), alice, checks)
	if len(ds) != len(checks) {
		t.Fatalf("%d decisions for %d checks", len(ds), len(checks))
	}
	for i, d := range ds {
		wantAllow := checks[i].Action == "read"
		wantReason := fmt.Sprintf(" %s on order:o-%d", checks[i].Action, i)
		if d.Err != nil || d.Allow != wantAllow || !strings.HasSuffix(d.Reason, wantReason) {
			t.Fatalf("check %d: %+v, want allow=%v and reason ending %q", i, d, wantAllow, wantReason)
		}
		if d.Cached != (i == 7) {
			t.Errorf("check %d: cached=%v", i, d.Cached)
		}
	}
	f.mu.Lock()
	sizes := []int{}
	sent := 0
	for _, b := range f.batches {
		sizes = append(sizes, len(b.Checks))
		sent += len(b.Checks)
		if !reflect.DeepEqual(b.Principal, map[string]any{"id": "usr_alice"}) {
			t.Errorf("batch principal %v", b.Principal)
		}
	}
	f.mu.Unlock()
	if len(sizes) != 3 || sent != 249 {
		t.Errorf("batch sizes %v (%d checks), want 3 calls of at most 100 carrying 249", sizes, sent)
	}
	for _, n := range sizes {
		if n > MaxBatch {
			t.Errorf("a batch of %d checks", n)
		}
	}
	// Every answer is now cached.
	ds = c.AuthorizeBatch(t.Context(), alice, checks)
	for i, d := range ds {
		if !d.Cached {
			t.Fatalf("check %d not cached on the second batch", i)
		}
	}
	if n := f.count("/authorize/batch"); n != 3 {
		t.Errorf("%d batch calls, want 3", n)
	}
	// Single Authorize shares the batch's cache entries.
	d := c.Authorize(t.Context(), Request{Principal: alice, Action: checks[42].Action, Resource: checks[42].Resource, Context: checks[42].Context})
	if !d.Cached {
		t.Error("Authorize missed an entry cached by AuthorizeBatch")
	}
}

func TestAuthorizeBatchFailures(t *testing.T) {
	f := newFakeService(t)
	c, _ := newTestClient(t, f, func(c *Config) { c.CacheTTL = -1 })
	tok := Principal{Token: "tok-admin"}

	// A failing chunk denies exactly its checks.
	var mu = make(chan struct{}, 1)
	mu <- struct{}{}
	first := true
	f.setOverride(func(w http.ResponseWriter, r *http.Request) bool {
		<-mu
		defer func() { mu <- struct{}{} }()
		if r.URL.Path == "/authorize/batch" && first {
			first = false
			http.Error(w, "boom", http.StatusInternalServerError)
			return true
		}
		return false
	})
	ds := c.AuthorizeBatch(t.Context(), tok, orderChecks(150))
	failedN, allowed := 0, 0
	for _, d := range ds {
		switch {
		case d.Err != nil && !d.Allow:
			failedN++
		case d.Err == nil && d.Allow:
			allowed++
		default:
			t.Fatalf("unexpected decision %+v", d)
		}
	}
	if failedN != 100 && failedN != 50 || failedN+allowed != 150 {
		t.Errorf("%d failed, %d allowed: want exactly one chunk failed", failedN, allowed)
	}

	// Wrong number of results.
	f.setOverride(func(w http.ResponseWriter, r *http.Request) bool {
		writeJSON(w, http.StatusOK, map[string]any{"results": []map[string]any{{"allow": true}}})
		return true
	})
	for i, d := range c.AuthorizeBatch(t.Context(), tok, orderChecks(2)) {
		if d.Allow || !errors.Is(d.Err, ErrBadAnswer) {
			t.Errorf("check %d with a short answer: %+v", i, d)
		}
	}
	// Unknown member next to results, and a bad result.
	for _, body := range []string{`{"results":[{"allow":true}],"more":1}`, `{"results":[{"allow":"yes"}]}`, `{"results":null}`, `{}`} {
		f.setOverride(func(w http.ResponseWriter, r *http.Request) bool {
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write([]byte(body))
			return true
		})
		if d := c.AuthorizeBatch(t.Context(), tok, orderChecks(1))[0]; d.Allow || !errors.Is(d.Err, ErrBadAnswer) {
			t.Errorf("%s: %+v", body, d)
		}
	}
	f.setOverride(nil)

	// Invalid checks are denied locally; the rest are asked.
	checks := orderChecks(3)
	checks[1].Resource.Type = ""
	ds = c.AuthorizeBatch(t.Context(), tok, checks)
	if !ds[0].Allow || ds[1].Allow || !errors.Is(ds[1].Err, ErrInvalidRequest) || !ds[2].Allow {
		t.Errorf("mixed batch: %+v", ds)
	}
	// No principal: every check denied, nothing sent.
	before := f.count("/authorize/batch")
	for _, d := range c.AuthorizeBatch(t.Context(), Principal{}, orderChecks(2)) {
		if d.Allow || !errors.Is(d.Err, ErrInvalidRequest) {
			t.Errorf("no principal: %+v", d)
		}
	}
	if f.count("/authorize/batch") != before {
		t.Error("a batch without principal was sent")
	}
	if ds := c.AuthorizeBatch(t.Context(), tok, nil); len(ds) != 0 {
		t.Errorf("empty batch: %v", ds)
	}
}

func TestWrites(t *testing.T) {
	f := newFakeService(t)
	c, _ := newTestClient(t, f, nil)
	rev, err := c.WriteRelationships(t.Context(), []RelationshipWrite{{Op: "touch", Tuple: "order:o-1#owner@user:usr_alice"},
		{Op: "delete", Tuple: "order:o-1#blocked@user:usr_alice"}})
	if err != nil || rev != "102" {
		t.Fatalf("WriteRelationships: %q %v", rev, err)
	}
	for name, ws := range map[string][]RelationshipWrite{
		"none":       nil,
		"bad op":     {{Op: "create", Tuple: "order:o-1#owner@user:u"}},
		"no tuple":   {{Op: "touch"}},
		"too many":   make([]RelationshipWrite, MaxWrites+1),
		"case of op": {{Op: "Touch", Tuple: "order:o-1#owner@user:u"}},
	} {
		if _, err := c.WriteRelationships(t.Context(), ws); !errors.Is(err, ErrInvalidRequest) {
			t.Errorf("%s: err %v", name, err)
		}
	}
	applied, rev, err := c.PutEntity(t.Context(), "order", "o/1", map[string]any{"status": "open"}, 2)
	if err != nil || !applied || rev != "order/o/1" {
		t.Fatalf("PutEntity: %v %q %v", applied, rev, err)
	}
	if applied, _, err := c.PutEntity(t.Context(), "order", "o-1", nil, 1); err != nil || applied {
		t.Errorf("older version: applied=%v err=%v", applied, err)
	}
	if _, _, err := c.PutEntity(t.Context(), "", "o-1", nil, 1); !errors.Is(err, ErrInvalidRequest) {
		t.Errorf("no type: %v", err)
	}
	// Strict answers.
	for _, tc := range []struct{ path, body string }{
		{"/relationships", `{"revision":57}`}, {"/relationships", `{}`}, {"/relationships", `{"revision":"1","x":1}`},
		{"/entities/order/o-1", `{"applied":"true","revision":"1"}`}, {"/entities/order/o-1", `{"revision":"1"}`},
		{"/entities/order/o-1", `{"applied":true,"applied":false}`},
	} {
		f.setOverride(func(w http.ResponseWriter, r *http.Request) bool {
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write([]byte(tc.body))
			return true
		})
		var err error
		if tc.path == "/relationships" {
			_, err = c.WriteRelationships(t.Context(), []RelationshipWrite{{Op: "touch", Tuple: "order:o-1#owner@user:u"}})
		} else {
			_, _, err = c.PutEntity(t.Context(), "order", "o-1", nil, 3)
		}
		if !errors.Is(err, ErrBadAnswer) {
			t.Errorf("%s answering %s: err %v", tc.path, tc.body, err)
		}
	}
	f.setOverride(func(w http.ResponseWriter, r *http.Request) bool {
		http.Error(w, "no", http.StatusForbidden)
		return true
	})
	if _, err := c.WriteRelationships(t.Context(), []RelationshipWrite{{Op: "touch", Tuple: "order:o-1#owner@user:u"}}); !errors.Is(err, ErrUnavailable) {
		t.Errorf("403: %v", err)
	}
}
