package rebac

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
)

func TestCheckCache(t *testing.T) {
	ctx := context.Background()
	order := Object{"order", "o-2001"}
	bob := Subject{Type: "user", ID: "usr_bob"}
	alicePath := []string{"order:o-2001#team@team:eng", "team:eng#manager@user:usr_alice"}

	t.Run("hit on the same revision", func(t *testing.T) {
		m, rev := alice(t)
		r := &countingReader{Reader: m}
		c := NewChecker(mustSchema(t, docSchema), r, Limits{})
		first, err := c.Check(ctx, rev, order, "view", Subject{Type: "user", ID: "usr_alice"})
		if err != nil || first.Cached || !first.Allowed {
			t.Fatalf("first = %+v, %v", first, err)
		}
		calls := r.calls.Load()
		second, err := c.Check(ctx, rev, order, "view", Subject{Type: "user", ID: "usr_alice"})
		if err != nil || !second.Cached || !second.Allowed || !slices.Equal(second.Path, alicePath) || second.Dispatches != 0 {
			t.Fatalf("second = %+v, %v", second, err)
		}
		if r.calls.Load() != calls {
			t.Errorf("a cached check read the store")
		}
		second.Path[0] = "tampered"
		third, _ := c.Check(ctx, rev, order, "view", Subject{Type: "user", ID: "usr_alice"})
		if !slices.Equal(third.Path, alicePath) {
			t.Errorf("cached path was shared with the caller: %q", third.Path)
		}
		deny1, _ := c.Check(ctx, rev, order, "view", Subject{Type: "user", ID: "usr_carol"})
		deny2, _ := c.Check(ctx, rev, order, "view", Subject{Type: "user", ID: "usr_carol"})
		if deny1.Cached || !deny2.Cached || deny2.Allowed || deny2.Path != nil {
			t.Errorf("deny caching: %+v %+v", deny1, deny2)
		}
	})
	t.Run("new revision misses and never answers from the old one", func(t *testing.T) {
		m, rev1 := alice(t)
		c := NewChecker(mustSchema(t, docSchema), m, Limits{})
		if res, err := c.Check(ctx, rev1, order, "delete", bob); err != nil || !res.Allowed {
			t.Fatalf("rev1 = %+v, %v", res, err)
		}
		rev2 := m.MustWrite("order:o-2001#blocked@user:usr_bob")
		res, err := c.Check(ctx, rev2, order, "delete", bob)
		if err != nil || res.Allowed || res.Cached {
			t.Fatalf("rev2 = %+v, %v", res, err)
		}
		if res, _ = c.Check(ctx, rev2, order, "delete", bob); !res.Cached || res.Allowed {
			t.Fatalf("rev2 again = %+v", res)
		}
		// An older revision is still answered correctly, from storage.
		if res, err = c.Check(ctx, rev1, order, "delete", bob); err != nil || !res.Allowed || res.Cached {
			t.Fatalf("rev1 after rev2 = %+v, %v", res, err)
		}
	})
	t.Run("old entries are dropped", func(t *testing.T) {
		m, rev1 := alice(t)
		c := NewChecker(mustSchema(t, docSchema), m, Limits{})
		for i := 0; i < 50; i++ {
			if _, err := c.Check(ctx, rev1, order, "view", Subject{Type: "user", ID: fmt.Sprint("u", i)}); err != nil {
				t.Fatal(err)
			}
		}
		cache := c.state.Load().cache
		if n := cache.len(); n != 50 {
			t.Fatalf("len = %d", n)
		}
		rev2 := m.MustWrite("order:o-2001#blocked@user:usr_bob")
		for i := 0; i < 200; i++ { // touch every shard at the new revision
			_, _ = c.Check(ctx, rev2, order, "view", Subject{Type: "user", ID: fmt.Sprint("v", i)})
		}
		for i := range cache.shards {
			sh := &cache.shards[i]
			if len(sh.m) > 0 && sh.rev != rev2 {
				t.Fatalf("shard %d still holds revision %d", i, sh.rev)
			}
		}
	})
	t.Run("errors are not cached", func(t *testing.T) {
		m, rev := alice(t)
		r := &countingReader{Reader: m, fail: errors.New("db down")}
		c := NewChecker(mustSchema(t, docSchema), r, Limits{})
		if _, err := c.Check(ctx, rev, order, "view", bob); err == nil {
			t.Fatal("no error")
		}
		r.fail = nil
		res, err := c.Check(ctx, rev, order, "view", bob)
		if err != nil || res.Cached || !res.Allowed {
			t.Fatalf("after recovery = %+v, %v", res, err)
		}
	})
	t.Run("bounded", func(t *testing.T) {
		m, rev := alice(t)
		c := NewChecker(mustSchema(t, docSchema), m, Limits{CacheEntries: 64})
		for i := 0; i < 1000; i++ {
			if _, err := c.Check(ctx, rev, order, "view", Subject{Type: "user", ID: fmt.Sprint("u", i)}); err != nil {
				t.Fatal(err)
			}
		}
		if n := c.state.Load().cache.len(); n > 64 || n == 0 {
			t.Fatalf("len = %d, want ≤ 64", n)
		}
	})
	t.Run("disabled", func(t *testing.T) {
		m, rev := alice(t)
		c := NewChecker(mustSchema(t, docSchema), m, Limits{CacheEntries: -1})
		for i := 0; i < 2; i++ {
			if res, _ := c.Check(ctx, rev, order, "view", bob); res.Cached {
				t.Fatal("cached with the cache disabled")
			}
		}
	})
	t.Run("SetSchema clears", func(t *testing.T) {
		m, rev := alice(t)
		c := NewChecker(mustSchema(t, docSchema), m, Limits{})
		_, _ = c.Check(ctx, rev, order, "view", bob)
		narrower := mustSchema(t, `definition user {}
definition team { relation member: user
 relation manager: user }
definition order { relation owner: user
 relation team: team
 relation blocked: user
 permission view = team->manager }`)
		c.SetSchema(narrower)
		if c.Schema() != narrower {
			t.Fatal("Schema() is not the new schema")
		}
		res, err := c.Check(ctx, rev, order, "view", bob)
		if err != nil || res.Cached || res.Allowed {
			t.Fatalf("after SetSchema = %+v, %v", res, err)
		}
	})
}

func TestCheckCachedAllocs(t *testing.T) {
	m, rev := alice(t)
	c := NewChecker(mustSchema(t, docSchema), m, Limits{})
	ctx := context.Background()
	obj := Object{"order", "o-2001"}
	for _, tt := range []struct {
		subj Subject
		max  float64
	}{{Subject{Type: "user", ID: "usr_carol"}, 0}, {Subject{Type: "user", ID: "usr_alice"}, 1}} {
		if _, err := c.Check(ctx, rev, obj, "view", tt.subj); err != nil {
			t.Fatal(err)
		}
		n := testing.AllocsPerRun(100, func() {
			if res, _ := c.Check(ctx, rev, obj, "view", tt.subj); !res.Cached {
				t.Fatal("not cached")
			}
		})
		if n > tt.max {
			t.Errorf("%s: %v allocations per cached check, want ≤ %v", tt.subj, n, tt.max)
		}
	}
}

func BenchmarkCheckCached(b *testing.B) {
	m, rev := alice(b)
	c := NewChecker(mustSchema(b, docSchema), m, Limits{})
	ctx := context.Background()
	obj, subj := Object{"order", "o-2001"}, Subject{Type: "user", ID: "usr_alice"}
	if _, err := c.Check(ctx, rev, obj, "view", subj); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if res, err := c.Check(ctx, rev, obj, "view", subj); err != nil || !res.Cached {
				b.Fatal(res, err)
			}
		}
	})
}

func BenchmarkCheckUncached5Deep(b *testing.B) {
	m := NewMemReader()
	rev := chain(m, 4) // g0 <- g1 <- g2 <- g3 <- g4 <- user:x: five levels
	c := NewChecker(mustSchema(b, groupSchema), m, Limits{CacheEntries: -1})
	ctx := context.Background()
	obj, subj := Object{"group", "g0"}, Subject{Type: "user", ID: "x"}
	b.ReportAllocs()
	for b.Loop() {
		if res, err := c.Check(ctx, rev, obj, "member", subj); err != nil || !res.Allowed {
			b.Fatal(res, err)
		}
	}
}
