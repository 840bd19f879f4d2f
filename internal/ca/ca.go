package ca

import (
	"context"
	"crypto/cipher"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/gatehouse/gatehouse/internal/periodic"
	"github.com/gatehouse/gatehouse/internal/storage"
)

// Defaults for zero Config durations.
const (
	DefaultRootTTL         = 8760 * time.Hour
	DefaultIntermediateTTL = 24 * time.Hour
	DefaultSVIDTTL         = time.Hour
	DefaultBackdate        = 30 * time.Second
	DefaultRefreshInterval = 10 * time.Second
)

// maxSteps bounds the reload → act iterations of one refresh.
const maxSteps = 16

// CA is the workload certificate authority. Issue, IssueCSR, Bundle and
// BundleJSON are safe for concurrent use and never touch storage; Start runs
// a scheduler that reloads the authorities from storage and rotates them.
type CA struct {
	st   storage.CAStore
	cfg  Config
	now  func() time.Time
	log  *slog.Logger
	aead cipher.AEAD
	up   *authority // the imported upstream root, nil when generated

	state atomic.Pointer[snapshot]

	// opMu serializes refreshes and RotateNow; cache (authorities seen, with
	// their unsealed keys) is guarded by it.
	opMu  sync.Mutex
	cache map[string]*authority

	runMu   sync.Mutex
	started bool
	cancel  context.CancelFunc
	done    chan struct{}

	m *metrics
}

// snapshot is one immutable view of the authorities, published atomically.
type snapshot struct {
	roots  []*authority // stored roots by generation (none with an upstream root)
	inters []*authority // stored intermediates by generation
	root   *authority   // the active root (the upstream root when imported)
	inter  *authority   // the active intermediate
	// signing is the intermediate that issues SVIDs: the active one when it
	// is valid and chains to a bundle root, else the previous signing one
	// while it still is valid; nil: not ready.
	signing *authority
	maxGen  map[string]int64

	bundleAuths []*authority // the roots of the bundle: unexpired, any state
	bundle      *x509bundle.Bundle
	bundleJSON  []byte
	seq         uint64
}

// New returns a CA over st. now is the clock (nil: time.Now) and log the
// logger (nil: slog.Default). Nothing is loaded before Start.
func New(st storage.CAStore, cfg Config, now func() time.Time, log *slog.Logger) (*CA, error) {
	if st == nil {
		return nil, errors.New("ca: no storage")
	}
	if cfg.TrustDomain.IsZero() {
		return nil, errors.New("ca: no trust domain")
	}
	aead, err := newAEAD(cfg.KEK)
	if err != nil {
		return nil, err
	}
	setDefault(&cfg.RootTTL, DefaultRootTTL)
	setDefault(&cfg.IntermediateTTL, DefaultIntermediateTTL)
	setDefault(&cfg.SVIDTTL, DefaultSVIDTTL)
	setDefault(&cfg.Backdate, DefaultBackdate)
	setDefault(&cfg.RefreshInterval, DefaultRefreshInterval)
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.Default()
	}
	c := &CA{st: st, cfg: cfg, now: now, log: log, aead: aead, cache: map[string]*authority{}}
	if cfg.Upstream != nil {
		if c.up, err = upstreamAuthority(cfg.Upstream); err != nil {
			return nil, err
		}
	}
	c.m = newMetrics(c)
	return c, nil
}

func setDefault(d *time.Duration, def time.Duration) {
	if *d <= 0 {
		*d = def
	}
}

// upstreamAuthority checks an imported root: a CA certificate whose key is
// accepted and matches the certificate.
func upstreamAuthority(u *Upstream) (*authority, error) {
	if u.Cert == nil || u.Key == nil {
		return nil, errors.New("ca: the upstream root needs a certificate and a private key")
	}
	if !u.Cert.IsCA || !u.Cert.BasicConstraintsValid {
		return nil, errors.New("ca: the upstream root certificate is not a CA certificate")
	}
	if u.Cert.KeyUsage != 0 && u.Cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, errors.New("ca: the upstream root certificate may not sign certificates (key usage)")
	}
	if err := checkSigningKey(u.Key.Public()); err != nil {
		return nil, fmt.Errorf("ca: upstream root key: %w", err)
	}
	if !publicKeysEqual(u.Key.Public(), u.Cert.PublicKey) {
		return nil, errors.New("ca: the upstream root key does not match its certificate")
	}
	return &authority{
		rec: storage.CAAuthority{
			ID:        upstreamID,
			Kind:      storage.AuthorityRoot,
			State:     storage.AuthorityActive,
			NotBefore: u.Cert.NotBefore,
			NotAfter:  u.Cert.NotAfter,
		},
		cert:   u.Cert,
		signer: u.Key,
	}, nil
}

// TrustDomain returns the CA's trust domain.
func (c *CA) TrustDomain() spiffeid.TrustDomain { return c.cfg.TrustDomain }

// Ready reports whether the CA can issue: an intermediate is loaded, valid
// now and chains to a root of the bundle.
func (c *CA) Ready() bool {
	s := c.state.Load()
	return s != nil && s.signing != nil && c.now().Before(s.signing.cert.NotAfter)
}

// ActiveRoot returns the root the issuing (active) intermediate chains to:
// the root whose fingerprint a workload pins to bootstrap. It is nil while
// the CA is not ready. The certificate is shared: do not modify it.
func (c *CA) ActiveRoot() *x509.Certificate {
	s := c.state.Load()
	if s == nil || s.signing == nil {
		return nil
	}
	if c.up != nil {
		return c.up.cert
	}
	for _, r := range s.bundleAuths {
		if r.rec.ID == s.signing.issuer {
			return r.cert
		}
	}
	return nil
}

// Start loads the authorities from storage, creating the root and the
// intermediate when there are none (or rotating what is due), and starts
// the scheduler. It fails when the CA cannot become ready, e.g. when the
// stored keys do not unseal under the configured KEK.
func (c *CA) Start(ctx context.Context) error {
	c.runMu.Lock()
	defer c.runMu.Unlock()
	if c.started {
		return errors.New("ca: already started")
	}
	if err := c.refresh(ctx); err != nil {
		return err
	}
	if !c.Ready() {
		return errors.New("ca: no valid intermediate after start")
	}
	loopCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	c.started, c.cancel, c.done = true, cancel, make(chan struct{})
	go c.loop(loopCtx, c.done)
	return nil
}

// Stop stops the scheduler and waits for it. The CA keeps issuing with the
// authorities loaded last.
func (c *CA) Stop() {
	c.runMu.Lock()
	defer c.runMu.Unlock()
	if c.cancel == nil {
		return
	}
	c.cancel()
	<-c.done
	c.cancel = nil
}

func (c *CA) loop(ctx context.Context, done chan struct{}) {
	defer close(done)
	periodic.Run(ctx, c.cfg.RefreshInterval, c.log, "ca: refresh failed; keeping the loaded authorities", c.refresh)
}

// refresh reloads the authorities and performs the rotation steps that are
// due, one at a time, reloading after each (a step lost to another replica
// only causes a reload).
func (c *CA) refresh(ctx context.Context) error {
	c.opMu.Lock()
	defer c.opMu.Unlock()
	for range maxSteps {
		s, err := c.load(ctx)
		if err != nil {
			return err
		}
		acted, err := c.step(ctx, s)
		if err != nil {
			if lostRace(err) {
				c.log.Debug("ca: another replica changed the authorities; reloading", "error", err)
				continue
			}
			return err
		}
		if !acted {
			c.warnExpiring(s)
			return nil
		}
	}
	return errors.New("ca: authorities did not settle")
}

// lostRace reports whether err means another replica changed the
// authorities concurrently.
func lostRace(err error) bool {
	return errors.Is(err, storage.ErrAlreadyExists) || errors.Is(err, storage.ErrAlreadyUsed) ||
		errors.Is(err, storage.ErrNotFound)
}

// load lists the authorities, builds a snapshot and publishes it.
func (c *CA) load(ctx context.Context) (*snapshot, error) {
	recs, err := c.st.ListAuthorities(ctx)
	if err != nil {
		return nil, fmt.Errorf("ca: list authorities: %w", err)
	}
	now := c.now()
	s := &snapshot{maxGen: map[string]int64{}}
	seen := make(map[string]*authority, len(recs))
	for _, rec := range recs {
		a, err := c.fromCache(rec)
		if err != nil {
			return nil, err
		}
		seen[rec.ID] = a
		s.maxGen[rec.Kind] = max(s.maxGen[rec.Kind], rec.Generation)
		switch rec.Kind {
		case storage.AuthorityRoot:
			if c.up == nil {
				s.roots = append(s.roots, a)
			}
		case storage.AuthorityIntermediate:
			s.inters = append(s.inters, a)
		}
	}
	c.cache = seen
	sortByGen(s.roots)
	sortByGen(s.inters)
	if c.up != nil {
		s.root = c.up
	} else {
		s.root = findState(s.roots, storage.AuthorityActive)
		if s.root != nil {
			if err := s.root.unsealKey(c.aead); err != nil {
				return nil, err
			}
		}
		s.roots = c.unsealedRoots(s.roots)
	}
	s.inter = findState(s.inters, storage.AuthorityActive)
	s.buildBundle(c, now)
	c.setIssuers(s)
	if s.inter != nil && s.usable(s.inter, now) {
		if err := s.inter.unsealKey(c.aead); err != nil {
			return nil, err
		}
		s.signing = s.inter
	} else if old := c.state.Load(); old != nil && old.signing != nil && s.usable(old.signing, now) {
		s.signing = old.signing
	}
	c.state.Store(s)
	return s, nil
}

// unsealedRoots keeps the roots whose key unseals under the KEK: a root
// written to storage by someone without the KEK never reaches the bundle
// (it would let him sign SVIDs for every ID of the trust domain).
func (c *CA) unsealedRoots(roots []*authority) []*authority {
	out := roots[:0:0]
	for _, r := range roots {
		if err := r.unsealKey(c.aead); err != nil {
			c.log.Warn("ca: a stored root does not unseal under the key-encryption key; it is not trusted",
				"generation", r.rec.Generation, "state", r.rec.State, "error", err)
			continue
		}
		out = append(out, r)
	}
	return out
}

// fromCache returns a fresh authority for rec, reusing the parsed
// certificate, unsealed key and issuer of an earlier load.
func (c *CA) fromCache(rec storage.CAAuthority) (*authority, error) {
	if old, ok := c.cache[rec.ID]; ok {
		return &authority{rec: rec, cert: old.cert, signer: old.signer, issuer: old.issuer, issuerChecked: old.issuerChecked}, nil
	}
	return parseAuthority(rec)
}

// setIssuers finds, once per intermediate and root, which root signed each
// intermediate.
func (c *CA) setIssuers(s *snapshot) {
	roots := s.roots
	if c.up != nil {
		roots = []*authority{c.up}
	}
	for _, in := range s.inters {
		if in.issuer != "" {
			continue
		}
		if in.issuerChecked == nil {
			in.issuerChecked = map[string]bool{}
		}
		for _, r := range roots {
			if in.issuerChecked[r.rec.ID] {
				continue
			}
			in.issuerChecked[r.rec.ID] = true
			if in.cert.CheckSignatureFrom(r.cert) == nil {
				in.issuer = r.rec.ID
				break
			}
		}
	}
}

// usable reports whether intermediate a may issue now: unexpired and signed
// by a root of the bundle.
func (s *snapshot) usable(a *authority, now time.Time) bool {
	if a.issuer == "" || !now.Before(a.cert.NotAfter) {
		return false
	}
	for _, r := range s.bundleAuths {
		if r.rec.ID == a.issuer {
			return true
		}
	}
	return false
}

func sortByGen(as []*authority) {
	slices.SortFunc(as, func(a, b *authority) int {
		return int(a.rec.Generation - b.rec.Generation)
	})
}

// findState returns the highest-generation authority of as in state.
func findState(as []*authority, state string) *authority {
	for i := len(as) - 1; i >= 0; i-- {
		if as[i].rec.State == state {
			return as[i]
		}
	}
	return nil
}

// successor returns the highest-generation prepared authority of as newer
// than active and, for intermediates, signed by issuer ("" = any).
func successor(as []*authority, active *authority, issuer string) *authority {
	for i := len(as) - 1; i >= 0; i-- {
		a := as[i]
		if a.rec.State != storage.AuthorityPrepared || (issuer != "" && a.issuer != issuer) {
			continue
		}
		if active == nil || a.rec.Generation > active.rec.Generation {
			return a
		}
	}
	return nil
}
