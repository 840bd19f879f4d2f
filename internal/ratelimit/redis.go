package ratelimit

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"

	"github.com/redis/go-redis/v9"
)

// gcraScript is GCRA on the Redis server, in one round trip, on the server's
// clock (TIME), so replicas with skewed clocks agree.
//
// KEYS[1]: bucket key. ARGV[1]: emission interval t in ns. ARGV[2]: burst×t
// in ns. Both are integers below 2^53, so Lua's doubles hold them exactly.
//
// The key holds the theoretical arrival time in Unix ns as a decimal string.
// Unix ns do not fit a double exactly, so the script splits it into µs (which
// do, until the year 2255) and a 0–999 ns remainder and does all arithmetic
// on those two integers. Times are never rounded, so the script takes the
// same decisions as gcra in Go; only "now" has µs resolution.
//
// Returns {allowed (0/1), d, retry}: d is how far (ns) the bucket is from
// full after the decision, retry the ns until one event would be allowed
// (0 when allowed). Only an allowed event writes, with a PX of d rounded up
// to ms: once it expires the bucket is full, which an absent key means too.
const gcraScript = `
if redis.replicate_commands then pcall(redis.replicate_commands) end
local t = tonumber(ARGV[1])
local bt = tonumber(ARGV[2])
local tm = redis.call('TIME')
local now = tonumber(tm[1]) * 1000000 + tonumber(tm[2])
local us, rem = now, 0
local v = redis.call('GET', KEYS[1])
if v and string.len(v) > 3 and string.len(v) < 22 then
  local vus = tonumber(string.sub(v, 1, -4))
  local vrem = tonumber(string.sub(v, -3))
  if vus and vrem and (vus > now or (vus == now and vrem > 0)) then
    us, rem = vus, vrem
  end
end
local d = (us - now) * 1000 + rem
local over = d + t - bt
if over > 0 then
  return {0, d, over}
end
local s = rem + t
us = us + math.floor(s / 1000)
rem = s % 1000
d = d + t
redis.call('SET', KEYS[1], string.format('%d%03d', us, rem), 'PX', math.ceil(d / 1000000))
return {1, d, 0}
`

var script = redis.NewScript(gcraScript)

// hashLen is the number of hash bytes in a Redis key (hex-encoded: 32 chars).
const hashLen = 16

// Redis is a GCRA limiter shared by every process using the same Redis and
// prefix. Each check is one round trip (EVALSHA, falling back to EVAL when
// the server does not have the script cached). It is safe for concurrent use.
type Redis struct {
	c       redis.UniversalClient
	prefix  string
	hashKey []byte
}

// NewRedis returns a Redis limiter storing buckets under prefix followed by
// the hex of the first 128 bits of SHA-256(key): keys may contain user data
// (addresses, user ids, API-key ids), which never reaches Redis as such.
// The hash is unkeyed, so low-entropy keys such as IP addresses can be
// recovered by whoever can read Redis by brute force; use NewRedisKeyed to
// prevent that.
func NewRedis(c redis.UniversalClient, prefix string) *Redis {
	return &Redis{c: c, prefix: prefix}
}

// NewRedisKeyed is NewRedis with HMAC-SHA256 under hashKey instead of
// SHA-256. Every replica sharing the limits must use the same hashKey.
func NewRedisKeyed(c redis.UniversalClient, prefix string, hashKey []byte) *Redis {
	return &Redis{c: c, prefix: prefix, hashKey: append([]byte(nil), hashKey...)}
}

// Key returns the Redis key that holds key's bucket.
func (r *Redis) Key(key string) string {
	var h hash.Hash
	if len(r.hashKey) > 0 {
		h = hmac.New(sha256.New, r.hashKey)
	} else {
		h = sha256.New()
	}
	h.Write([]byte(key))
	var sum [sha256.Size]byte
	return r.prefix + hex.EncodeToString(h.Sum(sum[:0])[:hashLen])
}

// errBadReply reports a script reply of an unexpected shape.
var errBadReply = errors.New("ratelimit: unexpected reply from Redis script")

// Allow consumes one event for key under l on the Redis server. Errors from
// Redis (including ctx's deadline) are returned wrapped; the caller decides
// how to fail (see Shared).
func (r *Redis) Allow(ctx context.Context, key string, l Limit) (Result, error) {
	if err := l.Validate(); err != nil {
		return Result{}, err
	}
	t := l.interval()
	bt := t * int64(l.burst())
	v, err := script.Run(ctx, r.c, []string{r.Key(key)}, t, bt).Int64Slice()
	if err != nil {
		return Result{}, fmt.Errorf("ratelimit: redis: %w", err)
	}
	if len(v) != 3 || v[0] < 0 || v[0] > 1 || v[1] < 0 || v[2] < 0 || (v[0] == 0 && v[2] == 0) {
		return Result{}, fmt.Errorf("%w: %v", errBadReply, v)
	}
	return result(l, v[0] == 1, v[1], v[2]), nil
}
