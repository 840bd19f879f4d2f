package keys

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/storage"
)

// memStore is an in-memory storage.KeyStore with the uniqueness rules of the
// real backends (ID and Generation).
type memStore struct {
	mu      sync.Mutex
	keys    map[string]storage.SigningKey
	failAll error // when set, every call fails with it
	creates int
}

func newMemStore() *memStore { return &memStore{keys: map[string]storage.SigningKey{}} }

func cloneKey(k storage.SigningKey) storage.SigningKey {
	k.Sealed = bytes.Clone(k.Sealed)
	k.PublicJWK = bytes.Clone(k.PublicJWK)
	return k
}

func (s *memStore) CreateSigningKey(_ context.Context, k storage.SigningKey) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failAll != nil {
		return s.failAll
	}
	if _, ok := s.keys[k.ID]; ok {
		return storage.ErrAlreadyExists
	}
	for _, o := range s.keys {
		if o.Generation == k.Generation {
			return storage.ErrAlreadyExists
		}
	}
	s.keys[k.ID] = cloneKey(k)
	s.creates++
	return nil
}

func (s *memStore) ListSigningKeys(context.Context) ([]storage.SigningKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failAll != nil {
		return nil, s.failAll
	}
	out := make([]storage.SigningKey, 0, len(s.keys))
	for _, k := range s.keys {
		out = append(out, cloneKey(k))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Generation < out[j].Generation })
	return out, nil
}

func (s *memStore) UpdateSigningKey(_ context.Context, id string, fn func(storage.SigningKey) (storage.SigningKey, error)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failAll != nil {
		return s.failAll
	}
	k, ok := s.keys[id]
	if !ok {
		return storage.ErrNotFound
	}
	n, err := fn(cloneKey(k))
	if err != nil {
		return err
	}
	n.ID = id
	s.keys[id] = cloneKey(n)
	return nil
}

func (s *memStore) setFail(err error) {
	s.mu.Lock()
	s.failAll = err
	s.mu.Unlock()
}

func (s *memStore) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.keys)
}

// fakeClock is a manually advanced clock shared by simulated replicas.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

var testKEK = bytes.Repeat([]byte{7}, 32)

func testConfig(alg string) Config {
	return Config{
		Algorithm:       alg,
		KEK:             testKEK,
		RotationPeriod:  24 * time.Hour,
		PublishAhead:    time.Hour,
		RetainAfter:     2 * time.Hour,
		RefreshInterval: 5 * time.Minute,
		JWKSMaxAge:      15 * time.Minute,
	}
}

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// started returns a started Manager that is stopped at the end of the test.
func started(t testing.TB, store storage.KeyStore, cfg Config, clk *fakeClock) *Manager {
	t.Helper()
	m, err := New(store, cfg, clk.Now, discard())
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Stop)
	return m
}

// overlapStore makes its first n ListSigningKeys calls wait for each other,
// so that n replicas read the same keys before any of them writes: the
// interleaving a concurrent rotation must survive, forced rather than hoped
// for.
type overlapStore struct {
	*memStore
	n       int
	mu      sync.Mutex
	arrived int
	all     chan struct{}
}

func newOverlapStore(s *memStore, n int) *overlapStore {
	return &overlapStore{memStore: s, n: n, all: make(chan struct{})}
}

func (s *overlapStore) ListSigningKeys(ctx context.Context) ([]storage.SigningKey, error) {
	recs, err := s.memStore.ListSigningKeys(ctx)
	s.mu.Lock()
	s.arrived++
	first := s.arrived <= s.n
	if s.arrived == s.n {
		close(s.all)
	}
	s.mu.Unlock()
	if first {
		select {
		case <-s.all:
		case <-time.After(10 * time.Second):
		}
	}
	return recs, err
}
