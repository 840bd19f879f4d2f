package rebac

import (
	"sync"
	"sync/atomic"

	"github.com/gatehouse/gatehouse/internal/storage"
)

// The check cache maps (revision, object, permission, subject) to the
// result. A result at a revision is true forever (snapshot reads), so the
// cache needs no TTL; it keeps only entries of the newest revision seen
// (older ones are dropped shard by shard as soon as a newer revision is
// used) and is bounded by evicting an arbitrary entry of a full shard.

const cacheShards = 32

type cacheKey struct {
	obj  Object
	perm string
	subj Subject
}

type cacheVal struct {
	allowed bool
	path    []string
}

type cacheShard struct {
	mu  sync.Mutex
	rev storage.Revision
	m   map[cacheKey]cacheVal
}

type cache struct {
	newest   atomic.Uint64
	perShard int
	shards   [cacheShards]cacheShard
}

func newCache(entries int) *cache {
	c := &cache{perShard: max(1, entries/cacheShards)}
	for i := range c.shards {
		c.shards[i].m = make(map[cacheKey]cacheVal)
	}
	return c
}

// fnv1a over the key's strings; no allocation.
func (k *cacheKey) hash() uint32 {
	h := uint32(2166136261)
	for _, s := range [...]string{k.obj.Type, k.obj.ID, k.perm, k.subj.Type, k.subj.ID, k.subj.Relation} {
		for i := 0; i < len(s); i++ {
			h ^= uint32(s[i])
			h *= 16777619
		}
		h ^= 0xff
		h *= 16777619
	}
	return h
}

// observe records at as seen and reports whether it is the newest.
func (c *cache) observe(at storage.Revision) bool {
	for {
		n := c.newest.Load()
		if uint64(at) < n {
			return false
		}
		if uint64(at) == n || c.newest.CompareAndSwap(n, uint64(at)) {
			return true
		}
	}
}

func (c *cache) get(at storage.Revision, k *cacheKey) (cacheVal, bool) {
	if !c.observe(at) {
		return cacheVal{}, false
	}
	sh := &c.shards[k.hash()%cacheShards]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.rev != at {
		if sh.rev < at { // at is the newest revision: drop the older entries now
			clear(sh.m)
			sh.rev = at
		}
		return cacheVal{}, false
	}
	v, ok := sh.m[*k]
	return v, ok
}

func (c *cache) put(at storage.Revision, k *cacheKey, v cacheVal) {
	if !c.observe(at) {
		return // an older revision than the newest seen: not kept
	}
	sh := &c.shards[k.hash()%cacheShards]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if at < sh.rev {
		return
	}
	if at > sh.rev {
		clear(sh.m)
		sh.rev = at
	}
	if _, ok := sh.m[*k]; !ok && len(sh.m) >= c.perShard {
		for old := range sh.m {
			delete(sh.m, old)
			break
		}
	}
	sh.m[*k] = v
}

// len returns the number of entries (for tests).
func (c *cache) len() int {
	n := 0
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		n += len(sh.m)
		sh.mu.Unlock()
	}
	return n
}
