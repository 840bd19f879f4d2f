package workload

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// Source provides the workload's own X.509 SVID and the trust bundles that
// verify peers. CASource and go-spiffe's workloadapi.X509Source implement
// it.
type Source interface {
	x509svid.Source
	x509bundle.Source
}

// PolicySource provides the current "who may call whom" policy; nil means
// no policy yet, which denies everything. CASource implements it.
type PolicySource interface {
	Policy() *Policy
}

// Authorizer decides whether a verified peer may connect. It is go-spiffe's
// tlsconfig.Authorizer, so go-spiffe's authorizers work too.
type Authorizer = tlsconfig.Authorizer

// AuthorizeID allows exactly the peer id.
func AuthorizeID(id spiffeid.ID) Authorizer { return tlsconfig.AuthorizeID(id) }

// AuthorizeOneOf allows any of ids.
func AuthorizeOneOf(ids ...spiffeid.ID) Authorizer { return tlsconfig.AuthorizeOneOf(ids...) }

// AuthorizeMemberOf allows every peer of the trust domain td.
func AuthorizeMemberOf(td spiffeid.TrustDomain) Authorizer { return tlsconfig.AuthorizeMemberOf(td) }

// AuthorizePolicy allows a peer when the current policy of p says it may
// connect to self (Policy.MayConnect). A nil p, or no policy yet, denies.
// The policy is read on every handshake, so a new policy applies to the
// next connection, resumed sessions included.
func AuthorizePolicy(p PolicySource, self spiffeid.ID) Authorizer {
	return func(id spiffeid.ID, _ [][]*x509.Certificate) error {
		if p == nil {
			return errors.New("workload: no policy source: connection denied")
		}
		pol := p.Policy()
		if pol == nil {
			return errors.New("workload: no policy loaded yet: connection denied")
		}
		if !pol.MayConnect(id, self) {
			return fmt.Errorf("workload: policy %.12s does not allow %s to connect to %s", pol.Version(), id, self)
		}
		return nil
	}
}

// ServerTLSConfig returns a TLS (≥ 1.2) server configuration that presents
// the source's current SVID on every handshake and requires a client
// certificate. The client is verified in VerifyConnection against the
// source's current bundles (x509svid.Verify: exactly one URI SAN, not a CA,
// chains to a root of the ID's trust domain, within its validity), must be
// an SPIFFE ID with a path, carry the clientAuth extended key usage and the
// digitalSignature key usage, and then pass authorize. VerifyConnection runs
// on every connection, resumed sessions included.
//
// Sessions are resumed only while the server presents the same SVID as when
// the session was made, neither its own leaf nor the client's expires
// within two fifths of its life (at most 5 s), and the ticket was not made
// in the first third of a renewed SVID's life (at most 5 s; crypto/tls does
// not say which SVID a ticket's handshake presented). Otherwise a full
// handshake exchanges the current SVIDs (WrapSession/UnwrapSession; do not
// replace them).
func ServerTLSConfig(src Source, authorize Authorizer) (*tls.Config, error) {
	if err := checkArgs(src, authorize); err != nil {
		return nil, err
	}
	certs := &certCache{src: src, now: time.Now}
	cfg := &tls.Config{
		MinVersion: tls.VersionTLS12,
		ClientAuth: tls.RequireAnyClientCert,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return certs.get()
		},
		VerifyConnection: verifier(src, authorize, x509.ExtKeyUsageClientAuth),
	}
	// The closures hold this pointer: a clone (http.Server clones its
	// TLSConfig) encrypts and decrypts tickets with this one's keys.
	g := &resumeGuard{cfg: cfg, certs: certs, ages: newLeafAges(), now: time.Now}
	cfg.WrapSession = g.wrap
	cfg.UnwrapSession = g.unwrap
	return cfg, nil
}

// ClientTLSConfig returns a TLS (≥ 1.2) client configuration that presents
// the source's current SVID when the server asks for one and verifies the
// server in VerifyConnection, like ServerTLSConfig (with the serverAuth
// extended key usage). InsecureSkipVerify is set only because the Web PKI
// hostname verification does not apply to SPIFFE IDs: the verification is
// done, always, in VerifyConnection, resumed sessions included. Do not
// clear VerifyConnection.
func ClientTLSConfig(src Source, authorize Authorizer) (*tls.Config, error) {
	if err := checkArgs(src, authorize); err != nil {
		return nil, err
	}
	certs := &certCache{src: src, now: time.Now}
	return &tls.Config{
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: true, // verification happens in VerifyConnection
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return certs.get()
		},
		VerifyConnection: verifier(src, authorize, x509.ExtKeyUsageServerAuth),
	}, nil
}

func checkArgs(src Source, authorize Authorizer) error {
	if src == nil {
		return errors.New("workload: a Source is required")
	}
	if authorize == nil {
		return errors.New("workload: an Authorizer is required (use AuthorizeID, AuthorizeOneOf, AuthorizeMemberOf or AuthorizePolicy)")
	}
	return nil
}

// verifier returns the VerifyConnection callback.
func verifier(src Source, authorize Authorizer, usage x509.ExtKeyUsage) func(tls.ConnectionState) error {
	return func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return errors.New("workload: peer presented no certificate")
		}
		id, chains, err := x509svid.Verify(cs.PeerCertificates, src)
		if err != nil {
			return fmt.Errorf("workload: peer SVID rejected: %w", err)
		}
		if err := checkLeaf(id, cs.PeerCertificates[0], usage); err != nil {
			return err
		}
		if err := authorize(id, chains); err != nil {
			return fmt.Errorf("workload: peer %s not authorized: %w", id, err)
		}
		return nil
	}
}

// checkLeaf applies the X509-SVID rules x509svid.Verify leaves out.
func checkLeaf(id spiffeid.ID, leaf *x509.Certificate, usage x509.ExtKeyUsage) error {
	if id.Path() == "" {
		return fmt.Errorf("workload: peer SPIFFE ID %s has no path", id)
	}
	if leaf.KeyUsage&x509.KeyUsageDigitalSignature == 0 {
		return errors.New("workload: peer SVID lacks the digitalSignature key usage")
	}
	if !slices.Contains(leaf.ExtKeyUsage, usage) {
		name := "clientAuth"
		if usage == x509.ExtKeyUsageServerAuth {
			name = "serverAuth"
		}
		return fmt.Errorf("workload: peer SVID lacks the %s extended key usage", name)
	}
	return nil
}

// certCache converts the source's SVID to a tls.Certificate once per SVID.
type certCache struct {
	src  x509svid.Source
	now  func() time.Time
	last atomic.Pointer[cachedCert]
}

type cachedCert struct {
	svid     *x509svid.SVID
	cert     *tls.Certificate
	fp       [sha256.Size]byte // SHA-256 of the leaf
	first    time.Time         // when this SVID was first taken from the source
	replaced bool              // it replaced an earlier SVID (a renewal)
}

func (c *certCache) get() (*tls.Certificate, error) {
	l, err := c.current()
	if err != nil {
		return nil, err
	}
	return l.cert, nil
}

// current returns the source's SVID as a certificate, with its leaf's
// SHA-256 and when it was first taken from the source.
func (c *certCache) current() (*cachedCert, error) {
	svid, err := c.src.GetX509SVID()
	if err != nil {
		return nil, fmt.Errorf("workload: no SVID to present: %w", err)
	}
	if svid == nil || len(svid.Certificates) == 0 || svid.PrivateKey == nil {
		return nil, errors.New("workload: the source returned an empty SVID")
	}
	if l := c.last.Load(); l != nil && l.svid == svid {
		return l, nil
	}
	cert := &tls.Certificate{
		Certificate: make([][]byte, 0, len(svid.Certificates)),
		PrivateKey:  svid.PrivateKey,
		Leaf:        svid.Certificates[0],
	}
	for _, c := range svid.Certificates {
		cert.Certificate = append(cert.Certificate, c.Raw)
	}
	l := &cachedCert{svid: svid, cert: cert, fp: sha256.Sum256(svid.Certificates[0].Raw), first: c.now(),
		replaced: c.last.Load() != nil}
	c.last.Store(l)
	return l, nil
}
