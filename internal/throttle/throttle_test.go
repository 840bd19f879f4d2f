package throttle

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// clock is a fake clock safe for concurrent reads.
type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ns.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	return c
}
func (c *clock) now() time.Time          { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) advance(d time.Duration) { c.ns.Add(int64(d)) }
func fails(l *Limiter, key string, n int) {
	for range n {
		l.Fail(key)
	}
}

func TestBF01(t *testing.T) {
	cfg := Config{MaxFailures: 3, Window: time.Minute}
	tests := []struct {
		name        string
		run         func(l *Limiter, c *clock)
		key         string
		wantAllowed bool
		wantRetry   time.Duration
	}{
		{"BF-01/fresh-key-allowed", func(*Limiter, *clock) {}, "k", true, 0},
		{"BF-01/below-limit-allowed", func(l *Limiter, _ *clock) { fails(l, "k", 2) }, "k", true, 0},
		{"BF-01/blocks-after-max", func(l *Limiter, _ *clock) { fails(l, "k", 3) }, "k", false, time.Minute},
		{"BF-01/retry-after-counts-down", func(l *Limiter, c *clock) {
			fails(l, "k", 1)
			c.advance(20 * time.Second)
			fails(l, "k", 2)
			c.advance(10 * time.Second)
		}, "k", false, 30 * time.Second},
		{"BF-01/unblocks-after-window", func(l *Limiter, c *clock) {
			fails(l, "k", 3)
			c.advance(time.Minute)
		}, "k", true, 0},
		{"BF-01/failures-while-blocked-do-not-extend", func(l *Limiter, c *clock) {
			fails(l, "k", 3)
			for range 59 {
				c.advance(time.Second)
				l.Fail("k")
			}
			c.advance(time.Second)
		}, "k", true, 0},
		{"BF-01/attacker-cannot-lock-out-for-good", func(l *Limiter, c *clock) {
			// Failures hammered the whole time still leave a window each
			// minute where the key starts afresh.
			fails(l, "k", 1000)
			c.advance(time.Minute)
		}, "k", true, 0},
		{"BF-01/old-failures-age-out", func(l *Limiter, c *clock) {
			fails(l, "k", 2)
			c.advance(time.Minute)
			fails(l, "k", 2)
		}, "k", true, 0},
		{"BF-01/keys-independent", func(l *Limiter, _ *clock) { fails(l, "acct:alice", 3) }, "acct:bob", true, 0},
		{"BF-01/other-key-blocked", func(l *Limiter, _ *clock) { fails(l, "acct:alice", 3) }, "acct:alice", false, time.Minute},
		{"BF-01/reset-unblocks", func(l *Limiter, _ *clock) {
			fails(l, "k", 3)
			l.Reset("k")
		}, "k", true, 0},
		{"BF-01/reset-clears-count", func(l *Limiter, _ *clock) {
			fails(l, "k", 2)
			l.Reset("k")
			fails(l, "k", 2)
		}, "k", true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClock()
			l := New(cfg, c.now)
			tt.run(l, c)
			allowed, retry := l.Check(tt.key)
			if allowed != tt.wantAllowed || retry != tt.wantRetry {
				t.Fatalf("Check(%q) = %v, %v; want %v, %v", tt.key, allowed, retry, tt.wantAllowed, tt.wantRetry)
			}
		})
	}
}

func TestCheckDoesNotCount(t *testing.T) {
	l := New(Config{MaxFailures: 2, Window: time.Minute}, newClock().now)
	for range 100 {
		if ok, _ := l.Check("k"); !ok {
			t.Fatal("Check counted as a failure")
		}
	}
	if l.Len() != 0 {
		t.Fatalf("Check created %d entries", l.Len())
	}
}

func TestDefaults(t *testing.T) {
	l := New(Config{}, nil)
	if l.max != DefaultMaxFailures || l.window != DefaultWindow {
		t.Fatalf("defaults = %d, %v", l.max, l.window)
	}
	total := 0
	for i := range l.shards {
		total += l.shards[i].cap
	}
	if total != DefaultMaxKeys {
		t.Fatalf("capacity = %d, want %d", total, DefaultMaxKeys)
	}
	fails(l, "k", DefaultMaxFailures)
	if ok, retry := l.Check("k"); ok || retry <= 0 || retry > DefaultWindow {
		t.Fatalf("with defaults: Check = %v, %v", ok, retry)
	}
}

func TestEvictionBound(t *testing.T) {
	for _, maxKeys := range []int{1, 10, 100, 1000} {
		t.Run(fmt.Sprint(maxKeys), func(t *testing.T) {
			c := newClock()
			l := New(Config{MaxFailures: 3, Window: time.Hour, MaxKeys: maxKeys}, c.now)
			for i := range 10 * maxKeys {
				c.advance(time.Millisecond)
				l.Fail(fmt.Sprint("ip:", i))
				if n := l.Len(); n > maxKeys {
					t.Fatalf("after %d keys: %d tracked, want <= %d", i+1, n, maxKeys)
				}
			}
			// The newest key is still tracked: eviction takes the oldest.
			last := fmt.Sprint("ip:", 10*maxKeys-1)
			fails(l, last, 2)
			if ok, _ := l.Check(last); ok {
				t.Fatal("newest key was evicted instead of the oldest")
			}
		})
	}
}

func TestExpiredEntriesDropped(t *testing.T) {
	c := newClock()
	l := New(Config{MaxFailures: 3, Window: time.Minute}, c.now)
	fails(l, "a", 1)
	c.advance(time.Minute)
	l.Check("a")
	if l.Len() != 0 {
		t.Fatalf("expired entry kept: Len = %d", l.Len())
	}
}

func TestConcurrent(t *testing.T) {
	c := newClock()
	l := New(Config{MaxFailures: 50, Window: time.Minute, MaxKeys: 64}, c.now)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				key := fmt.Sprint("k", (g+i)%100)
				l.Check(key)
				l.Fail(key)
				if i%17 == 0 {
					l.Reset(key)
				}
				if i%50 == 0 {
					c.advance(time.Second)
				}
			}
		})
	}
	wg.Wait()
	if n := l.Len(); n > 64 {
		t.Fatalf("Len = %d, want <= 64", n)
	}
	// A shared key counts every goroutine's failures.
	shared := New(Config{MaxFailures: 400, Window: time.Minute}, c.now)
	for range 4 {
		wg.Go(func() { fails(shared, "acct:alice", 100) })
	}
	wg.Wait()
	if ok, _ := shared.Check("acct:alice"); ok {
		t.Fatal("400 concurrent failures did not block a key with MaxFailures 400")
	}
}
