package ratelimit

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const ms = time.Millisecond

// step is one Allow call after advancing the clock by adv.
type step struct {
	adv       time.Duration
	allowed   bool
	remaining int
	retry     time.Duration
	reset     time.Duration
}

func TestLocalGCRA(t *testing.T) {
	third := time.Second / 3 // 333333333ns, the truncated emission interval
	tests := []struct {
		name  string
		l     Limit
		steps []step
	}{
		{"burst-then-refill", Limit{Rate: 10, Period: time.Second, Burst: 3}, []step{
			{0, true, 2, 0, 100 * ms},
			{0, true, 1, 0, 200 * ms},
			{0, true, 0, 0, 300 * ms},
			{0, false, 0, 100 * ms, 300 * ms},
			{0, false, 0, 100 * ms, 300 * ms}, // refusals do not move TAT
			{40 * ms, false, 0, 60 * ms, 260 * ms},
			{60*ms - 1, false, 0, 1, 200*ms + 1},
			{1, true, 0, 0, 300 * ms},
			{250 * ms, true, 1, 0, 150 * ms}, // 1.5 events left, rounded down
			{50 * ms, true, 1, 0, 200 * ms},
			{10 * time.Second, true, 2, 0, 100 * ms}, // idle: full again, never more than burst
			{0, true, 1, 0, 200 * ms},
		}},
		{"burst-1", Limit{Rate: 1, Period: time.Minute, Burst: 1}, []step{
			{0, true, 0, 0, time.Minute},
			{0, false, 0, time.Minute, time.Minute},
			{59 * time.Second, false, 0, time.Second, time.Second},
			{time.Second, true, 0, 0, time.Minute},
		}},
		{"burst-0-means-rate", Limit{Rate: 3, Period: time.Second}, []step{
			{0, true, 2, 0, third},
			{0, true, 1, 0, 2 * third},
			{0, true, 0, 0, 3 * third},
			{0, false, 0, third, 3 * third},
			{third, true, 0, 0, 3 * third},
			{2 * third, true, 1, 0, 2 * third},
		}},
		{"burst-above-rate", Limit{Rate: 2, Period: time.Second, Burst: 4}, []step{
			{0, true, 3, 0, 500 * ms},
			{0, true, 2, 0, time.Second},
			{0, true, 1, 0, 1500 * ms},
			{0, true, 0, 0, 2 * time.Second},
			{0, false, 0, 500 * ms, 2 * time.Second},
			{time.Second, true, 1, 0, 1500 * ms},
			{0, true, 0, 0, 2 * time.Second},
			{0, false, 0, 500 * ms, 2 * time.Second},
		}},
		{"clock-backwards", Limit{Rate: 1, Period: time.Second, Burst: 2}, []step{
			{0, true, 1, 0, time.Second},
			{-time.Hour, false, 0, time.Hour, time.Hour + time.Second}, // TAT is kept, not trusted less
			{time.Hour, true, 0, 0, 2 * time.Second},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClock()
			l := NewLocal(100, c.now)
			for i, s := range tt.steps {
				c.advance(s.adv)
				r, err := l.Allow(context.Background(), "k", tt.l)
				if err != nil {
					t.Fatal(err)
				}
				want := Result{Allowed: s.allowed, Limit: tt.l.burst(), Remaining: s.remaining, RetryAfter: s.retry, ResetAfter: s.reset}
				if r != want {
					t.Fatalf("step %d: got %+v\n want %+v", i, r, want)
				}
			}
		})
	}
}

func TestLocalKeyIsolation(t *testing.T) {
	c := newClock()
	l := NewLocal(100, c.now)
	lim := Limit{Rate: 1, Period: time.Hour, Burst: 2}
	ctx := context.Background()
	for range 5 {
		l.Allow(ctx, "alice", lim)
	}
	for _, k := range []string{"bob", "Alice", "alice ", "", "alice\x00"} {
		r, _ := l.Allow(ctx, k, lim)
		if !r.Allowed || r.Remaining != 1 {
			t.Errorf("key %q affected by alice: %+v", k, r)
		}
	}
	if r, _ := l.Allow(ctx, "alice", lim); r.Allowed {
		t.Errorf("alice allowed after her burst: %+v", r)
	}
}

func TestLocalInvalidLimit(t *testing.T) {
	l := NewLocal(10, nil)
	for _, lim := range []Limit{{}, {Rate: 1, Period: time.Second, Burst: -1}, {Rate: -5, Period: time.Hour}} {
		if _, err := l.Allow(context.Background(), "k", lim); !errors.Is(err, ErrInvalidLimit) {
			t.Errorf("%+v: err = %v", lim, err)
		}
	}
	if l.Len() != 0 {
		t.Errorf("invalid limits created %d entries", l.Len())
	}
}

func TestLocalKeySpray(t *testing.T) {
	t.Run("AK-04/spray-1e5-keys-memory-bounded", func(t *testing.T) {
		c := newClock()
		const maxKeys = 1000
		l := NewLocal(maxKeys, c.now)
		if l.Cap() > maxKeys || l.Cap() < maxKeys/2 {
			t.Fatalf("Cap() = %d for maxKeys %d", l.Cap(), maxKeys)
		}
		lim := Limit{Rate: 10, Period: time.Second, Burst: 5}
		ctx := context.Background()
		// The victim is being limited; the attacker sprays distinct keys to
		// evict its bucket and so reset its limit.
		for range 5 {
			l.Allow(ctx, "victim", lim)
		}
		for i := range 100_000 {
			r, err := l.Allow(ctx, "spray-"+strconv.Itoa(i), lim)
			if err != nil || !r.Allowed {
				t.Fatalf("spray key %d: %+v %v", i, r, err)
			}
			if i%997 == 0 {
				c.advance(time.Millisecond)
				if n := l.Len(); n > maxKeys {
					t.Fatalf("after %d keys: %d entries > %d", i+1, n, maxKeys)
				}
			}
		}
		if n := l.Len(); n > maxKeys || n < l.Cap()-len(l.shards) {
			t.Fatalf("%d entries, cap %d", n, l.Cap())
		}
		for i := range l.shards {
			if n := len(l.shards[i].m); n > l.shards[i].cap {
				t.Fatalf("shard %d holds %d > cap %d", i, n, l.shards[i].cap)
			}
		}
		// ~100ms passed: the victim regained one event, not its whole burst.
		if r, _ := l.Allow(ctx, "victim", lim); !r.Allowed || r.Remaining != 0 {
			t.Errorf("victim after spray: %+v (its limited bucket was evicted)", r)
		}
		if r, _ := l.Allow(ctx, "victim", lim); r.Allowed {
			t.Errorf("victim allowed twice after spray: %+v", r)
		}
	})
	t.Run("AK-04/evicts-fullest-bucket-first", func(t *testing.T) {
		c := newClock()
		l := NewLocal(8, c.now)
		l.shards = l.shards[:1] // one shard of 8 slots, to control eviction
		l.shards[0].cap = 8
		lim := Limit{Rate: 1, Period: time.Second, Burst: 3}
		ctx := context.Background()
		l.Allow(ctx, "old", lim)
		c.advance(10 * time.Second) // old's bucket is full again
		for range 3 {
			l.Allow(ctx, "limited", lim)
		}
		for i := range 6 {
			l.Allow(ctx, "f"+strconv.Itoa(i), lim)
		}
		l.Allow(ctx, "new1", lim) // evicts old (expired), though limited is as old
		l.Allow(ctx, "new2", lim) // evicts f0 (one event used), not limited (three)
		if l.Len() != 8 {
			t.Fatalf("Len = %d", l.Len())
		}
		if r, _ := l.Allow(ctx, "limited", lim); r.Allowed {
			t.Errorf("limited key was evicted: %+v", r)
		}
		if _, ok := l.shards[0].m[l.hash("old")]; ok {
			t.Error("expired key kept")
		}
		if _, ok := l.shards[0].m[l.hash("f0")]; ok {
			t.Error("f0 kept")
		}
	})
	t.Run("AK-04/one-slot", func(t *testing.T) {
		c := newClock()
		l := NewLocal(1, c.now) // one shard with one slot
		lim := Limit{Rate: 1, Period: time.Second, Burst: 1}
		ctx := context.Background()
		l.Allow(ctx, "a", lim)
		l.Allow(ctx, "b", lim) // evicts a
		if l.Len() != 1 {
			t.Fatalf("Len = %d", l.Len())
		}
		if r, _ := l.Allow(ctx, "b", lim); r.Allowed {
			t.Errorf("b allowed twice: %+v", r)
		}
	})
}

func TestLocalConcurrentOneKey(t *testing.T) {
	c := newClock() // frozen: no refill during the test
	l := NewLocal(1000, c.now)
	lim := Limit{Rate: 10, Period: time.Second, Burst: 37}
	var admitted atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 1000 {
				r, err := l.Allow(context.Background(), "shared", lim)
				if err != nil {
					t.Error(err)
					return
				}
				if r.Allowed {
					admitted.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if got := admitted.Load(); got != 37 {
		t.Fatalf("admitted %d of 8000, want exactly the burst 37", got)
	}
}

func TestLocalConcurrentManyKeys(t *testing.T) {
	c := newClock()
	l := NewLocal(10_000, c.now)
	lim := Limit{Rate: 1, Period: time.Hour, Burst: 3}
	var wg sync.WaitGroup
	var admitted [100]atomic.Int64
	for g := range 8 {
		wg.Go(func() {
			for i := range 2000 {
				k := (i + g*13) % len(admitted)
				if r, _ := l.Allow(context.Background(), "k"+strconv.Itoa(k), lim); r.Allowed {
					admitted[k].Add(1)
				}
			}
		})
	}
	wg.Wait()
	for k := range admitted {
		if got := admitted[k].Load(); got != 3 {
			t.Errorf("key %d admitted %d, want 3", k, got)
		}
	}
}

func TestLocalAllocs(t *testing.T) {
	c := newClock()
	l := NewLocal(1000, c.now)
	lim := Limit{Rate: 1000, Period: time.Second, Burst: 10}
	ctx := context.Background()
	l.Allow(ctx, "existing-key", lim)
	if n := testing.AllocsPerRun(1000, func() {
		c.advance(time.Millisecond)
		l.Allow(ctx, "existing-key", lim)
	}); n != 0 {
		t.Errorf("Allow on an existing key allocates %.1f times", n)
	}
}

// TestLocalPerInstance documents why Shared exists: three replicas, each with
// its own Local, together admit three times the limit. A fake clock drives
// one second of demand well above the rate (two calls per replica per ms),
// so the count does not depend on how fast a loaded machine runs the loop.
func TestLocalPerInstance(t *testing.T) {
	lim := Limit{Rate: 200, Period: time.Second, Burst: 20}
	const replicas, dur, step = 3, time.Second, time.Millisecond
	c := newClock()
	ls := make([]*Local, replicas)
	for i := range ls {
		ls[i] = NewLocal(100, c.now)
	}
	admitted := 0
	for elapsed := time.Duration(0); elapsed <= dur; elapsed += step { // [0, dur]: burst + rate × dur
		for _, l := range ls {
			for range 2 {
				if r, _ := l.Allow(context.Background(), "client-1", lim); r.Allowed {
					admitted++
				}
			}
		}
		c.advance(step)
	}
	want := replicas * (lim.Rate*int(dur)/int(time.Second) + lim.Burst)
	t.Logf("3 Local limiters admitted %d in %s of fake time (3 × limit = %d)", admitted, dur, want)
	if admitted != want {
		t.Errorf("admitted %d, want %d", admitted, want)
	}
}

// TestLocalSmallBoundKeepsLiveKeys: a Local sized for N keys holds N live
// keys, whatever their hashes: no key is evicted (and so refilled) while
// there is room. Small bounds once made 64 shards of one key each.
func TestLocalSmallBoundKeepsLiveKeys(t *testing.T) {
	for _, n := range []int{1, 2, 10, 100, 300} {
		c := newClock()
		l := NewLocal(n, c.now)
		lim := Limit{Rate: 1, Period: time.Hour, Burst: 1}
		ctx := context.Background()
		for i := range n {
			if r, _ := l.Allow(ctx, "key-"+strconv.Itoa(i), lim); !r.Allowed {
				t.Fatalf("n=%d: first event of key %d refused", n, i)
			}
		}
		for i := range n {
			if r, _ := l.Allow(ctx, "key-"+strconv.Itoa(i), lim); r.Allowed {
				t.Fatalf("n=%d: key %d was evicted and refilled while the limiter had room", n, i)
			}
		}
	}
}
