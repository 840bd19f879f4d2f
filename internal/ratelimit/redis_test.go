package ratelimit

import (
	"context"
	"errors"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func TestRedisBurstThenRefuse(t *testing.T) {
	c := newTestClient(t)
	r := NewRedis(c, testPrefix(t, c))
	ctx := context.Background()
	lim := Limit{Rate: 5, Period: time.Minute} // burst 5, one event per 12s
	for i := range 5 {
		res, err := r.Allow(ctx, "client-1", lim)
		if err != nil {
			t.Fatal(err)
		}
		if !res.Allowed || res.Remaining != 4-i || res.Limit != 5 || res.RetryAfter != 0 {
			t.Fatalf("event %d: %+v", i, res)
		}
		if want := time.Duration(i+1) * 12 * time.Second; res.ResetAfter > want || res.ResetAfter < want-time.Second {
			t.Errorf("event %d: ResetAfter %s, want ≈ %s", i, res.ResetAfter, want)
		}
	}
	for range 3 {
		res, err := r.Allow(ctx, "client-1", lim)
		if err != nil {
			t.Fatal(err)
		}
		if res.Allowed || res.Remaining != 0 {
			t.Fatalf("after burst: %+v", res)
		}
		if res.RetryAfter <= 0 || res.RetryAfter > 12*time.Second || res.RetryAfter < 11*time.Second {
			t.Errorf("RetryAfter %s, want just under 12s", res.RetryAfter)
		}
		if res.ResetAfter > time.Minute || res.ResetAfter < time.Minute-time.Second {
			t.Errorf("ResetAfter %s, want just under 1m", res.ResetAfter)
		}
	}
	if res, _ := r.Allow(ctx, "client-2", lim); !res.Allowed || res.Remaining != 4 {
		t.Errorf("other key affected: %+v", res)
	}
	if _, err := r.Allow(ctx, "client-1", Limit{Rate: 0, Period: time.Second}); !errors.Is(err, ErrInvalidLimit) {
		t.Errorf("invalid limit: %v", err)
	}
}

func TestRedisRefill(t *testing.T) {
	c := newTestClient(t)
	r := NewRedis(c, testPrefix(t, c))
	ctx := context.Background()
	// T = 500ms: the two calls after the sleep must fall within one T of
	// each other and of its end, whatever a loaded machine adds.
	lim := Limit{Rate: 2, Period: time.Second, Burst: 2}
	for range 2 {
		if res, _ := r.Allow(ctx, "k", lim); !res.Allowed {
			t.Fatalf("burst refused: %+v", res)
		}
	}
	res, _ := r.Allow(ctx, "k", lim)
	if res.Allowed {
		t.Fatalf("third allowed: %+v", res)
	}
	time.Sleep(res.RetryAfter + 5*ms)
	if res, _ := r.Allow(ctx, "k", lim); !res.Allowed || res.Remaining != 0 {
		t.Fatalf("after RetryAfter: %+v", res)
	}
	if res, _ := r.Allow(ctx, "k", lim); res.Allowed {
		t.Fatalf("two events after one interval: %+v", res)
	}
}

func TestRedisKeysHashed(t *testing.T) {
	c := newTestClient(t)
	prefix := testPrefix(t, c)
	r := NewRedis(c, prefix)
	ctx := context.Background()
	secret := strings.Repeat("s3cr3t", 1000)
	keys := []string{"alice@example.com", "10.0.0.1", "apikey:gh_live_abc", "*?[x]", "a\r\nb", "", secret}
	lim := Limit{Rate: 1, Period: time.Minute, Burst: 3}
	for _, k := range keys {
		if _, err := r.Allow(ctx, k, lim); err != nil {
			t.Fatal(err)
		}
	}
	stored, err := c.Keys(ctx, prefix+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(stored) != len(keys) {
		t.Fatalf("%d keys stored for %d keys: %q", len(stored), len(keys), stored)
	}
	shape := regexp.MustCompile("^" + regexp.QuoteMeta(prefix) + "[0-9a-f]{32}$")
	for _, s := range stored {
		if !shape.MatchString(s) {
			t.Errorf("key %q is not prefix + 32 hex digits", s)
		}
		for _, k := range []string{"alice", "10.0.0", "gh_live", "s3cr3t"} {
			if strings.Contains(s, k) {
				t.Errorf("key %q contains raw key text %q", s, k)
			}
		}
		ttl, err := c.PTTL(ctx, s).Result()
		if err != nil || ttl <= 59*time.Second || ttl > time.Minute {
			t.Errorf("PTTL(%q) = %s, %v; want (59s, 1m]", s, ttl, err)
		}
	}
	if r.Key("x") == NewRedisKeyed(c, prefix, []byte("pepper")).Key("x") {
		t.Error("keyed and unkeyed hashes agree")
	}
	if r.Key("x") != NewRedis(nil, prefix).Key("x") {
		t.Error("hash is not deterministic across instances")
	}
}

func TestRedisPExpire(t *testing.T) {
	c := newTestClient(t)
	prefix := testPrefix(t, c)
	r := NewRedis(c, prefix)
	ctx := context.Background()
	// T = 250ms: the five calls below must fall within one T for the bucket
	// to be empty at the fourth; 250ms absorbs a loaded machine's pauses.
	const T = 250 * ms
	lim := Limit{Rate: 4, Period: time.Second, Burst: 4}
	// The TTL counts down from the first event: the lower bounds allow for
	// the time this test took, and for PTTL's whole milliseconds.
	start := time.Now()
	for range 3 {
		r.Allow(ctx, "k", lim)
	}
	ttl, err := c.PTTL(ctx, r.Key("k")).Result()
	if lo := 3*T - time.Since(start) - ms; err != nil || ttl <= lo || ttl > 3*T {
		t.Fatalf("PTTL after 3 events = %s, %v; want (%s, %s]", ttl, err, lo, 3*T)
	}
	res, _ := r.Allow(ctx, "k", lim) // the fourth: bucket empty, reset 4T
	if !res.Allowed || res.Remaining != 0 {
		t.Fatalf("fourth: %+v", res)
	}
	refused, _ := r.Allow(ctx, "k", lim)
	if refused.Allowed {
		t.Fatalf("fifth allowed: %+v", refused)
	}
	ttl2, _ := c.PTTL(ctx, r.Key("k")).Result()
	if lo := 4*T - time.Since(start) - ms; ttl2 > 4*T || ttl2 <= lo {
		t.Errorf("PTTL after 4 events = %s; want (%s, %s]", ttl2, lo, 4*T)
	}
	time.Sleep(ttl2 + 20*ms)
	if n, _ := c.Exists(ctx, r.Key("k")).Result(); n != 0 {
		t.Errorf("key still exists after its reset time")
	}
	if res, _ := r.Allow(ctx, "k", lim); !res.Allowed || res.Remaining != 3 {
		t.Errorf("after expiry: %+v, want a full bucket", res)
	}
}

// TestRedisStoredTAT checks the script's stored format and its arithmetic on
// a TAT that is not a whole number of µs.
func TestRedisStoredTAT(t *testing.T) {
	c := newTestClient(t)
	r := NewRedis(c, testPrefix(t, c))
	ctx := context.Background()
	lim := Limit{Rate: 3, Period: time.Second, Burst: 3} // T = 333333333ns
	now, err := c.Time(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	// A bucket 1.5 events from full: 1 event left right now.
	tat := now.UnixNano() + 3*lim.interval()/2 + 7
	if err := c.Set(ctx, r.Key("k"), strconv.FormatInt(tat, 10), time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	res, err := r.Allow(ctx, "k", lim)
	if err != nil || !res.Allowed || res.Remaining != 0 {
		t.Fatalf("%+v %v", res, err)
	}
	got, _ := c.Get(ctx, r.Key("k")).Int64()
	if got != tat+lim.interval() {
		t.Errorf("stored TAT %d, want %d (exact ns)", got, tat+lim.interval())
	}
	res, _ = r.Allow(ctx, "k", lim)
	// Elapsed time since TIME was read only shortens the wait.
	// 2.5 T from full now; the next event fits in 3 T after 0.5 T.
	if want := time.Duration(lim.interval()/2 + 7); res.Allowed || res.RetryAfter > want || res.RetryAfter < want-100*ms {
		t.Errorf("refused: %+v, want RetryAfter ≈ T/2", res)
	}
	// Garbage in the key is treated as a full bucket, not an error.
	for _, v := range []string{"garbage", "1", "-5000000000000000000", "99999999999999999999999999"} {
		c.Set(ctx, r.Key("g"), v, time.Minute)
		if res, err := r.Allow(ctx, "g", lim); err != nil || !res.Allowed || res.Remaining != 2 {
			t.Errorf("stored %q: %+v %v", v, res, err)
		}
		c.Del(ctx, r.Key("g"))
	}
}

// TestRedisNoScript checks the EVAL fallback when the server lost the script.
func TestRedisNoScript(t *testing.T) {
	c := newTestClient(t)
	r := NewRedis(c, testPrefix(t, c))
	ctx := context.Background()
	lim := Limit{Rate: 1, Period: time.Hour, Burst: 2}
	if _, err := r.Allow(ctx, "k", lim); err != nil {
		t.Fatal(err)
	}
	if err := c.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if res, err := r.Allow(ctx, "k", lim); err != nil || !res.Allowed || res.Remaining != 0 {
		t.Fatalf("after SCRIPT FLUSH: %+v %v", res, err)
	}
}

// TestLocalRedisAgree runs the same burst through Local and Redis.
func TestLocalRedisAgree(t *testing.T) {
	c := newTestClient(t)
	r := NewRedis(c, testPrefix(t, c))
	ctx := context.Background()
	for i, lim := range []Limit{
		{Rate: 5, Period: time.Minute},
		{Rate: 3, Period: time.Second, Burst: 7},
		{Rate: 1, Period: 24 * time.Hour, Burst: 1},
		{Rate: 7, Period: 100 * time.Second, Burst: 2},
	} {
		l := NewLocal(10, nil)
		key := "agree-" + strconv.Itoa(i)
		for n := range lim.burst() + 3 {
			lr, err1 := l.Allow(ctx, key, lim)
			rr, err2 := r.Allow(ctx, key, lim)
			if err1 != nil || err2 != nil {
				t.Fatal(err1, err2)
			}
			if lr.Allowed != rr.Allowed || lr.Remaining != rr.Remaining || lr.Limit != rr.Limit ||
				absDur(lr.RetryAfter-rr.RetryAfter) > 500*ms || absDur(lr.ResetAfter-rr.ResetAfter) > 500*ms {
				t.Errorf("%+v event %d:\n local %+v\n redis %+v", lim, n, lr, rr)
			}
		}
	}
}

func absDur(d time.Duration) time.Duration { return max(d, -d) }

// TestRedisReplicas has three "replicas", each with its own client, hammer
// one key: together they admit the limit once, not three times.
func TestRedisReplicas(t *testing.T) {
	base := newTestClient(t)
	prefix := testPrefix(t, base)
	lim := Limit{Rate: 200, Period: time.Second, Burst: 100} // a burst of 0.5 s absorbs scheduler stalls of a loaded machine
	const replicas, dur = 3, 3 * time.Second
	var admitted, calls atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range replicas {
		c := redis.NewClient(&redis.Options{Addr: testRedisAddr(), DB: testRedisDB})
		defer c.Close()
		r := NewRedis(c, prefix)
		for range 2 {
			wg.Go(func() {
				for time.Since(start) < dur {
					res, err := r.Allow(context.Background(), "client-1", lim)
					if err != nil {
						t.Error(err)
						return
					}
					calls.Add(1)
					if res.Allowed {
						admitted.Add(1)
					}
				}
			})
		}
	}
	wg.Wait()
	elapsed := time.Since(start)
	want := lim.Rate*int(elapsed)/int(time.Second) + lim.Burst
	got := int(admitted.Load())
	t.Logf("%d replicas admitted %d of %d calls in %s (limit %d)", replicas, got, calls.Load(), elapsed, want)
	if calls.Load() < int64(2*want) {
		t.Fatalf("only %d calls: too few to saturate the limit", calls.Load())
	}
	if d := got - want; d > want/20 || d < -want/20 {
		t.Errorf("admitted %d, want within 5%% of %d", got, want)
	}
}
