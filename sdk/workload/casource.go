package workload

import (
	"context"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"golang.org/x/oauth2"
)

// CAConfig configures a CASource: where the Gatehouse CA is, how to trust it
// the first time, and how to prove the right to an SVID the first time.
type CAConfig struct {
	URL             string               // https://host:port of the CA API
	TrustDomain     spiffeid.TrustDomain // the CA's (and this workload's) trust domain
	RootFingerprint string               // hex SHA-256 of a root's DER (bootstrap trust), or
	BundleFile      string               // a SPIFFE bundle JSON / PEM file
	JoinToken       string               // single use: first SVID only, or
	TokenSource     oauth2.TokenSource   // client credentials for audience ca.client_audience
	PolicyRefresh   time.Duration        // default 10s; <0: do not fetch the policy
	Timeout         time.Duration        // per CA request, default 10s
	Logger          *slog.Logger
}

// ErrExpired is wrapped by GetX509SVID's error once the SVID's NotAfter has
// passed without a successful renewal.
var ErrExpired = errors.New("workload: SVID expired")

// ErrClosed is returned by GetX509SVID after Close.
var ErrClosed = errors.New("workload: source closed")

const (
	defaultCATimeout     = 10 * time.Second
	defaultPolicyRefresh = 10 * time.Second
	maxCABody            = 1 << 20 // bytes of any CA answer
	minBundleRefresh     = time.Second
	maxBundleRefresh     = time.Hour
	defaultBackoffMin    = time.Second
	defaultBackoffMax    = 30 * time.Second
)

// caOptions are internal knobs (tests shorten backoffs and pin the jitter).
type caOptions struct {
	now        func() time.Time
	rand       func() float64 // uniform in [0, 1)
	backoffMin time.Duration
	backoffMax time.Duration
}

// CASource obtains an X.509 SVID from the Gatehouse CA, keeps it renewed,
// follows the trust bundle and the call policy. It implements
// x509svid.Source and x509bundle.Source. Safe for concurrent use.
type CASource struct {
	cfg     CAConfig // JoinToken always empty
	log     *slog.Logger
	opt     caOptions
	base    string // URL without trailing slash
	caID    spiffeid.ID
	anon    *http.Client // verifies the CA; no client certificate
	anonTr  *http.Transport
	mtls    *http.Client // verifies the CA; presents the current SVID
	mtlsTr  *http.Transport
	updated chan struct{}

	mu         sync.RWMutex
	svid       *x509svid.SVID
	obtained   time.Time // when svid was installed: the start of its renewal schedule
	bundle     *x509bundle.Bundle
	bundleSeq  uint64
	hasSeq     bool
	bundleHint time.Duration
	lastErr    error
	closed     bool

	policy atomic.Pointer[Policy]

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
}

// NewCASource validates cfg, establishes trust in the CA (RootFingerprint or
// BundleFile), obtains the first SVID (JoinToken, else TokenSource) and
// starts renewal, bundle and policy refresh. It blocks until the first SVID
// is installed or ctx ends; definitive CA refusals (4xx) end it at once.
func NewCASource(ctx context.Context, cfg CAConfig) (*CASource, error) {
	return newCASource(ctx, cfg, caOptions{})
}

func newCASource(ctx context.Context, cfg CAConfig, opt caOptions) (*CASource, error) {
	base, pin, err := validateCAConfig(&cfg)
	if err != nil {
		return nil, err
	}
	joinToken := cfg.JoinToken
	cfg.JoinToken = ""
	if opt.now == nil {
		opt.now = time.Now
	}
	if opt.rand == nil {
		opt.rand = rand.Float64
	}
	if opt.backoffMin <= 0 {
		opt.backoffMin = defaultBackoffMin
	}
	if opt.backoffMax < opt.backoffMin {
		opt.backoffMax = max(defaultBackoffMax, opt.backoffMin)
	}
	caID, err := spiffeid.FromSegments(cfg.TrustDomain, "gatehouse", "ca")
	if err != nil {
		return nil, fmt.Errorf("workload: CA SPIFFE ID: %w", err)
	}
	s := &CASource{cfg: cfg, log: cfg.Logger, opt: opt, base: base, caID: caID,
		updated: make(chan struct{}, 1)}
	s.newVerifiedClients()

	if cfg.BundleFile != "" {
		b, err := loadBundleFile(cfg.TrustDomain, cfg.BundleFile)
		if err != nil {
			return nil, err
		}
		s.setBundleLocked(b, 0, false, 0)
	} else if err := s.bootstrapPinned(ctx, pin); err != nil {
		s.closeIdle()
		return nil, err
	}

	if err := s.firstSVID(ctx, joinToken); err != nil {
		s.closeIdle()
		return nil, err
	}
	// The join token is spent: only the local variable (gone on return)
	// ever held it; s.cfg.JoinToken is empty.

	s.ctx, s.cancel = context.WithCancel(context.Background())
	if cfg.PolicyRefresh >= 0 {
		s.fetchPolicy(ctx) // best effort: start with a policy when the CA has one
	}
	s.wg.Add(2)
	go s.svidLoop()
	go s.bundleLoop()
	if cfg.PolicyRefresh >= 0 {
		s.wg.Add(1)
		go s.policyLoop()
	}
	return s, nil
}

// validateCAConfig checks cfg, fills defaults and returns the base URL and
// the decoded fingerprint (nil with BundleFile).
func validateCAConfig(cfg *CAConfig) (string, []byte, error) {
	var problems []error
	bad := func(msg string) { problems = append(problems, errors.New("workload: CAConfig."+msg)) }
	base := ""
	u, err := url.Parse(cfg.URL)
	switch {
	case cfg.URL == "":
		bad("URL is required")
	case err != nil:
		bad("URL is not a valid URL")
	case u.Scheme != "https":
		bad("URL must use https")
	case u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "":
		bad("URL must be https://host[:port][/path] without user info, query or fragment")
	default:
		base = strings.TrimRight(u.Scheme+"://"+u.Host+u.EscapedPath(), "/")
	}
	if cfg.TrustDomain.IsZero() {
		bad("TrustDomain is required")
	}
	var pin []byte
	switch {
	case cfg.RootFingerprint != "" && cfg.BundleFile != "":
		bad("RootFingerprint and BundleFile are exclusive: set exactly one")
	case cfg.RootFingerprint == "" && cfg.BundleFile == "":
		bad("RootFingerprint or BundleFile is required (bootstrap trust in the CA)")
	case cfg.RootFingerprint != "":
		fp := strings.ReplaceAll(strings.TrimPrefix(strings.ToLower(cfg.RootFingerprint), "sha256:"), ":", "")
		b, err := hex.DecodeString(fp)
		if err != nil || len(b) != 32 {
			bad("RootFingerprint must be the hex SHA-256 of the root certificate's DER (64 hex digits)")
		}
		pin = b
	}
	if cfg.JoinToken == "" && cfg.TokenSource == nil {
		bad("JoinToken or TokenSource is required (credential for the first SVID)")
	}
	if cfg.Timeout < 0 {
		bad("Timeout must not be negative")
	}
	if len(problems) > 0 {
		return "", nil, errors.Join(problems...)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = defaultCATimeout
	}
	if cfg.PolicyRefresh == 0 {
		cfg.PolicyRefresh = defaultPolicyRefresh
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return base, pin, nil
}

// GetX509SVID returns the current SVID. Once its NotAfter has passed without
// a renewal it returns an error wrapping ErrExpired that says why and what
// happens next.
func (s *CASource) GetX509SVID() (*x509svid.SVID, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, ErrClosed
	}
	if s.svid == nil {
		return nil, errors.New("workload: no SVID yet")
	}
	if na := s.svid.Certificates[0].NotAfter; !s.opt.now().Before(na) {
		return nil, s.expiredErrorLocked(na)
	}
	return s.svid, nil
}

// GetX509BundleForTrustDomain returns the current bundle of the configured
// trust domain; other trust domains are unknown.
func (s *CASource) GetX509BundleForTrustDomain(td spiffeid.TrustDomain) (*x509bundle.Bundle, error) {
	if td != s.cfg.TrustDomain {
		return nil, fmt.Errorf("workload: no X.509 bundle for trust domain %q", td.Name())
	}
	b := s.currentBundle()
	if b == nil {
		return nil, errors.New("workload: no X.509 bundle yet")
	}
	return b, nil
}

// Policy returns the last policy fetched from the CA; nil (deny all) until
// the first fetch or when policy refresh is disabled.
func (s *CASource) Policy() *Policy { return s.policy.Load() }

// Updated returns a channel that receives a value (coalesced) whenever the
// SVID, the bundle or the policy changes.
func (s *CASource) Updated() <-chan struct{} { return s.updated }

// Close stops renewal and refresh and waits for the goroutines to end. The
// SVID is no longer served afterwards.
func (s *CASource) Close() error {
	s.once.Do(func() {
		s.cancel()
		s.wg.Wait()
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		s.closeIdle()
	})
	return nil
}

// expiredError is GetX509SVID's answer once the SVID has expired.
type expiredError struct {
	at   time.Time
	last error
	next string
}

func (e *expiredError) Error() string {
	last := "no renewal attempt succeeded"
	if e.last != nil {
		last = e.last.Error()
	}
	return fmt.Sprintf("workload: SVID expired at %s and could not be renewed: %s; %s",
		e.at.UTC().Format(time.RFC3339), last, e.next)
}

func (e *expiredError) Unwrap() []error {
	if e.last == nil {
		return []error{ErrExpired}
	}
	return []error{ErrExpired, e.last}
}

func (s *CASource) expiredErrorLocked(at time.Time) error {
	next := "a new join token is needed: create a new CASource with a fresh JoinToken"
	if s.cfg.TokenSource != nil {
		next = "bootstrapping again with the TokenSource as soon as the CA answers"
	}
	return &expiredError{at: at, last: s.lastErr, next: next}
}

func (s *CASource) currentBundle() *x509bundle.Bundle {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.bundle
}

// currentSVID returns the SVID even when expired (nil before the first).
func (s *CASource) currentSVID() *x509svid.SVID {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.svid
}

func (s *CASource) setLastErr(err error) {
	s.mu.Lock()
	s.lastErr = err
	s.mu.Unlock()
}

// setBundleLocked installs b unless it is older (sequence) than the current
// one; the caller holds mu or owns s exclusively. It reports a change.
func (s *CASource) setBundleLocked(b *x509bundle.Bundle, seq uint64, hasSeq bool, hint time.Duration) bool {
	if s.bundle != nil && hasSeq && s.hasSeq && seq < s.bundleSeq {
		return false
	}
	changed := s.bundle == nil || !s.bundle.Equal(b)
	s.bundle, s.bundleSeq, s.hasSeq = b, seq, hasSeq
	if hint > 0 {
		s.bundleHint = hint
	}
	return changed
}

func (s *CASource) closeIdle() {
	s.anonTr.CloseIdleConnections()
	s.mtlsTr.CloseIdleConnections()
}

func (s *CASource) notify() {
	select {
	case s.updated <- struct{}{}:
	default:
	}
}

// leafOf returns the SVID's leaf (nil-safe).
func leafOf(sv *x509svid.SVID) *x509.Certificate {
	if sv == nil || len(sv.Certificates) == 0 {
		return nil
	}
	return sv.Certificates[0]
}
