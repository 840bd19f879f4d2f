package workload_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"net"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// pkiCA is a test certificate authority made with crypto/x509.
type pkiCA struct {
	td    spiffeid.TrustDomain
	cert  *x509.Certificate // this CA's certificate
	key   crypto.Signer
	chain []*x509.Certificate // intermediates to send after a leaf
	root  *x509.Certificate
}

func pkiKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func pkiSerial(t testing.TB) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// pkiNewCA makes a self-signed root for td with the given subject and
// subject key id (nil: derived by crypto/x509).
func pkiNewCA(t testing.TB, td string, subject pkix.Name, skid []byte) *pkiCA {
	t.Helper()
	key := pkiKey(t)
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          pkiSerial(t),
		Subject:               subject,
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		SubjectKeyId:          skid,
		URIs:                  []*url.URL{{Scheme: "spiffe", Host: td}},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &pkiCA{td: spiffeid.RequireTrustDomainFromString(td), cert: cert, key: key, root: cert}
}

// intermediate returns a CA signed by ca (path length 0).
func (ca *pkiCA) intermediate(t testing.TB) *pkiCA {
	t.Helper()
	key := pkiKey(t)
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          pkiSerial(t),
		Subject:               pkix.Name{Organization: []string{"Test"}, CommonName: "Test intermediate " + pkiSerial(t).Text(16)},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(12 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &pkiCA{td: ca.td, cert: cert, key: key, chain: append([]*x509.Certificate{cert}, ca.chain...), root: ca.root}
}

// issue makes a leaf SVID for the URIs (usually one SPIFFE ID), with the
// attributes of a good SVID that mod may then spoil.
func (ca *pkiCA) issue(t testing.TB, mod func(*x509.Certificate), uris ...string) *x509svid.SVID {
	t.Helper()
	key := pkiKey(t)
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          pkiSerial(t),
		Subject:               pkix.Name{Organization: []string{"Test workload"}},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}
	for _, u := range uris {
		pu, err := url.Parse(u)
		if err != nil {
			t.Fatal(err)
		}
		tmpl.URIs = append(tmpl.URIs, pu)
	}
	if mod != nil {
		mod(tmpl)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	sv := &x509svid.SVID{Certificates: append([]*x509.Certificate{leaf}, ca.chain...), PrivateKey: key}
	if len(leaf.URIs) == 1 {
		if id, err := spiffeid.FromURI(leaf.URIs[0]); err == nil {
			sv.ID = id
		}
	}
	return sv
}

// pkiSource is a Source whose SVID can be swapped.
type pkiSource struct {
	svid    atomic.Pointer[x509svid.SVID]
	bundles *x509bundle.Set
	calls   atomic.Int64
}

func pkiNewSource(sv *x509svid.SVID, cas ...*pkiCA) *pkiSource {
	s := &pkiSource{bundles: x509bundle.NewSet()}
	for _, ca := range cas {
		b, ok := s.bundles.Get(ca.td)
		if !ok {
			b = x509bundle.New(ca.td)
			s.bundles.Add(b)
		}
		b.AddX509Authority(ca.root)
	}
	s.svid.Store(sv)
	return s
}

func (s *pkiSource) GetX509SVID() (*x509svid.SVID, error) {
	s.calls.Add(1)
	sv := s.svid.Load()
	if sv == nil {
		return nil, errors.New("no SVID")
	}
	return sv, nil
}

func (s *pkiSource) GetX509BundleForTrustDomain(td spiffeid.TrustDomain) (*x509bundle.Bundle, error) {
	return s.bundles.GetX509BundleForTrustDomain(td)
}

// pkiServer accepts TLS connections with one tls.Config (so session
// tickets survive between connections), writes one byte after the
// handshake and reports each connection's outcome.
type pkiServer struct {
	ln      net.Listener
	results chan pkiResult
}

type pkiResult struct {
	err   error
	state tls.ConnectionState
}

func pkiServe(t testing.TB, cfg *tls.Config) *pkiServer {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	s := &pkiServer{ln: ln, results: make(chan pkiResult, 16)}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func(c *tls.Conn) {
				defer func() { _ = c.Close() }()
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				if err := c.Handshake(); err != nil {
					s.results <- pkiResult{err: err}
					return
				}
				if _, err := c.Write([]byte("x")); err != nil {
					s.results <- pkiResult{err: err}
					return
				}
				_, err := io.Copy(io.Discard, c) // until the client closes
				s.results <- pkiResult{err: err, state: c.ConnectionState()}
			}(c.(*tls.Conn))
		}
	}()
	return s
}

// dial connects with cfg, reads the server's byte and closes. It returns
// the client's error and state and the server's outcome.
func (s *pkiServer) dial(t testing.TB, cfg *tls.Config) (cliErr error, cli tls.ConnectionState, srv pkiResult) {
	t.Helper()
	d := &net.Dialer{Timeout: 5 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", s.ln.Addr().String(), cfg)
	if err == nil {
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 1)
		_, err = io.ReadFull(c, buf)
		cli = c.ConnectionState()
		_ = c.Close()
	}
	select {
	case srv = <-s.results:
	case <-time.After(10 * time.Second):
		t.Fatal("server did not report")
	}
	return err, cli, srv
}
