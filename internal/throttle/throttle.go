// Package throttle counts failed credential attempts per key and blocks a key
// for the rest of its window once it has too many (checklist BF-01).
//
// A key is whatever the caller throttles on: "acct:"+username,
// "ip:"+address, "client:"+clientID. Use one Limiter per dimension, or
// prefixed keys in a shared one, and check every key that applies before
// verifying a credential.
//
// Windows are fixed and start at a key's first failure: after MaxFailures
// failures within Window the key is refused until Window has passed since
// that first failure, then it starts afresh. A block therefore never lasts
// longer than Window, and failures while blocked do not extend it, so an
// attacker who knows a victim's username can slow the victim down but never
// lock the account for good. Pair a per-account limiter with a per-address
// one so a single source cannot spray many accounts either.
//
// Memory is bounded by MaxKeys: when a shard is full, the key whose window
// started first (the one nearest to expiry, or already expired) is evicted.
// Every call is O(1) under one shard's mutex.
package throttle

import (
	"container/list"
	"hash/maphash"
	"sync"
	"time"
)

// Defaults applied by New to zero or negative Config fields.
const (
	DefaultMaxFailures = 5
	DefaultWindow      = 15 * time.Minute
	DefaultMaxKeys     = 100_000
)

// maxShards is the number of independently locked shards.
const maxShards = 32

// Config sets the limits of a Limiter.
type Config struct {
	MaxFailures int           // failures allowed within Window; default 5
	Window      time.Duration // how long failures count; default 15m
	MaxKeys     int           // keys tracked at most; default 100000
}

// Limiter counts failures per key. It is safe for concurrent use.
type Limiter struct {
	max    int
	window time.Duration
	now    func() time.Time
	seed   maphash.Seed
	shards []shard
}

type shard struct {
	mu    sync.Mutex
	cap   int
	keys  map[string]*list.Element // of *entry
	order list.List                // by window start, oldest first
}

type entry struct {
	key      string
	start    time.Time // first failure of the window
	failures int
}

// New returns a Limiter. now is the clock; nil means time.Now.
func New(cfg Config, now func() time.Time) *Limiter {
	if cfg.MaxFailures <= 0 {
		cfg.MaxFailures = DefaultMaxFailures
	}
	if cfg.Window <= 0 {
		cfg.Window = DefaultWindow
	}
	if cfg.MaxKeys <= 0 {
		cfg.MaxKeys = DefaultMaxKeys
	}
	if now == nil {
		now = time.Now
	}
	n := min(maxShards, cfg.MaxKeys)
	l := &Limiter{
		max:    cfg.MaxFailures,
		window: cfg.Window,
		now:    now,
		seed:   maphash.MakeSeed(),
		shards: make([]shard, n),
	}
	for i := range l.shards {
		// Floor division: the shards together never exceed MaxKeys.
		l.shards[i].cap = cfg.MaxKeys / n
		l.shards[i].keys = make(map[string]*list.Element)
	}
	return l
}

func (l *Limiter) shard(key string) *shard {
	return &l.shards[maphash.String(l.seed, key)%uint64(len(l.shards))]
}

// live returns key's entry if its window has not passed, dropping it if it has.
// The caller holds s.mu.
func (l *Limiter) live(s *shard, key string, now time.Time) (*list.Element, *entry) {
	el, ok := s.keys[key]
	if !ok {
		return nil, nil
	}
	e := el.Value.(*entry)
	if !now.Before(e.start.Add(l.window)) {
		s.order.Remove(el)
		delete(s.keys, key)
		return nil, nil
	}
	return el, e
}

// Check reports whether key may make another attempt and, if not, how long
// until it may. It does not count an attempt.
func (l *Limiter) Check(key string) (allowed bool, retryAfter time.Duration) {
	now := l.now()
	s := l.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	_, e := l.live(s, key, now)
	if e == nil || e.failures < l.max {
		return true, 0
	}
	return false, e.start.Add(l.window).Sub(now)
}

// Fail records a failed attempt for key.
func (l *Limiter) Fail(key string) {
	now := l.now()
	s := l.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, e := l.live(s, key, now); e != nil {
		if e.failures < l.max {
			e.failures++
		}
		return
	}
	for len(s.keys) >= s.cap {
		oldest := s.order.Front()
		s.order.Remove(oldest)
		delete(s.keys, oldest.Value.(*entry).key)
	}
	// Windows start at now, which is never before the start of any window
	// already in the list (up to clock steps), so PushBack keeps it ordered.
	s.keys[key] = s.order.PushBack(&entry{key: key, start: now, failures: 1})
}

// Reset forgets key's failures, e.g. after a successful login.
func (l *Limiter) Reset(key string) {
	s := l.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if el, ok := s.keys[key]; ok {
		s.order.Remove(el)
		delete(s.keys, key)
	}
}

// Len returns the number of keys currently tracked, expired or not.
func (l *Limiter) Len() int {
	n := 0
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		n += len(s.keys)
		s.mu.Unlock()
	}
	return n
}
