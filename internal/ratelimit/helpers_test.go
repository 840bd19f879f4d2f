package ratelimit

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse/gatehouse/internal/testutil/redistest"
)

// clock is a fake clock safe for concurrent use.
type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ns.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	return c
}
func (c *clock) now() time.Time          { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) advance(d time.Duration) { c.ns.Add(int64(d)) }

// missing fails the test under CI and skips it otherwise.
func missing(tb testing.TB, format string, args ...any) {
	tb.Helper()
	redistest.Missing(tb, format, args...)
}

// testRedisAddr is the shared test Redis (GATEHOUSE_TEST_REDIS_ADDR overrides).
func testRedisAddr() string { return redistest.SharedAddr() }

// testRedisDB is the database used on the shared test Redis.
const testRedisDB = 15

// newTestClient returns a client of the shared test Redis, or fails/skips.
func newTestClient(tb testing.TB) *redis.Client {
	tb.Helper()
	// A plain dial first: go-redis retries a refused dial for seconds.
	conn, err := net.DialTimeout("tcp", testRedisAddr(), time.Second)
	if err != nil {
		missing(tb, "redis at %s: %v", testRedisAddr(), err)
	}
	conn.Close()
	c := redis.NewClient(&redis.Options{Addr: testRedisAddr(), DB: testRedisDB})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		c.Close()
		missing(tb, "redis at %s: %v", testRedisAddr(), err)
	}
	tb.Cleanup(func() { c.Close() })
	return c
}

// testPrefix returns a unique key prefix and deletes its keys after the test.
func testPrefix(tb testing.TB, c redis.UniversalClient) string {
	tb.Helper()
	return redistest.Prefix(tb, c, "gh-rltest")
}
