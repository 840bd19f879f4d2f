package caserver

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/gatehouse/gatehouse/internal/ca"
	"github.com/gatehouse/gatehouse/internal/throttle"
	"github.com/gatehouse/gatehouse/sdk/workload"
)

// Guards of POST /v1/svid and GET /v1/policy: the revoked SPIFFE IDs
// (cached, refreshed at most every Config.RevocationRefresh), the per-IP
// limit on failed credentials, and the per-target policy cache.

// RevocationLister lists revoked SPIFFE IDs with their latest revocation
// time (storage.SPIFFERevocationStore).
type RevocationLister interface {
	ListSPIFFERevocations(ctx context.Context) (map[string]time.Time, error)
}

// readiness is the optional part of Issuer that reports whether the CA can
// issue (*ca.CA has it); an Issuer without it is taken as ready.
type readiness interface{ Ready() bool }

// Defaults of Config's guard settings.
const (
	DefaultRevocationRefresh = 10 * time.Second
	DefaultBackdate          = ca.DefaultBackdate
	DefaultMaxFailures       = 20
	DefaultFailureWindow     = time.Minute
)

// revocations caches the revoked IDs.
type revocations struct {
	src     RevocationLister
	refresh time.Duration
	now     func() time.Time

	mu       sync.Mutex
	set      map[string]time.Time
	loadedAt time.Time
	loaded   bool
}

// get returns the revocation set, reloading it when older than refresh. A
// failed reload keeps the last set; with none loaded yet it is an error
// (fail closed: the caller answers 503).
func (r *revocations) get(ctx context.Context) (map[string]time.Time, error) {
	if r == nil {
		return nil, nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	if r.loaded && now.Sub(r.loadedAt) < r.refresh && !now.Before(r.loadedAt) {
		return r.set, nil
	}
	set, err := r.src.ListSPIFFERevocations(ctx)
	if err != nil {
		if r.loaded {
			return r.set, nil
		}
		return nil, fmt.Errorf("load spiffe revocations: %w", err)
	}
	r.set, r.loadedAt, r.loaded = set, now, true
	return set, nil
}

// checkRevoked refuses a renewal with leaf when leaf's SPIFFE ID was revoked
// after (or up to the cache's staleness before) leaf was issued. leaf was
// issued at NotBefore + backdate; an SVID renewed by a replica whose cache
// did not yet know the revocation was issued before revokedAt + refresh, so
// it is refused as well (a bootstrap in that window renews once by
// bootstrapping again).
func (s *Server) checkRevoked(set map[string]time.Time, id spiffeid.ID, leaf *x509.Certificate) error {
	at, ok := set[id.String()]
	if !ok || leaf == nil {
		return nil
	}
	issued := leaf.NotBefore.Add(s.backdate)
	if !issued.Before(at.Add(s.revocationRefresh)) {
		return nil
	}
	return &apiError{Status: http.StatusUnauthorized, Code: "svid_revoked",
		Public: "the SPIFFE ID was revoked at " + at.UTC().Format(time.RFC3339) +
			": bootstrap again (a new join token or the client's current registration)"}
}

// preflight runs before any credential is looked up or spent: the CA must
// be ready and the revocation set available, else 503 (a join token is
// never burnt by an answer the client cannot use).
func (s *Server) preflight(ctx context.Context) (map[string]time.Time, error) {
	if r, ok := s.deps.CA.(readiness); ok && !r.Ready() {
		return nil, unavailable(errors.New("the CA is not ready"))
	}
	set, err := s.revoked.get(ctx)
	if err != nil {
		return nil, unavailable(err)
	}
	return set, nil
}

// clientIP is the TCP peer's IP (the CA API is not behind a proxy).
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// throttled answers 429 when ip has too many failed credentials.
func throttled(l *throttle.Limiter, ip string) error {
	ok, retry := l.Check(ip)
	if ok {
		return nil
	}
	secs := int((retry + time.Second - 1) / time.Second)
	if secs < 1 {
		secs = 1
	}
	return &apiError{Status: http.StatusTooManyRequests, Code: "too_many_requests",
		Public:     "too many failed credentials from this address; retry after " + strconv.Itoa(secs) + " s",
		RetryAfter: secs}
}

// credentialFailure reports whether err is a refused credential (401):
// those count against the client IP.
func credentialFailure(err error) bool {
	var e *apiError
	return errors.As(err, &e) && e.Status == http.StatusUnauthorized
}

// maxPolicyCache bounds the per-target policy answers kept.
const maxPolicyCache = 4096

// policyCache keeps the JSON answer of GET /v1/policy per (policy version,
// target): a new version empties it, and so does reaching the bound.
type policyCache struct {
	mu      sync.Mutex
	version string
	m       map[spiffeid.ID][]byte
}

func (c *policyCache) get(p *workload.Policy, id spiffeid.ID) ([]byte, error) {
	v := p.Version()
	c.mu.Lock()
	if c.version == v {
		if b, ok := c.m[id]; ok {
			c.mu.Unlock()
			return b, nil
		}
	}
	c.mu.Unlock()
	b, err := p.For(id).MarshalJSON()
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.version != v || len(c.m) >= maxPolicyCache {
		c.version, c.m = v, make(map[spiffeid.ID][]byte)
	}
	c.m[id] = b
	return b, nil
}
