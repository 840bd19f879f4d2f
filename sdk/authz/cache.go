package authz

import (
	"sync"
	"time"
)

// decisionCache maps the SHA-256 of a request's deciding inputs to the
// decision, for ttl. It holds hashes only, never tokens. When full it drops
// expired entries, then arbitrary ones (map order), a few at a time.
type decisionCache struct {
	max int
	ttl time.Duration

	mu      sync.Mutex
	entries map[[32]byte]cached
}

type cached struct {
	d       Decision
	expires time.Time
}

func newDecisionCache(max int, ttl time.Duration) *decisionCache {
	return &decisionCache{max: max, ttl: ttl, entries: make(map[[32]byte]cached)}
}

// get returns a live entry, marked Cached. Slices are copied so a caller
// cannot change what others get.
func (c *decisionCache) get(key [32]byte, now time.Time) (Decision, bool) {
	c.mu.Lock()
	e, ok := c.entries[key]
	if ok && !now.Before(e.expires) {
		delete(c.entries, key)
		ok = false
	}
	c.mu.Unlock()
	if !ok {
		return Decision{}, false
	}
	d := copyDecision(e.d)
	d.Cached = true
	return d, true
}

// put stores a decision that came without error.
func (c *decisionCache) put(key [32]byte, d Decision, now time.Time) {
	if d.Err != nil {
		return
	}
	d = copyDecision(d)
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[key]; !ok && len(c.entries) >= c.max {
		c.evictLocked(now)
	}
	c.entries[key] = cached{d: d, expires: now.Add(c.ttl)}
}

// evictLocked frees room: the expired entries among up to 64 visited (in
// map order, which is randomized), or else one live entry.
func (c *decisionCache) evictLocked(now time.Time) {
	const scan = 64
	var victim [32]byte
	n, freed, have := 0, 0, false
	for k, e := range c.entries {
		if !now.Before(e.expires) {
			delete(c.entries, k)
			freed++
		} else if !have {
			victim, have = k, true
		}
		if n++; n >= scan {
			break
		}
	}
	if freed == 0 && have {
		delete(c.entries, victim)
	}
}

func (c *decisionCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

func copyDecision(d Decision) Decision {
	d.Policies = append([]string(nil), d.Policies...)
	d.Errors = append([]string(nil), d.Errors...)
	if d.Relations != nil {
		rs := make([]RelationCheck, len(d.Relations))
		for i, r := range d.Relations {
			r.Path = append([]string(nil), r.Path...)
			rs[i] = r
		}
		d.Relations = rs
	}
	return d
}
