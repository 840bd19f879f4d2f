package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net/url"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// pki is an in-memory CA for the handshake and throughput modes, with the
// shape of internal/ca's chains: an ECDSA P-256 root, an intermediate with
// path length 0, and leaves that carry the intermediate.
type pki struct {
	td       spiffeid.TrustDomain
	root     *x509.Certificate
	inter    *x509.Certificate
	interKey *ecdsa.PrivateKey
}

const pkiTTL = 24 * time.Hour

func newPKI(td spiffeid.TrustDomain) (*pki, error) {
	rootKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("root key: %w", err)
	}
	now := time.Now()
	rootTmpl := &x509.Certificate{
		Subject:               pkix.Name{Organization: []string{"mtlsbench"}, CommonName: "mtlsbench root"},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(pkiTTL),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	root, err := sign(rootTmpl, rootTmpl, &rootKey.PublicKey, rootKey)
	if err != nil {
		return nil, err
	}
	interKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("intermediate key: %w", err)
	}
	interTmpl := &x509.Certificate{
		Subject:               pkix.Name{Organization: []string{"mtlsbench"}, CommonName: "mtlsbench intermediate"},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(pkiTTL),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	inter, err := sign(interTmpl, root, &interKey.PublicKey, rootKey)
	if err != nil {
		return nil, err
	}
	return &pki{td: td, root: root, inter: inter, interKey: interKey}, nil
}

func sign(tmpl, parent *x509.Certificate, pub *ecdsa.PublicKey, key *ecdsa.PrivateKey) (*x509.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	tmpl.SerialNumber = serial
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, key)
	if err != nil {
		return nil, fmt.Errorf("sign %s: %w", tmpl.Subject.CommonName, err)
	}
	return x509.ParseCertificate(der)
}

// leaf issues a leaf for a fresh P-256 key with the given SANs.
func (p *pki) leaf(uri *url.URL, dnsName string) ([]*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("leaf key: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{Organization: []string{"mtlsbench workload"}},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(pkiTTL - time.Hour),
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	if uri != nil {
		tmpl.URIs = []*url.URL{uri}
	}
	if dnsName != "" {
		tmpl.DNSNames = []string{dnsName}
	}
	cert, err := sign(tmpl, p.inter, &key.PublicKey, p.interKey)
	if err != nil {
		return nil, nil, err
	}
	return []*x509.Certificate{cert, p.inter}, key, nil
}

// svid issues an X.509-SVID for id.
func (p *pki) svid(id spiffeid.ID) (*x509svid.SVID, error) {
	chain, key, err := p.leaf(id.URL(), "")
	if err != nil {
		return nil, err
	}
	return &x509svid.SVID{ID: id, Certificates: chain, PrivateKey: key}, nil
}

// serverCert issues a plain TLS server certificate for dnsName.
func (p *pki) serverCert(dnsName string) (tls.Certificate, error) {
	chain, key, err := p.leaf(nil, dnsName)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{chain[0].Raw, chain[1].Raw}, PrivateKey: key, Leaf: chain[0]}, nil
}

func (p *pki) bundle() *x509bundle.Bundle {
	return x509bundle.FromX509Authorities(p.td, []*x509.Certificate{p.root})
}

func (p *pki) roots() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(p.root)
	return pool
}

// staticSource serves one SVID and one bundle (workload.Source).
type staticSource struct {
	svid   *x509svid.SVID
	bundle *x509bundle.Bundle
}

func (s *staticSource) GetX509SVID() (*x509svid.SVID, error) { return s.svid, nil }

func (s *staticSource) GetX509BundleForTrustDomain(td spiffeid.TrustDomain) (*x509bundle.Bundle, error) {
	return s.bundle.GetX509BundleForTrustDomain(td)
}
