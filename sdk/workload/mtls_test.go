package workload_test

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/gatehouse/gatehouse/sdk/workload"
)

const (
	tdName    = "example.org"
	serverIDs = "spiffe://example.org/server"
	clientIDs = "spiffe://example.org/client"
)

var (
	serverID = spiffeid.RequireFromString(serverIDs)
	clientID = spiffeid.RequireFromString(clientIDs)
)

// mtEnv is a trust domain with a good CA (root + intermediate), an attacker
// CA with an identical subject and key id, and a federated trust domain
// whose root is in the bundle set.
type mtEnv struct {
	root, inter, evil, other *pkiCA
}

func newMTEnv(t testing.TB) *mtEnv {
	subject := pkix.Name{Organization: []string{"Gatehouse"}, CommonName: "Gatehouse root CA 1 0011aabb", SerialNumber: "42"}
	skid := []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20}
	root := pkiNewCA(t, tdName, subject, skid)
	return &mtEnv{
		root:  root,
		inter: root.intermediate(t),
		evil:  pkiNewCA(t, tdName, subject, skid),
		other: pkiNewCA(t, "other.org", pkix.Name{CommonName: "other root"}, nil),
	}
}

// sources returns sources that trust the good root and the other trust
// domain's root (for other.org only).
func (e *mtEnv) source(sv *x509svid.SVID) *pkiSource {
	return pkiNewSource(sv, e.root, e.other)
}

func mustServerConfig(t testing.TB, src workload.Source, a workload.Authorizer) *tls.Config {
	t.Helper()
	c, err := workload.ServerTLSConfig(src, a)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func mustClientConfig(t testing.TB, src workload.Source, a workload.Authorizer) *tls.Config {
	t.Helper()
	c, err := workload.ClientTLSConfig(src, a)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestMT01RejectBadPeerCertificates(t *testing.T) {
	e := newMTEnv(t)
	past := func(c *x509.Certificate) {
		c.NotBefore, c.NotAfter = time.Now().Add(-3*time.Hour), time.Now().Add(-time.Hour)
	}
	future := func(c *x509.Certificate) {
		c.NotBefore, c.NotAfter = time.Now().Add(time.Hour), time.Now().Add(3*time.Hour)
	}
	markCA := func(c *x509.Certificate) { c.IsCA, c.BasicConstraintsValid = true, true }
	onlyServerAuth := func(c *x509.Certificate) { c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth} }
	onlyClientAuth := func(c *x509.Certificate) { c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth} }
	noEKU := func(c *x509.Certificate) { c.ExtKeyUsage = nil }
	noDigitalSignature := func(c *x509.Certificate) { c.KeyUsage = x509.KeyUsageKeyEncipherment }

	type side int
	const (
		both side = iota
		clientOnly
		serverOnly
	)
	tests := []struct {
		name string
		// bad makes the attacker's SVID for the given (expected) SPIFFE ID.
		bad   func(t *testing.T, id string) *x509svid.SVID
		side  side
		wants string
	}{
		{"wrong CA with identical subject", func(t *testing.T, id string) *x509svid.SVID {
			return e.evil.issue(t, nil, id)
		}, both, "could not verify leaf certificate"},
		{"wrong CA via intermediate", func(t *testing.T, id string) *x509svid.SVID {
			return e.evil.intermediate(t).issue(t, nil, id)
		}, both, "could not verify leaf certificate"},
		{"expired", func(t *testing.T, id string) *x509svid.SVID { return e.inter.issue(t, past, id) }, both, "expired"},
		{"not yet valid", func(t *testing.T, id string) *x509svid.SVID { return e.inter.issue(t, future, id) }, both, "is before"},
		{"leaf marked CA", func(t *testing.T, id string) *x509svid.SVID { return e.inter.issue(t, markCA, id) }, both, "CA flag"},
		{"two URI SANs", func(t *testing.T, id string) *x509svid.SVID {
			return e.inter.issue(t, nil, id, "spiffe://example.org/admin")
		}, both, "more than one URI SAN"},
		{"no URI SAN", func(t *testing.T, _ string) *x509svid.SVID {
			return e.inter.issue(t, func(c *x509.Certificate) { c.DNSNames = []string{"localhost"} })
		}, both, "no URI SAN"},
		{"SPIFFE ID with no path", func(t *testing.T, _ string) *x509svid.SVID {
			return e.inter.issue(t, nil, "spiffe://example.org")
		}, both, "has no path"},
		{"not a spiffe URI", func(t *testing.T, _ string) *x509svid.SVID {
			return e.inter.issue(t, nil, "https://example.org/client")
		}, both, "could not get leaf SPIFFE ID"},
		{"our ID signed by another trust domain's CA", func(t *testing.T, id string) *x509svid.SVID {
			return e.other.issue(t, nil, id)
		}, both, "could not verify leaf certificate"},
		{"another trust domain's ID signed by its CA", func(t *testing.T, id string) *x509svid.SVID {
			return e.other.issue(t, nil, strings.Replace(id, tdName, "other.org", 1))
		}, both, "not authorized"},
		{"missing clientAuth on a client certificate", func(t *testing.T, id string) *x509svid.SVID {
			return e.inter.issue(t, onlyServerAuth, id)
		}, clientOnly, "clientAuth"},
		{"missing serverAuth on a server certificate", func(t *testing.T, id string) *x509svid.SVID {
			return e.inter.issue(t, onlyClientAuth, id)
		}, serverOnly, "serverAuth"},
		{"no extended key usage", func(t *testing.T, id string) *x509svid.SVID { return e.inter.issue(t, noEKU, id) }, both, "extended key usage"},
		{"no digitalSignature key usage", func(t *testing.T, id string) *x509svid.SVID {
			return e.inter.issue(t, noDigitalSignature, id)
		}, both, "digitalSignature"},
	}

	goodServer := e.inter.issue(t, nil, serverIDs)
	goodClient := e.inter.issue(t, nil, clientIDs)

	t.Run("baseline", func(t *testing.T) {
		srv := pkiServe(t, mustServerConfig(t, e.source(goodServer), workload.AuthorizeID(clientID)))
		cliErr, cs, res := srv.dial(t, mustClientConfig(t, e.source(goodClient), workload.AuthorizeID(serverID)))
		if cliErr != nil || res.err != nil {
			t.Fatalf("good handshake failed: client %v, server %v", cliErr, res.err)
		}
		if got, _ := x509svid.IDFromCert(cs.PeerCertificates[0]); got != serverID {
			t.Fatalf("client saw %v", got)
		}
		if got, _ := x509svid.IDFromCert(res.state.PeerCertificates[0]); got != clientID {
			t.Fatalf("server saw %v", got)
		}
	})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, version := range []uint16{tls.VersionTLS13, tls.VersionTLS12} {
				if tc.side != serverOnly {
					// The attacker is the client: the server must refuse.
					srv := pkiServe(t, mustServerConfig(t, e.source(goodServer), workload.AuthorizeID(clientID)))
					cfg := mustClientConfig(t, e.source(tc.bad(t, clientIDs)), workload.AuthorizeID(serverID))
					cfg.MaxVersion = version
					cliErr, _, res := srv.dial(t, cfg)
					if cliErr == nil || res.err == nil {
						t.Fatalf("TLS %x: handshake with a bad client certificate succeeded (client %v, server %v)", version, cliErr, res.err)
					}
					if !strings.Contains(res.err.Error(), tc.wants) {
						t.Fatalf("TLS %x: server error %q, want it to mention %q", version, res.err, tc.wants)
					}
				}
				if tc.side != clientOnly {
					// The attacker is the server: the client must refuse.
					srv := pkiServe(t, mustServerConfig(t, e.source(tc.bad(t, serverIDs)), workload.AuthorizeID(clientID)))
					cfg := mustClientConfig(t, e.source(goodClient), workload.AuthorizeID(serverID))
					cfg.MaxVersion = version
					cliErr, _, res := srv.dial(t, cfg)
					if cliErr == nil || res.err == nil {
						t.Fatalf("TLS %x: handshake with a bad server certificate succeeded (client %v, server %v)", version, cliErr, res.err)
					}
					if !strings.Contains(cliErr.Error(), tc.wants) {
						t.Fatalf("TLS %x: client error %q, want it to mention %q", version, cliErr, tc.wants)
					}
				}
			}
		})
	}
}

func TestMT01ClientWithoutCertificateIsRefused(t *testing.T) {
	e := newMTEnv(t)
	srv := pkiServe(t, mustServerConfig(t, e.source(e.inter.issue(t, nil, serverIDs)), workload.AuthorizeMemberOf(e.root.td)))
	cfg := mustClientConfig(t, e.source(e.inter.issue(t, nil, clientIDs)), workload.AuthorizeID(serverID))
	cfg.GetClientCertificate = nil // a client with no certificate
	cliErr, _, res := srv.dial(t, cfg)
	if cliErr == nil || res.err == nil {
		t.Fatalf("handshake without a client certificate succeeded: client %v, server %v", cliErr, res.err)
	}
}

func TestTLSConfigRequiresSourceAndAuthorizer(t *testing.T) {
	e := newMTEnv(t)
	src := e.source(e.inter.issue(t, nil, serverIDs))
	for name, f := range map[string]func(workload.Source, workload.Authorizer) (*tls.Config, error){
		"server": workload.ServerTLSConfig, "client": workload.ClientTLSConfig,
	} {
		if _, err := f(src, nil); err == nil {
			t.Errorf("%s: nil authorizer accepted", name)
		}
		if _, err := f(nil, workload.AuthorizeID(serverID)); err == nil {
			t.Errorf("%s: nil source accepted", name)
		}
		c, err := f(src, workload.AuthorizeID(serverID))
		if err != nil {
			t.Fatal(err)
		}
		if c.MinVersion != tls.VersionTLS12 || c.VerifyConnection == nil {
			t.Errorf("%s: MinVersion %x, VerifyConnection set %v", name, c.MinVersion, c.VerifyConnection != nil)
		}
	}
	s, _ := workload.ServerTLSConfig(src, workload.AuthorizeID(clientID))
	if s.ClientAuth != tls.RequireAnyClientCert {
		t.Errorf("server ClientAuth = %v", s.ClientAuth)
	}
}

// policyHolder is a PolicySource whose policy can be swapped.
type policyHolder struct {
	p atomic.Pointer[workload.Policy]
}

func (h *policyHolder) Policy() *workload.Policy { return h.p.Load() }

func mustPolicy(t testing.TB, rules ...workload.Rule) *workload.Policy {
	t.Helper()
	p, err := workload.NewPolicy(rules)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestMT03ResumedSessionsAreAuthorized(t *testing.T) {
	for _, version := range []uint16{tls.VersionTLS13, tls.VersionTLS12} {
		t.Run(tls.VersionName(version), func(t *testing.T) {
			e := newMTEnv(t)
			allow := mustPolicy(t, workload.Rule{Name: "client-server", Effect: "allow", From: []string{clientIDs}, To: []string{serverIDs}})
			deny := mustPolicy(t)
			var pol policyHolder
			pol.p.Store(allow)

			var serverResumed atomic.Bool
			scfg := mustServerConfig(t, e.source(e.inter.issue(t, nil, serverIDs)), workload.AuthorizePolicy(&pol, serverID))
			sv := scfg.VerifyConnection
			scfg.VerifyConnection = func(cs tls.ConnectionState) error {
				serverResumed.Store(cs.DidResume)
				return sv(cs)
			}
			srv := pkiServe(t, scfg)

			var clientDenies atomic.Bool
			var clientResumed atomic.Bool
			ccfg := mustClientConfig(t, e.source(e.inter.issue(t, nil, clientIDs)), func(id spiffeid.ID, chains [][]*x509.Certificate) error {
				if clientDenies.Load() {
					return errors.New("server no longer trusted")
				}
				return workload.AuthorizeID(serverID)(id, chains)
			})
			cv := ccfg.VerifyConnection
			ccfg.VerifyConnection = func(cs tls.ConnectionState) error {
				clientResumed.Store(cs.DidResume)
				return cv(cs)
			}
			ccfg.MaxVersion = version
			ccfg.ClientSessionCache = tls.NewLRUClientSessionCache(8)

			mustConnect := func(wantResume bool) {
				t.Helper()
				cliErr, cs, res := srv.dial(t, ccfg)
				if cliErr != nil || res.err != nil {
					t.Fatalf("connection refused: client %v, server %v", cliErr, res.err)
				}
				if cs.DidResume != wantResume || res.state.DidResume != wantResume {
					t.Fatalf("DidResume client %v server %v, want %v", cs.DidResume, res.state.DidResume, wantResume)
				}
				if cs.Version != version {
					t.Fatalf("version %x", cs.Version)
				}
			}
			mustConnect(false)
			mustConnect(true)

			// The server's policy changes: the resumed connection is refused.
			pol.p.Store(deny)
			cliErr, _, res := srv.dial(t, ccfg)
			if cliErr == nil || res.err == nil {
				t.Fatalf("resumed connection accepted after the policy changed: client %v, server %v", cliErr, res.err)
			}
			if !serverResumed.Load() {
				t.Fatal("the refused connection did not resume a session: the test proves nothing")
			}
			if !strings.Contains(res.err.Error(), "not authorized") {
				t.Fatalf("server error %v", res.err)
			}

			// Back to allowed; then the client's authorizer changes.
			pol.p.Store(allow)
			cliErr, _, res = srv.dial(t, ccfg)
			if cliErr != nil || res.err != nil {
				t.Fatalf("connection refused: client %v, server %v", cliErr, res.err)
			}
			mustConnect(true)
			clientDenies.Store(true)
			cliErr, _, _ = srv.dial(t, ccfg)
			if cliErr == nil {
				t.Fatal("client accepted a resumed session with a server its authorizer refuses")
			}
			if !clientResumed.Load() {
				t.Fatal("the refused client connection did not resume a session")
			}
			if !strings.Contains(cliErr.Error(), "no longer trusted") {
				t.Fatalf("client error %v", cliErr)
			}
		})
	}
}

func TestMT03NoPolicyRefusesConnections(t *testing.T) {
	e := newMTEnv(t)
	for name, ps := range map[string]workload.PolicySource{"nil source": nil, "no policy yet": &policyHolder{}} {
		srv := pkiServe(t, mustServerConfig(t, e.source(e.inter.issue(t, nil, serverIDs)), workload.AuthorizePolicy(ps, serverID)))
		cliErr, _, res := srv.dial(t, mustClientConfig(t, e.source(e.inter.issue(t, nil, clientIDs)), workload.AuthorizeID(serverID)))
		if cliErr == nil || res.err == nil {
			t.Errorf("%s: connection accepted", name)
		}
	}
}

func TestHotSwapPresentsNewSVID(t *testing.T) {
	e := newMTEnv(t)
	ssrc := e.source(e.inter.issue(t, nil, serverIDs))
	csrc := e.source(e.inter.issue(t, nil, clientIDs))
	srv := pkiServe(t, mustServerConfig(t, ssrc, workload.AuthorizeID(clientID)))
	ccfg := mustClientConfig(t, csrc, workload.AuthorizeID(serverID))

	check := func() {
		t.Helper()
		cliErr, cs, res := srv.dial(t, ccfg)
		if cliErr != nil || res.err != nil {
			t.Fatalf("client %v, server %v", cliErr, res.err)
		}
		if got, want := cs.PeerCertificates[0].SerialNumber, ssrc.svid.Load().Certificates[0].SerialNumber; got.Cmp(want) != 0 {
			t.Fatalf("client saw server serial %x, want %x", got, want)
		}
		if got, want := res.state.PeerCertificates[0].SerialNumber, csrc.svid.Load().Certificates[0].SerialNumber; got.Cmp(want) != 0 {
			t.Fatalf("server saw client serial %x, want %x", got, want)
		}
	}
	check()
	check() // cached conversion
	ssrc.svid.Store(e.inter.issue(t, nil, serverIDs))
	csrc.svid.Store(e.root.issue(t, nil, clientIDs)) // and a new issuer
	check()
	if ssrc.calls.Load() < 3 || csrc.calls.Load() < 3 {
		t.Fatalf("GetX509SVID not called on every handshake: %d, %d", ssrc.calls.Load(), csrc.calls.Load())
	}
	// A source that has no SVID fails the handshake rather than presenting nothing.
	ssrc.svid.Store(nil)
	if cliErr, _, res := srv.dial(t, ccfg); cliErr == nil || res.err == nil {
		t.Fatal("handshake succeeded without a server SVID")
	}
}

func TestInteropWithGoSpiffe(t *testing.T) {
	e := newMTEnv(t)
	ssvid := e.inter.issue(t, nil, serverIDs)
	csvid := e.inter.issue(t, nil, clientIDs)
	bundles := pkiNewSource(nil, e.root)

	// Our certificates verify with go-spiffe and parse as SVIDs.
	for _, sv := range []*x509svid.SVID{ssvid, csvid} {
		id, chains, err := x509svid.Verify(sv.Certificates, bundles)
		if err != nil || id != sv.ID || len(chains) == 0 {
			t.Fatalf("x509svid.Verify: %v %v", id, err)
		}
		certPEM, keyPEM, err := sv.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := x509svid.Parse(certPEM, keyPEM); err != nil {
			t.Fatalf("x509svid.Parse: %v", err)
		}
	}

	// go-spiffe server, our client.
	gsrv := pkiServe(t, tlsconfig.MTLSServerConfig(ssvid, bundles, tlsconfig.AuthorizeID(clientID)))
	if cliErr, _, res := gsrv.dial(t, mustClientConfig(t, e.source(csvid), workload.AuthorizeID(serverID))); cliErr != nil || res.err != nil {
		t.Fatalf("go-spiffe server: client %v, server %v", cliErr, res.err)
	}
	// Our server, go-spiffe client.
	osrv := pkiServe(t, mustServerConfig(t, e.source(ssvid), workload.AuthorizeID(clientID)))
	if cliErr, _, res := osrv.dial(t, tlsconfig.MTLSClientConfig(csvid, bundles, tlsconfig.AuthorizeID(serverID))); cliErr != nil || res.err != nil {
		t.Fatalf("go-spiffe client: client %v, server %v", cliErr, res.err)
	}
}
