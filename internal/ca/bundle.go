package ca

import (
	"crypto/x509"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"

	"github.com/gatehouse/gatehouse/internal/storage"
)

// Bundle returns the trust bundle (the roots not yet expired: active,
// prepared and retired) and its sequence number. Before Start it is empty.
func (c *CA) Bundle() (*x509bundle.Bundle, uint64) {
	s := c.state.Load()
	if s == nil {
		return x509bundle.New(c.cfg.TrustDomain), 0
	}
	return s.bundle.Clone(), s.seq
}

// BundleJSON returns the bundle in the SPIFFE bundle format: a JWK set with
// one "x509-svid" key per root, spiffe_sequence and spiffe_refresh_hint.
func (c *CA) BundleJSON() ([]byte, error) {
	s := c.state.Load()
	if s == nil || s.bundleJSON == nil {
		return nil, ErrNotReady
	}
	return append([]byte(nil), s.bundleJSON...), nil
}

// buildBundle sets the bundle roots, the bundle, its JSON form and its
// sequence number.
//
// The sequence number must increase whenever the set of roots changes and
// be the same on every replica without coordination. Root generations are
// 1, 2, 3… (each created as max+1 through a storage compare-and-swap) and
// a root only ever leaves the bundle (expiry, then deletion); so with G the
// highest root generation in storage and n the number of roots in the
// bundle, G counts the roots ever added and G−n the roots removed, and
//
//	sequence = G + (G − n) = 2G − n
//
// grows by one for every root added and every root removed: old (G=1, n=1)
// is 1, old+new (G=2, n=2) is 2, new (G=2, n=1) is 3. The highest
// generation is never deleted (only retired roots are pruned, and a retired
// root always has a newer one). With an upstream root the bundle is that
// root alone and the sequence its NotBefore in Unix seconds (at least 1),
// so replacing the upstream root by a newer one increases it.
func (s *snapshot) buildBundle(c *CA, now time.Time) {
	if c.up != nil {
		if now.Before(c.up.cert.NotAfter) {
			s.bundleAuths = []*authority{c.up}
		}
		s.seq = uint64(max(1, c.up.cert.NotBefore.Unix()))
	} else {
		for _, r := range s.roots {
			if now.Before(r.cert.NotAfter) {
				s.bundleAuths = append(s.bundleAuths, r)
			}
		}
		if g := s.maxGen[storage.AuthorityRoot]; g > 0 {
			s.seq = uint64(2*g - int64(len(s.bundleAuths)))
		}
	}
	certs := make([]*x509.Certificate, len(s.bundleAuths))
	for i, r := range s.bundleAuths {
		certs[i] = r.cert
	}
	sb := spiffebundle.FromX509Authorities(c.cfg.TrustDomain, certs)
	sb.SetSequenceNumber(s.seq)
	sb.SetRefreshHint(c.cfg.RefreshInterval)
	s.bundle = sb.X509Bundle()
	if len(certs) > 0 {
		// Marshal of certificates and EC/RSA/Ed25519 keys does not fail.
		s.bundleJSON, _ = sb.Marshal()
	}
}
