package ratelimit

import (
	"context"
	"hash/maphash"
	"sync"
	"time"
)

// DefaultMaxKeys is the key bound NewLocal uses when maxKeys <= 0.
const DefaultMaxKeys = 100_000

const (
	// maxLocalShards is the number of independently locked shards.
	maxLocalShards = 64
	// evictSample is how many least recently used entries are compared
	// when a shard is full; the one with the fullest bucket is evicted.
	evictSample = 8
)

// Local is an in-memory GCRA limiter for one process. It is safe for
// concurrent use. Keys are stored as 128-bit keyed hashes (never the key
// text), so memory per key is fixed whatever the key's length, and the number
// of keys is bounded by maxKeys.
type Local struct {
	now    func() time.Time
	base   time.Time // timestamps are ns since base (monotonic with time.Now)
	seed1  maphash.Seed
	seed2  maphash.Seed
	shards []localShard
}

type hkey struct{ a, b uint64 }

type localEntry struct {
	k          hkey
	tat        int64 // theoretical arrival time, ns since Local.base
	prev, next *localEntry
}

type localShard struct {
	mu  sync.Mutex
	cap int
	m   map[hkey]*localEntry
	// lru is a sentinel of a circular list: lru.next is the most recently
	// used entry, lru.prev the least recently used.
	lru localEntry
	_   [64]byte // keep shards on separate cache lines
}

// minShardKeys is the smallest shard capacity NewLocal chooses.
const minShardKeys = 256

// NewLocal returns a Local that tracks at most maxKeys keys (DefaultMaxKeys
// if maxKeys <= 0). now is the clock; nil means time.Now.
//
// When a shard is full, a new key evicts, among the least recently used
// entries, the one whose bucket is fullest (an expired entry, whose bucket is
// full and therefore equivalent to no entry, if there is one). Spraying
// distinct keys thus costs no memory beyond the bound, and it evicts the
// sprayed keys (which hold one event each) before a key that is being
// limited.
func NewLocal(maxKeys int, now func() time.Time) *Local {
	if maxKeys <= 0 {
		maxKeys = DefaultMaxKeys
	}
	if now == nil {
		now = time.Now
	}
	// Each shard holds at least minShardKeys keys (when maxKeys allows):
	// with tiny shards, two busy keys hashed to one shard would evict each
	// other and come back with full buckets.
	n := 1
	for n*2 <= min(maxLocalShards, maxKeys/minShardKeys) {
		n *= 2
	}
	l := &Local{
		now:    now,
		base:   now(),
		seed1:  maphash.MakeSeed(),
		seed2:  maphash.MakeSeed(),
		shards: make([]localShard, n),
	}
	for i := range l.shards {
		s := &l.shards[i]
		// Floor division: the shards together never exceed maxKeys.
		s.cap = maxKeys / n
		s.m = make(map[hkey]*localEntry)
		s.lru.next, s.lru.prev = &s.lru, &s.lru
	}
	return l
}

// Allow consumes one event for key under l. ctx is not used: Local never
// blocks beyond a shard mutex.
func (l *Local) Allow(_ context.Context, key string, lim Limit) (Result, error) {
	if err := lim.Validate(); err != nil {
		return Result{}, err
	}
	now := int64(l.now().Sub(l.base))
	t := lim.interval()
	bt := t * int64(lim.burst())
	k := l.hash(key)
	s := &l.shards[k.a&uint64(len(l.shards)-1)]

	s.mu.Lock()
	e, ok := s.m[k]
	if ok {
		s.unlink(e)
	} else {
		e = s.insert(k, now)
	}
	s.pushFront(e)
	newTAT, allowed, d, retry := gcra(e.tat, now, t, bt)
	e.tat = newTAT
	s.mu.Unlock()
	return result(lim, allowed, d, retry), nil
}

func (l *Local) hash(key string) hkey {
	return hkey{maphash.String(l.seed1, key), maphash.String(l.seed2, key)}
}

// insert adds an entry for k with a full bucket, evicting one if the shard is
// full. The returned entry is not linked into the LRU list. s.mu is held.
func (s *localShard) insert(k hkey, now int64) *localEntry {
	var e *localEntry
	if len(s.m) >= s.cap {
		e = s.lru.prev
		for c, i := e.prev, 1; c != &s.lru && i < evictSample; c, i = c.prev, i+1 {
			if c.tat < e.tat {
				e = c
			}
		}
		s.unlink(e)
		delete(s.m, e.k)
	} else {
		e = new(localEntry)
	}
	*e = localEntry{k: k, tat: now}
	s.m[k] = e
	return e
}

func (s *localShard) unlink(e *localEntry) {
	e.prev.next = e.next
	e.next.prev = e.prev
	e.prev, e.next = nil, nil
}

func (s *localShard) pushFront(e *localEntry) {
	e.prev = &s.lru
	e.next = s.lru.next
	s.lru.next.prev = e
	s.lru.next = e
}

// Len returns the number of keys tracked, including expired ones.
func (l *Local) Len() int {
	n := 0
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		n += len(s.m)
		s.mu.Unlock()
	}
	return n
}

// Cap returns the maximum number of keys Local tracks (maxKeys rounded
// down to a multiple of the shard count).
func (l *Local) Cap() int {
	return len(l.shards) * l.shards[0].cap
}
