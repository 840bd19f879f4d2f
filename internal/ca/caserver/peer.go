package caserver

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// maxPeerChain caps the certificates a client may present (leaf and
// intermediates) before any verification work.
const maxPeerChain = 4

// verifyPeer verifies the client certificate of the connection as an SVID of
// the CA's trust domain against the current bundle, and returns its ID and
// leaf. An SVID that chains to the bundle but has expired is 401
// svid_expired; every other failure is 401 invalid_svid.
func (s *Server) verifyPeer(r *http.Request) (spiffeid.ID, *x509.Certificate, error) {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return spiffeid.ID{}, nil, &apiError{Status: http.StatusUnauthorized, Code: "invalid_svid",
			Public: "a client SVID (mTLS) is required"}
	}
	bundle, seq := s.deps.CA.Bundle()
	if bundle == nil {
		return spiffeid.ID{}, nil, unavailable(errors.New("no trust bundle"))
	}
	return verifySVID(r.TLS.PeerCertificates, bundle, seq, s.td, s.now(), s.verified)
}

// verifySVID is verifyPeer without the HTTP parts. seq is the bundle's
// sequence number; cache (nil: none) spares the signature checks of a
// chain that already verified against this bundle, all other checks run
// every time.
func verifySVID(certs []*x509.Certificate, bundle *x509bundle.Bundle, seq uint64, td spiffeid.TrustDomain, now time.Time, cache *verifyCache) (spiffeid.ID, *x509.Certificate, error) {
	invalid := func(public string, cause error) error {
		return &apiError{Status: http.StatusUnauthorized, Code: "invalid_svid",
			Public: "the client certificate is not a valid SVID of trust domain " + td.String() + ": " + public, Cause: cause}
	}
	if len(certs) > maxPeerChain {
		return spiffeid.ID{}, nil, invalid("too many certificates", nil)
	}
	leaf := certs[0]
	id, err := x509svid.IDFromCert(leaf)
	if err != nil {
		return spiffeid.ID{}, nil, invalid("no single SPIFFE ID URI SAN", err)
	}
	if !id.MemberOf(td) {
		return spiffeid.ID{}, nil, invalid("another trust domain", fmt.Errorf("peer %s", id))
	}
	if id.Path() == "" {
		return spiffeid.ID{}, nil, invalid("the SPIFFE ID has no path", nil)
	}
	if len(leaf.DNSNames)+len(leaf.IPAddresses)+len(leaf.EmailAddresses) > 0 {
		return spiffeid.ID{}, nil, invalid("an SVID has no DNS, IP or email SAN", nil)
	}
	if !slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageClientAuth) {
		return spiffeid.ID{}, nil, invalid("the certificate lacks the clientAuth extended key usage", nil)
	}
	if now.Before(leaf.NotBefore) {
		return spiffeid.ID{}, nil, invalid("not yet valid", fmt.Errorf("NotBefore %s", leaf.NotBefore.UTC().Format(time.RFC3339)))
	}
	if now.After(leaf.NotAfter) {
		// Expired: say so only when the chain is otherwise ours, checked at
		// the last second of the leaf's life; a forged or foreign expired
		// certificate stays invalid_svid.
		at := leaf.NotAfter.Add(-time.Second)
		if at.Before(leaf.NotBefore) {
			at = leaf.NotBefore
		}
		if _, _, err := x509svid.Verify(certs, bundle, x509svid.WithTime(at)); err != nil {
			return spiffeid.ID{}, nil, invalid("it does not verify against the trust bundle", err)
		}
		exp := leaf.NotAfter.UTC().Format(time.RFC3339)
		return spiffeid.ID{}, nil, &apiError{Status: http.StatusUnauthorized, Code: "svid_expired",
			Public: "the SVID expired at " + exp + "; renewal needs a valid SVID: bootstrap again with a join token or client credentials"}
	}
	if cache == nil {
		if _, _, err := x509svid.Verify(certs, bundle, x509svid.WithTime(now)); err != nil {
			return spiffeid.ID{}, nil, invalid("it does not verify against the trust bundle", err)
		}
		return id, leaf, nil
	}
	key := chainKey(certs)
	if cached, ok := cache.lookup(key, bundle, seq, now); ok && cached == id {
		return id, leaf, nil
	}
	vid, chains, err := x509svid.Verify(certs, bundle, x509svid.WithTime(now))
	if err != nil {
		return spiffeid.ID{}, nil, invalid("it does not verify against the trust bundle", err)
	}
	if vid == id && len(chains) > 0 {
		cache.store(key, bundle, seq, id, chains[0])
	}
	return id, leaf, nil
}

// handleBundle answers the SPIFFE bundle.
func (s *Server) handleBundle(w http.ResponseWriter, r *http.Request) error {
	b, err := s.deps.CA.BundleJSON()
	if err != nil {
		return unavailable(fmt.Errorf("bundle: %w", err))
	}
	writeDocument(w, r, "no-cache", b)
	return nil
}

// handlePolicy answers the policy rules that concern the caller (those
// whose "to" can match its SPIFFE ID).
func (s *Server) handlePolicy(w http.ResponseWriter, r *http.Request) error {
	id, _, err := s.verifyPeer(r)
	if err != nil {
		return err
	}
	p := s.empty
	if s.deps.Policy != nil {
		if cur := s.deps.Policy(); cur != nil {
			p = cur
		}
	}
	b, err := s.policies.get(p, id)
	if err != nil {
		return asAPIError(fmt.Errorf("marshal policy: %w", err))
	}
	writeDocument(w, r, "no-store", b)
	return nil
}

// writeDocument answers 200 with the JSON document b (no body for HEAD).
func writeDocument(w http.ResponseWriter, r *http.Request, cacheControl string, b []byte) {
	w.Header().Set("Cache-Control", cacheControl)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(b)
	}
}
