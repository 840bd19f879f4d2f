package ca

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"net/url"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// MaxCSRSize bounds the DER CSR accepted by IssueCSR.
const MaxCSRSize = 64 << 10

// Issuance methods, the label of gatehouse_ca_svids_issued_total.
const (
	MethodJoinToken         = "join_token"
	MethodClientCredentials = "client_credentials"
	MethodRenewal           = "renewal"
	MethodOther             = "other" // no method in the context
)

type methodKey struct{}

// WithMethod returns ctx carrying the issuance method (MethodJoinToken,
// MethodClientCredentials, MethodRenewal) counted by Issue and IssueCSR.
func WithMethod(ctx context.Context, method string) context.Context {
	return context.WithValue(ctx, methodKey{}, method)
}

func methodOf(ctx context.Context) string {
	switch m, _ := ctx.Value(methodKey{}).(string); m {
	case MethodJoinToken, MethodClientCredentials, MethodRenewal:
		return m
	}
	return MethodOther
}

// IssueCSR checks the CSR (DER PKCS#10): it must parse, carry an accepted
// public key and be signed by it (proof of possession). Then an SVID for id
// is issued for the CSR's public key; everything else in the CSR (subject,
// SANs, extensions) is ignored. ttl ≤ 0 means the configured SVID TTL; a
// longer one is clamped to it. Errors wrap ErrBadID, ErrBadCSR, ErrWeakKey
// or ErrNotReady.
func (c *CA) IssueCSR(ctx context.Context, id spiffeid.ID, csrDER []byte, ttl time.Duration) (*SVID, error) {
	if err := c.checkID(id); err != nil {
		c.m.failed("bad_id")
		return nil, err
	}
	pub, err := parseCSR(csrDER)
	if err != nil {
		c.m.failedErr(err)
		return nil, err
	}
	return c.issue(ctx, id, pub, ttl)
}

// IssueRequest issues an SVID for id and the public key of csr, a CSR the
// caller has already parsed and whose signature it has checked with
// csr.CheckSignature (proof of possession): IssueRequest does not check the
// signature again, so it must never receive a CSR that was not checked.
// The key is checked as by IssueCSR; everything else in the CSR is ignored.
// It spares a second signature verification to a caller that must check the
// CSR before spending a credential on it; others use IssueCSR. See IssueCSR
// for ttl and the errors.
func (c *CA) IssueRequest(ctx context.Context, id spiffeid.ID, csr *x509.CertificateRequest, ttl time.Duration) (*SVID, error) {
	if err := c.checkID(id); err != nil {
		c.m.failed("bad_id")
		return nil, err
	}
	if csr == nil {
		c.m.failed("bad_csr")
		return nil, fmt.Errorf("%w: no CSR", ErrBadCSR)
	}
	if err := checkSigningKey(csr.PublicKey); err != nil {
		c.m.failedErr(err)
		return nil, err
	}
	return c.issue(ctx, id, csr.PublicKey, ttl)
}

// parseCSR returns the public key of a CSR after checking the key and the
// CSR's signature. Errors wrap ErrBadCSR or ErrWeakKey.
func parseCSR(der []byte) (crypto.PublicKey, error) {
	if len(der) == 0 || len(der) > MaxCSRSize {
		return nil, fmt.Errorf("%w: size %d bytes", ErrBadCSR, len(der))
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadCSR, err)
	}
	if err := checkSigningKey(csr.PublicKey); err != nil {
		return nil, err
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadCSR, err)
	}
	return csr.PublicKey, nil
}

// Issue issues an SVID for id and the public key pub (ECDSA P-256/P-384,
// Ed25519 or RSA 2048–8192). See IssueCSR for ttl and the errors.
func (c *CA) Issue(ctx context.Context, id spiffeid.ID, pub crypto.PublicKey, ttl time.Duration) (*SVID, error) {
	if err := c.checkID(id); err != nil {
		c.m.failed("bad_id")
		return nil, err
	}
	if err := checkSigningKey(pub); err != nil {
		c.m.failed("weak_key")
		return nil, err
	}
	return c.issue(ctx, id, pub, ttl)
}

// checkID requires a SPIFFE ID of the CA's trust domain with a path.
func (c *CA) checkID(id spiffeid.ID) error {
	if id.IsZero() || !id.MemberOf(c.cfg.TrustDomain) || id.Path() == "" {
		return ErrBadID
	}
	return nil
}

// issue signs the SVID with the cached intermediate; storage is not used.
func (c *CA) issue(ctx context.Context, id spiffeid.ID, pub crypto.PublicKey, ttl time.Duration) (*SVID, error) {
	s := c.state.Load()
	now := c.now()
	if s == nil || s.signing == nil || !now.Before(s.signing.cert.NotAfter) {
		c.m.failed("not_ready")
		return nil, ErrNotReady
	}
	issuer := s.signing
	if ttl <= 0 || ttl > c.cfg.SVIDTTL {
		ttl = c.cfg.SVIDTTL
	}
	notAfter := now.Add(ttl)
	if notAfter.After(issuer.cert.NotAfter) {
		notAfter = issuer.cert.NotAfter
	}
	usage := x509.KeyUsageDigitalSignature
	if _, ok := pub.(*rsa.PublicKey); ok {
		usage |= x509.KeyUsageKeyEncipherment
	}
	tmpl := &x509.Certificate{
		SerialNumber:          randomSerial(),
		Subject:               pkix.Name{Organization: []string{"Gatehouse workload"}},
		NotBefore:             now.Add(-c.cfg.Backdate),
		NotAfter:              notAfter,
		KeyUsage:              usage,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		IsCA:                  false,
		URIs:                  []*url.URL{id.URL()},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, issuer.cert, pub, issuer.signer)
	if err != nil {
		c.m.failed("internal")
		return nil, fmt.Errorf("ca: sign the SVID: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		c.m.failed("internal")
		return nil, fmt.Errorf("ca: parse the SVID: %w", err)
	}
	c.m.issued(methodOf(ctx))
	return &SVID{ID: id, Certificates: []*x509.Certificate{leaf, issuer.cert}, NotAfter: leaf.NotAfter}, nil
}
