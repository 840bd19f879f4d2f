package auth

import (
	"sync"
	"time"
)

// tokenCache maps a whole token to its verified claims. It is bounded: when
// full, expired entries are dropped first and then arbitrary ones (Go's
// randomised map order makes this random eviction, which needs no per-hit
// bookkeeping). An entry is never served at or after the token's exp, nor
// after its issuer withdrew a signing key (key-set generation changed).
type tokenCache struct {
	mu      sync.RWMutex
	max     int
	entries map[string]cacheEntry
}

type cacheEntry struct {
	claims *Claims
	exp    int64   // unix seconds; served only while now < exp
	keys   *keySet // nil for symmetric issuers
	gen    uint64  // keys.generation() when verified
}

func newTokenCache(max int) *tokenCache {
	return &tokenCache{max: max, entries: make(map[string]cacheEntry, min(max, 1024))}
}

// get returns the cached claims for token, or nil. It does not allocate.
func (c *tokenCache) get(token string, now time.Time) *Claims {
	c.mu.RLock()
	e, ok := c.entries[token]
	c.mu.RUnlock()
	if !ok || now.Unix() >= e.exp {
		return nil
	}
	if e.keys != nil && e.keys.generation() != e.gen {
		return nil
	}
	return e.claims
}

// put stores claims for token until exp.
func (c *tokenCache) put(token string, claims *Claims, keys *keySet, gen uint64, now time.Time) {
	exp := claims.Expiry.Unix()
	if now.Unix() >= exp {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[token]; !ok && len(c.entries) >= c.max {
		c.evictLocked(now.Unix())
	}
	c.entries[token] = cacheEntry{claims: claims, exp: exp, keys: keys, gen: gen}
}

// evictLocked frees about a sixteenth of the capacity (at least one slot):
// expired entries first, then arbitrary ones.
func (c *tokenCache) evictLocked(now int64) {
	target := max(1, c.max/16)
	freed := 0
	for k, e := range c.entries {
		if now >= e.exp {
			delete(c.entries, k)
			freed++
		}
	}
	for k := range c.entries {
		if freed >= target {
			return
		}
		delete(c.entries, k)
		freed++
	}
}

// len reports the number of entries (tests).
func (c *tokenCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.entries)
}
