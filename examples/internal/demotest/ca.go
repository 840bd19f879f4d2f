package demotest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net/url"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/gatehouse/gatehouse/sdk/workload"
)

// CA is a tiny certificate authority for the services' mTLS tests: one
// self-signed ECDSA root of a trust domain that signs X.509 SVIDs directly,
// built with crypto/x509 only (the examples may not import Gatehouse's own
// CA).
type CA struct {
	td     spiffeid.TrustDomain
	cert   *x509.Certificate
	key    crypto.Signer
	bundle *x509bundle.Bundle
}

// NewCA returns a CA for the trust domain td (e.g. "gatehouse.test").
func NewCA(t testing.TB, td string) *CA {
	t.Helper()
	domain, err := spiffeid.TrustDomainFromString(td)
	if err != nil {
		t.Fatalf("trust domain: %v", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{SerialNumber: serial(t), Subject: pkix.Name{Organization: []string{"demotest"}, CommonName: "demotest root " + td},
		NotBefore: now.Add(-time.Minute), NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, URIs: []*url.URL{domain.ID().URL()}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &CA{td: domain, cert: cert, key: key, bundle: x509bundle.FromX509Authorities(domain, []*x509.Certificate{cert})}
}

func serial(t testing.TB) *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TrustDomain is the CA's trust domain.
func (c *CA) TrustDomain() spiffeid.TrustDomain { return c.td }

// ID is the SPIFFE ID of path (e.g. "/orders") in the CA's trust domain.
func (c *CA) ID(t testing.TB, path string) spiffeid.ID {
	t.Helper()
	id, err := spiffeid.FromPath(c.td, path)
	if err != nil {
		t.Fatalf("spiffe id %q: %v", path, err)
	}
	return id
}

// Root is the CA's root certificate.
func (c *CA) Root() *x509.Certificate { return c.cert }

// Source returns a workload source holding a fresh SVID for path, the CA's
// bundle and policy p (nil: deny all, as a CA source before its first
// policy).
func (c *CA) Source(t testing.TB, path string, p *workload.Policy) *Source {
	t.Helper()
	id := c.ID(t, path)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{SerialNumber: serial(t), Subject: pkix.Name{Organization: []string{"demotest workload"}},
		NotBefore: now.Add(-time.Minute), NotAfter: now.Add(30 * time.Minute), URIs: []*url.URL{id.URL()},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.cert, key.Public(), c.key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &Source{svid: &x509svid.SVID{ID: id, Certificates: []*x509.Certificate{leaf}, PrivateKey: key}, bundle: c.bundle, policy: p}
}

// Source is a fixed workload identity: one SVID, one bundle, one policy.
// It satisfies workload.Source and workload.PolicySource.
type Source struct {
	svid   *x509svid.SVID
	bundle *x509bundle.Bundle
	policy *workload.Policy
}

// ID is the SVID's SPIFFE ID.
func (s *Source) ID() spiffeid.ID { return s.svid.ID }

// GetX509SVID returns the SVID.
func (s *Source) GetX509SVID() (*x509svid.SVID, error) { return s.svid, nil }

// GetX509BundleForTrustDomain returns the CA's bundle for its own trust
// domain and an error for any other.
func (s *Source) GetX509BundleForTrustDomain(td spiffeid.TrustDomain) (*x509bundle.Bundle, error) {
	return s.bundle.GetX509BundleForTrustDomain(td)
}

// Policy returns the source's policy.
func (s *Source) Policy() *workload.Policy { return s.policy }

// Policy builds a workload policy from rules, failing the test when they
// are invalid.
func Policy(t testing.TB, rules ...workload.Rule) *workload.Policy {
	t.Helper()
	p, err := workload.NewPolicy(rules)
	if err != nil {
		t.Fatalf("policy: %v", err)
	}
	return p
}
