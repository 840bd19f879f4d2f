package keys

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/gatehouse/gatehouse/internal/storage"
)

// Key states reported by Keys.
const (
	StatePending = "pending"
	StateActive  = "active"
	StateRetired = "retired" // no longer signing, still published
	StateExpired = "expired" // no longer published
	StateRevoked = "revoked"
)

// ErrConcurrentRotation is returned by Rotate when another replica stored a
// key with the same generation first; the caller may retry.
var ErrConcurrentRotation = errors.New("keys: another replica rotated at the same time")

// KeyInfo describes a key for administrators; it holds no key material.
type KeyInfo struct {
	ID         string
	Algorithm  string
	Generation int64
	State      string
	CreatedAt  time.Time
	ActivateAt time.Time
	RetiredAt  time.Time
	ExpiresAt  time.Time
	RevokedAt  time.Time
}

// Rotate creates a key that is published now and signs after PublishAhead.
// The returned record carries no sealed private key.
func (m *Manager) Rotate(ctx context.Context) (storage.SigningKey, error) {
	return m.rotate(ctx, m.cfg.PublishAhead)
}

// RotateNow creates a key that signs immediately. Verifiers holding a cached
// JWKS will not know it until they refetch, so use it only in emergencies.
func (m *Manager) RotateNow(ctx context.Context) (storage.SigningKey, error) {
	return m.rotate(ctx, 0)
}

func (m *Manager) rotate(ctx context.Context, ahead time.Duration) (storage.SigningKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	recs, err := m.reload(ctx)
	if err != nil {
		return storage.SigningKey{}, err
	}
	now := m.now()
	rec, err := m.create(ctx, recs, now, now.Add(ahead))
	if err != nil {
		return storage.SigningKey{}, err
	}
	if rec.ID == "" {
		return storage.SigningKey{}, ErrConcurrentRotation
	}
	if _, err := m.reload(ctx); err != nil {
		return storage.SigningKey{}, err
	}
	rec.Sealed = nil
	return rec, nil
}

// Revoke removes a key from the JWKS and from signing at once. If it was the
// signer, a replacement is created and activated immediately. Other replicas
// drop it at their next refresh (within RefreshInterval).
func (m *Manager) Revoke(ctx context.Context, kid string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	err := m.store.UpdateSigningKey(ctx, kid, func(k storage.SigningKey) (storage.SigningKey, error) {
		if k.RevokedAt.IsZero() {
			k.RevokedAt = now
		}
		return k, nil
	})
	if err != nil {
		return fmt.Errorf("keys: revoke: %w", err)
	}
	m.log.Warn("signing key revoked", "kid", kid)
	recs, err := m.reload(ctx)
	if err != nil {
		return err
	}
	cur := m.snap.Load().signing(now)
	if cur != nil && cur.rec.RetiredAt.IsZero() {
		return nil
	}
	if _, err := m.create(ctx, recs, now, now); err != nil {
		return fmt.Errorf("keys: replace revoked key: %w", err)
	}
	_, err = m.reload(ctx)
	return err
}

// Keys lists every stored key with its state at the current instant.
func (m *Manager) Keys(ctx context.Context) ([]KeyInfo, error) {
	recs, err := m.store.ListSigningKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("keys: list signing keys: %w", err)
	}
	sort.Slice(recs, func(i, j int) bool { return recs[i].Generation < recs[j].Generation })
	now := m.now()
	out := make([]KeyInfo, 0, len(recs))
	for _, r := range recs {
		out = append(out, KeyInfo{
			ID: r.ID, Algorithm: r.Algorithm, Generation: r.Generation,
			State:     stateOf(r, recs, now),
			CreatedAt: r.CreatedAt, ActivateAt: r.ActivateAt, RetiredAt: r.RetiredAt,
			ExpiresAt: r.ExpiresAt, RevokedAt: r.RevokedAt,
		})
	}
	return out, nil
}

func stateOf(r storage.SigningKey, recs []storage.SigningKey, now time.Time) string {
	switch {
	case !r.RevokedAt.IsZero():
		return StateRevoked
	case !r.ExpiresAt.IsZero() && !now.Before(r.ExpiresAt):
		return StateExpired
	case r.ActivateAt.After(now):
		return StatePending
	}
	if !r.RetiredAt.IsZero() && !now.Before(r.RetiredAt) {
		return StateRetired
	}
	if _, superseded := supersededAt(r, recs, now); superseded {
		return StateRetired
	}
	return StateActive
}
