package ratelimit

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

func BenchmarkLocalAllow(b *testing.B) {
	lim := Limit{Rate: 1_000_000, Period: time.Second, Burst: 1000}
	ctx := context.Background()
	keys := make([]string, 10_000)
	for i := range keys {
		keys[i] = "client-" + strconv.Itoa(i)
	}
	b.Run("one-key", func(b *testing.B) {
		l := NewLocal(len(keys), nil)
		b.ReportAllocs()
		for b.Loop() {
			l.Allow(ctx, "client-1", lim)
		}
	})
	warm := func() *Local {
		l := NewLocal(2*len(keys), nil)
		for _, k := range keys {
			l.Allow(ctx, k, lim)
		}
		return l
	}
	b.Run("many-keys", func(b *testing.B) {
		l := warm()
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			l.Allow(ctx, keys[i%len(keys)], lim)
			i++
		}
	})
	b.Run("parallel", func(b *testing.B) {
		l := warm()
		var seq atomic.Int64
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := int(seq.Add(1)) * 7919
			for pb.Next() {
				l.Allow(ctx, keys[i%len(keys)], lim)
				i++
			}
		})
	})
}

func BenchmarkRedisAllow(b *testing.B) {
	c := newTestClient(b)
	r := NewRedis(c, testPrefix(b, c))
	lim := Limit{Rate: 1_000_000, Period: time.Second, Burst: 1000}
	ctx := context.Background()
	b.ReportAllocs()
	var seq atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		key := "client-" + strconv.FormatInt(seq.Add(1)%16, 10)
		for pb.Next() {
			if _, err := r.Allow(ctx, key, lim); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
