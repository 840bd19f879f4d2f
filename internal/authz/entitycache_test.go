package authz

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/authz/policy"
	"github.com/gatehouse/gatehouse/internal/storage"
)

// countingStore counts GetEntity calls and fails them while fail is set.
type countingStore struct {
	storage.RelationStore
	gets atomic.Int64
	fail atomic.Bool
}

func (c *countingStore) GetEntity(ctx context.Context, typ, id string) (storage.Entity, error) {
	c.gets.Add(1)
	if c.fail.Load() {
		return storage.Entity{}, fmt.Errorf("test: %w", storage.ErrUnavailable)
	}
	return c.RelationStore.GetEntity(ctx, typ, id)
}

// deleteO1001 asks whether alice (the owner) may delete o-1001 without
// providing attributes: the replicated status decides.
func deleteO1001(t *testing.T, e *env, extra map[string]any) map[string]any {
	t.Helper()
	body := map[string]any{"principal": principal("usr_alice", "acme"), "action": "delete",
		"resource": map[string]any{"type": "order", "id": "o-1001"}}
	for k, v := range extra {
		body[k] = v
	}
	st, out := e.authorize(t, body)
	if st != 200 {
		t.Fatalf("authorize: %d %v", st, out)
	}
	return out
}

func putStatus(t *testing.T, e *env, status string, version int) {
	t.Helper()
	st, out, _ := e.do(t, http.MethodPut, "/entities/order/o-1001", callerToken(t, ScopeWrite),
		map[string]any{"attrs": map[string]any{"status": status, "tenant": "acme"}, "version": version})
	if st != 200 || out["applied"] != true {
		t.Fatalf("put entity: %d %v", st, out)
	}
}

func TestEntityCacheConsistency(t *testing.T) {
	t.Run("AZ-05/local-entity-write-visible-at-once", func(t *testing.T) {
		e := newEnv(t)
		for i, status := range []string{"open", "shipped", "open", "shipped"} {
			putStatus(t, e, status, i+1)
			want := status == "open"
			for range 2 { // the second decision is answered from the cache
				if out := deleteO1001(t, e, nil); out["allow"] != want {
					t.Fatalf("after PUT status=%s: %v", status, out)
				}
			}
		}
		st, out, _ := e.do(t, http.MethodDelete, "/entities/order/o-1001?version=9", callerToken(t, ScopeWrite), nil)
		if st != 200 || out["applied"] != true {
			t.Fatalf("delete entity: %d %v", st, out)
		}
		// No replicated attributes any more: the required status is missing.
		if out := deleteO1001(t, e, nil); out["allow"] != false || !strings.Contains(out["reason"].(string), "missing required attribute") {
			t.Fatalf("after DELETE: %v", out)
		}
	})
	t.Run("AZ-05/remote-entity-write-after-head-advances", func(t *testing.T) {
		e := newEnv(t)
		putStatus(t, e, "open", 1)
		if out := deleteO1001(t, e, nil); out["allow"] != true {
			t.Fatalf("before: %v", out)
		}
		// Another replica's write: the known head has not advanced, so the
		// decision still uses what was read at it.
		rev, applied, err := e.store.PutEntity(context.Background(),
			storage.Entity{Type: "order", ID: "o-1001", Attrs: []byte(`{"status":"shipped","tenant":"acme"}`), Version: 2})
		if err != nil || !applied {
			t.Fatalf("remote put: %v %v", applied, err)
		}
		if out := deleteO1001(t, e, nil); out["allow"] != true {
			t.Fatalf("cached at the old head: %v", out)
		}
		// Once the head reaches the write's revision, the change decides.
		out := deleteO1001(t, e, map[string]any{"consistency": map[string]any{"at_least_as_fresh": revString(rev)}})
		if out["allow"] != false || !strings.Contains(out["reason"].(string), "shipped") {
			t.Fatalf("with the write's token: %v", out)
		}
		if out := deleteO1001(t, e, nil); out["allow"] != false {
			t.Fatalf("after the head advanced: %v", out)
		}
	})
	t.Run("AZ-05/remote-entity-write-within-freshness", func(t *testing.T) {
		e := newEnv(t, func(o *Options) { o.Freshness = 10 * time.Millisecond })
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { e.svc.Run(ctx); close(done) }()
		defer func() { cancel(); <-done }()
		putStatus(t, e, "open", 1)
		if out := deleteO1001(t, e, nil); out["allow"] != true {
			t.Fatalf("before: %v", out)
		}
		if _, _, err := e.store.PutEntity(context.Background(),
			storage.Entity{Type: "order", ID: "o-1001", Attrs: []byte(`{"status":"shipped","tenant":"acme"}`), Version: 2}); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for deleteO1001(t, e, nil)["allow"] != false {
			if time.Now().After(deadline) {
				t.Fatal("remote entity write never became visible")
			}
			time.Sleep(5 * time.Millisecond)
		}
	})
	t.Run("AZ-01/cancelled-decision-not-answered-from-cache", func(t *testing.T) {
		e := newEnv(t)
		putStatus(t, e, "open", 1)
		in := Input{Principal: entity("user", "usr_alice"), Action: "delete", Resource: policy.Entity{Type: "order", ID: "o-1001"}}
		if res := e.svc.Decide(context.Background(), in); !res.Allow {
			t.Fatalf("warm-up: %+v", res)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if res := e.svc.Decide(ctx, in); res.Allow {
			t.Fatalf("cancelled decision allowed: %+v", res)
		}
	})
	t.Run("AZ-05/store-errors-not-cached", func(t *testing.T) {
		var cs *countingStore
		e := newEnv(t, func(o *Options) { cs = &countingStore{RelationStore: o.Store}; o.Store = cs })
		putStatus(t, e, "open", 1)
		cs.fail.Store(true)
		for range 2 {
			if out := deleteO1001(t, e, nil); out["allow"] != false || out["reason"] != "relation store unavailable" {
				t.Fatalf("store down: %v", out)
			}
		}
		if n := cs.gets.Load(); n != 2 {
			t.Fatalf("GetEntity calls while failing = %d, want 2 (an error was cached)", n)
		}
		cs.fail.Store(false)
		for range 3 {
			if out := deleteO1001(t, e, nil); out["allow"] != true {
				t.Fatalf("store back: %v", out)
			}
		}
		if n := cs.gets.Load(); n != 3 {
			t.Fatalf("GetEntity calls = %d, want 3 (one read, then cache hits at one revision)", n)
		}
	})
}

func TestEntityCacheUnit(t *testing.T) {
	k := entityKey{typ: "order", id: "o-1"}
	nested := cachedEntity{found: true, attrs: map[string]any{"tags": []any{"a"}, "meta": map[string]any{"x": "y"}}}
	cases := []struct {
		name string
		run  func(t *testing.T, c *entityCache)
	}{
		{"hit-at-same-revision", func(t *testing.T, c *entityCache) {
			c.put(5, k, nested)
			if _, ok := c.get(5, k); !ok {
				t.Fatal("miss")
			}
		}},
		{"AZ-05/newer-revision-empties", func(t *testing.T, c *entityCache) {
			c.put(5, k, nested)
			if _, ok := c.get(6, k); ok {
				t.Fatal("entry of revision 5 served at 6")
			}
			c.put(6, entityKey{typ: "order", id: "o-2"}, cachedEntity{})
			if _, ok := c.get(5, k); ok {
				t.Fatal("entry of revision 5 kept after the cache moved to 6")
			}
		}},
		{"AZ-05/older-revision-not-cached", func(t *testing.T, c *entityCache) {
			c.put(6, k, nested)
			c.put(5, entityKey{typ: "order", id: "o-2"}, cachedEntity{})
			if _, ok := c.get(6, entityKey{typ: "order", id: "o-2"}); ok {
				t.Fatal("a read at revision 5 was cached for 6")
			}
		}},
		{"bounded", func(t *testing.T, c *entityCache) {
			for i := range maxCachedEntities + 50 {
				c.put(1, entityKey{typ: "order", id: fmt.Sprint(i)}, cachedEntity{})
			}
			if n := len(c.entries); n != maxCachedEntities {
				t.Fatalf("%d entries, bound %d", n, maxCachedEntities)
			}
		}},
		{"bounded-bytes", func(t *testing.T, c *entityCache) {
			c.put(1, k, cachedEntity{found: true, size: maxCachedEntityBytes + 1})
			if _, ok := c.get(1, k); ok {
				t.Fatal("an oversized entity was cached")
			}
			for i := range 2 * maxCachedBytes / maxCachedEntityBytes {
				c.put(1, entityKey{typ: "order", id: fmt.Sprint(i)}, cachedEntity{found: true, size: maxCachedEntityBytes})
				c.put(1, entityKey{typ: "order", id: fmt.Sprint(i)}, cachedEntity{found: true, size: maxCachedEntityBytes})
			}
			sum := 0
			for _, e := range c.entries {
				sum += e.size
			}
			if sum != c.bytes || c.bytes > maxCachedBytes {
				t.Fatalf("bytes %d (entries sum %d), bound %d", c.bytes, sum, maxCachedBytes)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, &entityCache{}) })
	}
}

func TestReplicatedCopiesAreIsolated(t *testing.T) {
	e := newEnv(t)
	if _, _, err := e.store.PutEntity(context.Background(), storage.Entity{Type: "order", ID: "o-1",
		Attrs: []byte(`{"tags":["a"],"meta":{"x":"y"}}`), Version: 1}); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		attrs, found, err := e.svc.replicated(context.Background(), 1, "order", "o-1")
		if err != nil || !found {
			t.Fatalf("read %d: %v %v", i, found, err)
		}
		if attrs["tags"].([]any)[0] != "a" || attrs["meta"].(map[string]any)["x"] != "y" {
			t.Fatalf("read %d saw a caller's mutation: %v", i, attrs)
		}
		attrs["tags"].([]any)[0] = "mutated"
		attrs["meta"].(map[string]any)["x"] = "mutated"
		attrs["new"] = true
	}
	if _, _, err := e.svc.replicated(context.Background(), 1, "order", "o-missing"); err != nil {
		t.Fatal(err)
	}
	if _, found, err := e.svc.replicated(context.Background(), 1, "order", "o-missing"); found || err != nil {
		t.Fatalf("missing entity: %v %v", found, err)
	}
}
