// Package keys manages Gatehouse's token-signing keys: generation, sealed
// storage, scheduled and manual rotation, emergency revocation, and the
// published JWKS.
//
// A key goes through four states, all derived from its stored times:
// pending (published in the JWKS from CreatedAt, not yet signing), active
// (signing from ActivateAt), retired (superseded at RetiredAt, still
// published until ExpiresAt so tokens it signed keep verifying) and
// revoked (removed at once). A new key is published PublishAhead before it
// signs, which exceeds JWKSMaxAge plus RefreshInterval, so every verifier
// holding a cached JWKS already knows a key before the first token signed
// by it exists (RL-03).
//
// Every replica reloads keys from storage every RefreshInterval and picks its
// signer by the clock alone (the newest unrevoked key whose ActivateAt has
// passed), so replicas switch keys at the same instant without talking to
// each other. Rotation inserts generation max+1; the storage uniqueness of
// generations makes concurrent replicas rotate exactly once.
//
// Private keys are stored only as AES-256-GCM ciphertexts under a 32-byte
// key-encryption key (KEK), with the kid as additional data.
package keys

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse/internal/periodic"
	"github.com/gatehouse/gatehouse/internal/storage"
)

// Defaults for Config fields left zero.
const (
	DefaultRotationPeriod  = 30 * 24 * time.Hour
	DefaultPublishAhead    = time.Hour
	DefaultRetainAfter     = 24 * time.Hour
	DefaultRefreshInterval = 30 * time.Second
	DefaultJWKSMaxAge      = 15 * time.Minute
)

// Errors returned by the Manager.
var (
	// ErrNoSigningKey: no usable signing key is loaded (not started, storage
	// unreachable at start, or every key revoked and no replacement stored).
	ErrNoSigningKey = errors.New("keys: no signing key available")
	// ErrConfig: the configuration is invalid.
	ErrConfig = errors.New("keys: invalid configuration")
)

// Config configures a Manager. Zero durations take the defaults above.
type Config struct {
	Algorithm string // RS256 (default), ES256 or EdDSA
	// KEK is the 32-byte key-encryption key sealing private keys.
	KEK []byte
	// RotationPeriod: a key signs for this long. Zero means the default
	// (30 days); a negative value disables scheduled rotation.
	RotationPeriod time.Duration
	// PublishAhead: a new key is in the JWKS this long before it signs. Must
	// exceed JWKSMaxAge + RefreshInterval.
	PublishAhead time.Duration
	// RetainAfter: a retired key stays published this long after it stops
	// signing. Must be at least the longest lifetime of a token it signed.
	RetainAfter time.Duration
	// RefreshInterval: how often every replica reloads keys from storage.
	RefreshInterval time.Duration
	// JWKSMaxAge: the Cache-Control max-age of the JWKS.
	JWKSMaxAge time.Duration
}

func (c Config) withDefaults() Config {
	if c.Algorithm == "" {
		c.Algorithm = RS256
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.RotationPeriod, DefaultRotationPeriod)
	def(&c.PublishAhead, DefaultPublishAhead)
	def(&c.RetainAfter, DefaultRetainAfter)
	def(&c.RefreshInterval, DefaultRefreshInterval)
	def(&c.JWKSMaxAge, DefaultJWKSMaxAge)
	return c
}

func (c Config) validate() error {
	var errs []error
	switch c.Algorithm {
	case RS256, ES256, EdDSA:
	default:
		errs = append(errs, fmt.Errorf("algorithm %q is not RS256, ES256 or EdDSA", c.Algorithm))
	}
	if len(c.KEK) != 32 {
		errs = append(errs, fmt.Errorf("KEK must be 32 bytes, got %d", len(c.KEK)))
	}
	if c.PublishAhead < 0 || c.RetainAfter < 0 || c.RefreshInterval < 0 || c.JWKSMaxAge < 0 {
		errs = append(errs, errors.New("durations must not be negative (except RotationPeriod)"))
	}
	if c.PublishAhead <= c.JWKSMaxAge+c.RefreshInterval {
		errs = append(errs, fmt.Errorf("PublishAhead %v must exceed JWKSMaxAge + RefreshInterval (%v)",
			c.PublishAhead, c.JWKSMaxAge+c.RefreshInterval))
	}
	if c.RotationPeriod > 0 && c.RotationPeriod <= c.PublishAhead {
		errs = append(errs, fmt.Errorf("RotationPeriod %v must exceed PublishAhead %v", c.RotationPeriod, c.PublishAhead))
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrConfig, errors.Join(errs...))
	}
	return nil
}

// Manager owns the signing keys of one replica. It is safe for concurrent use.
type Manager struct {
	store storage.KeyStore
	cfg   Config
	now   func() time.Time
	log   *slog.Logger
	aead  cipher.AEAD

	snap atomic.Pointer[snapshot]
	mu   sync.Mutex // serialises tick, Rotate and Revoke

	stopOnce sync.Once
	cancel   context.CancelFunc
	done     chan struct{}
}

// snapshot is an immutable view of the loaded keys.
type snapshot struct {
	keys []*loadedKey // unrevoked keys, by Generation descending
}

// New validates cfg and returns a Manager; call Start before use.
func New(store storage.KeyStore, cfg Config, now func() time.Time, log *slog.Logger) (*Manager, error) {
	if store == nil || now == nil || log == nil {
		return nil, fmt.Errorf("%w: store, clock and logger are required", ErrConfig)
	}
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(cfg.KEK)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	cfg.KEK = nil // the AEAD holds the key schedule; drop our reference.
	return &Manager{store: store, cfg: cfg, now: now, log: log, aead: aead}, nil
}

// Start loads the keys, creating the first key if storage has none, and
// starts the background refresh and rotation loop, which runs until Stop or
// until ctx ends. It fails closed: an error means no key could be loaded.
func (m *Manager) Start(ctx context.Context) error {
	if m.cancel != nil {
		return errors.New("keys: Start called twice")
	}
	if err := m.tick(ctx); err != nil {
		return fmt.Errorf("keys: initial load: %w", err)
	}
	if !m.Ready() {
		return ErrNoSigningKey
	}
	loopCtx, cancel := context.WithCancel(ctx)
	m.cancel = cancel
	m.done = make(chan struct{})
	go m.loop(loopCtx)
	return nil
}

// Stop ends the background loop and waits for it. It is idempotent.
func (m *Manager) Stop() {
	m.stopOnce.Do(func() {
		if m.cancel != nil {
			m.cancel()
			<-m.done
		}
	})
}

func (m *Manager) loop(ctx context.Context) {
	defer close(m.done)
	periodic.Run(ctx, m.cfg.RefreshInterval, m.log, "signing keys refresh failed; keeping the keys loaded before", m.tick)
}

// tick is one step of the loop: reload, persist retirements, and create a
// key when none can sign or scheduled rotation is due.
func (m *Manager) tick(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	recs, err := m.reload(ctx)
	if err != nil {
		return err
	}
	now := m.now()
	if m.persistRetirements(ctx, recs, now) {
		if recs, err = m.reload(ctx); err != nil {
			return err
		}
	}

	cur := m.snap.Load().signing(now)
	var activate time.Time
	switch {
	case cur == nil || !cur.rec.RetiredAt.IsZero():
		// No key, or only a superseded one (its successor was revoked).
		activate = now
	case m.rotationDue(cur, recs, now):
		activate = now.Add(m.cfg.PublishAhead)
	default:
		return nil
	}
	if _, err := m.create(ctx, recs, now, activate); err != nil {
		return err
	}
	_, err = m.reload(ctx)
	return err
}

// rotationDue: cur has signed for RotationPeriod-PublishAhead and no newer
// unrevoked key exists yet.
func (m *Manager) rotationDue(cur *loadedKey, recs []storage.SigningKey, now time.Time) bool {
	if m.cfg.RotationPeriod <= 0 || now.Before(cur.rec.ActivateAt.Add(m.cfg.RotationPeriod-m.cfg.PublishAhead)) {
		return false
	}
	for _, r := range recs {
		if r.Generation > cur.rec.Generation && r.RevokedAt.IsZero() {
			return false
		}
	}
	return true
}

// create stores a new key with generation max+1. A generation taken by
// another replica is not an error: the caller reloads and sees its key.
func (m *Manager) create(ctx context.Context, recs []storage.SigningKey, now, activate time.Time) (storage.SigningKey, error) {
	var gen int64
	for _, r := range recs {
		gen = max(gen, r.Generation)
	}
	rec, err := generate(m.aead, m.cfg.Algorithm, gen+1, now, activate)
	if err != nil {
		return storage.SigningKey{}, err
	}
	if err := m.store.CreateSigningKey(ctx, rec); err != nil {
		if errors.Is(err, storage.ErrAlreadyExists) {
			m.log.Info("another replica created the signing key first", "generation", gen+1)
			return storage.SigningKey{}, nil
		}
		return storage.SigningKey{}, fmt.Errorf("keys: store new key: %w", err)
	}
	m.log.Info("signing key created", "kid", rec.ID, "alg", rec.Algorithm,
		"generation", rec.Generation, "activate_at", rec.ActivateAt)
	return rec, nil
}

// persistRetirements marks every key superseded by a newer activated key as
// retired at the successor's ActivateAt. The values depend only on stored
// data, so replicas doing it concurrently write the same thing.
func (m *Manager) persistRetirements(ctx context.Context, recs []storage.SigningKey, now time.Time) (changed bool) {
	for _, r := range recs {
		if !r.RetiredAt.IsZero() || !r.RevokedAt.IsZero() {
			continue
		}
		at, ok := supersededAt(r, recs, now)
		if !ok {
			continue
		}
		err := m.store.UpdateSigningKey(ctx, r.ID, func(k storage.SigningKey) (storage.SigningKey, error) {
			if k.RetiredAt.IsZero() {
				k.RetiredAt = at
				k.ExpiresAt = at.Add(m.cfg.RetainAfter)
			}
			return k, nil
		})
		if err != nil {
			m.log.Warn("cannot mark signing key retired", "kid", r.ID, "err", err)
			continue
		}
		m.log.Info("signing key retired", "kid", r.ID, "retired_at", at)
		changed = true
	}
	return changed
}

// supersededAt returns the ActivateAt of the first unrevoked newer key that
// is already active.
func supersededAt(r storage.SigningKey, recs []storage.SigningKey, now time.Time) (time.Time, bool) {
	for _, n := range recs { // ordered by Generation
		if n.Generation > r.Generation && n.RevokedAt.IsZero() && !n.ActivateAt.After(now) {
			return n.ActivateAt, true
		}
	}
	return time.Time{}, false
}

// reload lists the keys and installs a new snapshot, reusing keys already
// unsealed. On error the previous snapshot stays in place.
func (m *Manager) reload(ctx context.Context) ([]storage.SigningKey, error) {
	recs, err := m.store.ListSigningKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("keys: list signing keys: %w", err)
	}
	sort.Slice(recs, func(i, j int) bool { return recs[i].Generation < recs[j].Generation })
	now := m.now()
	prev := map[string]*loadedKey{}
	if s := m.snap.Load(); s != nil {
		for _, k := range s.keys {
			prev[k.rec.ID] = k
		}
	}
	next := &snapshot{}
	for i := len(recs) - 1; i >= 0; i-- {
		r := recs[i]
		if !r.RevokedAt.IsZero() || (!r.ExpiresAt.IsZero() && !now.Before(r.ExpiresAt)) {
			continue
		}
		var k *loadedKey
		if p, ok := prev[r.ID]; ok && sameMaterial(p.rec, r) {
			cp := *p
			cp.rec = r
			k = &cp
		} else if k, err = load(m.aead, r); err != nil {
			return nil, fmt.Errorf("keys: load: %w", err)
		}
		next.keys = append(next.keys, k)
	}
	m.snap.Store(next)
	return recs, nil
}

// signing returns the key that signs at now: the newest unrevoked,
// unexpired key whose ActivateAt has passed.
func (s *snapshot) signing(now time.Time) *loadedKey {
	if s == nil {
		return nil
	}
	for _, k := range s.keys {
		if !k.rec.ActivateAt.After(now) {
			if !k.rec.ExpiresAt.IsZero() && !now.Before(k.rec.ExpiresAt) {
				return nil
			}
			return k
		}
	}
	return nil
}

// published reports whether k is in the JWKS at now.
func published(k *loadedKey, now time.Time) bool {
	return k.rec.RevokedAt.IsZero() && (k.rec.ExpiresAt.IsZero() || now.Before(k.rec.ExpiresAt))
}
