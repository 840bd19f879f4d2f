package ca

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse/internal/storage"
)

// memStore is an in-memory storage.CAStore with the contract's
// compare-and-swap semantics (join tokens are not needed by the CA).
type memStore struct {
	mu    sync.Mutex
	auths map[string]storage.CAAuthority
	// failList makes ListAuthorities fail (storage down).
	failList bool
}

func newMemStore() *memStore { return &memStore{auths: map[string]storage.CAAuthority{}} }

func cloneAuth(a storage.CAAuthority) storage.CAAuthority {
	a.CertDER = slices.Clone(a.CertDER)
	a.Sealed = slices.Clone(a.Sealed)
	return a
}

func (m *memStore) CreateAuthority(_ context.Context, a storage.CAAuthority) error {
	switch {
	case a.ID == "", a.Kind != storage.AuthorityRoot && a.Kind != storage.AuthorityIntermediate,
		a.State != storage.AuthorityPrepared && a.State != storage.AuthorityActive && a.State != storage.AuthorityRetired,
		len(a.CertDER) == 0, len(a.Sealed) == 0, a.Generation < 1:
		return fmt.Errorf("mem: create authority: %w", storage.ErrInvalid)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, b := range m.auths {
		if b.ID == a.ID || (b.Kind == a.Kind && b.Generation == a.Generation) {
			return fmt.Errorf("mem: create authority: %w", storage.ErrAlreadyExists)
		}
	}
	m.auths[a.ID] = cloneAuth(a)
	return nil
}

func (m *memStore) ListAuthorities(context.Context) ([]storage.CAAuthority, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failList {
		return nil, fmt.Errorf("mem: list: %w", storage.ErrUnavailable)
	}
	out := make([]storage.CAAuthority, 0, len(m.auths))
	for _, a := range m.auths {
		out = append(out, cloneAuth(a))
	}
	slices.SortFunc(out, func(a, b storage.CAAuthority) int {
		if c := strings.Compare(a.Kind, b.Kind); c != 0 {
			return c
		}
		return int(a.Generation - b.Generation)
	})
	return out, nil
}

func (m *memStore) ActivateAuthority(_ context.Context, id string, at time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	a, ok := m.auths[id]
	if !ok {
		return fmt.Errorf("mem: activate: %w", storage.ErrNotFound)
	}
	if a.State != storage.AuthorityPrepared {
		return fmt.Errorf("mem: activate: %w", storage.ErrAlreadyUsed)
	}
	for k, b := range m.auths {
		if b.Kind == a.Kind && b.State == storage.AuthorityActive {
			b.State, b.RetiredAt = storage.AuthorityRetired, at
			m.auths[k] = b
		}
	}
	a.State, a.ActivatedAt = storage.AuthorityActive, at
	m.auths[id] = a
	return nil
}

func (m *memStore) DeleteAuthority(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	a, ok := m.auths[id]
	if !ok {
		return fmt.Errorf("mem: delete: %w", storage.ErrNotFound)
	}
	if a.State != storage.AuthorityRetired {
		return fmt.Errorf("mem: delete: %w", storage.ErrInvalid)
	}
	delete(m.auths, id)
	return nil
}

func (m *memStore) CreateJoinToken(context.Context, storage.JoinToken) error {
	return fmt.Errorf("mem: join tokens: %w", storage.ErrInvalid)
}

func (m *memStore) ConsumeJoinToken(context.Context, string, time.Time) (storage.JoinToken, error) {
	return storage.JoinToken{}, fmt.Errorf("mem: join tokens: %w", storage.ErrNotFound)
}

// list returns the authorities of kind (test helper).
func (m *memStore) list(kind string) []storage.CAAuthority {
	all, _ := m.ListAuthorities(context.Background())
	var out []storage.CAAuthority
	for _, a := range all {
		if a.Kind == kind {
			out = append(out, a)
		}
	}
	return out
}
