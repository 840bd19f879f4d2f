package workload_test

import (
	"crypto/tls"
	"crypto/x509"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/gatehouse/gatehouse/sdk/workload"
)

// TestResumptionRefusedNearClientExpiry: a client whose SVID is about to
// expire does a full handshake (presenting its renewed SVID) instead of
// resuming a session whose client certificate would expire moments later.
func TestResumptionRefusedNearClientExpiry(t *testing.T) {
	for _, version := range []uint16{tls.VersionTLS13, tls.VersionTLS12} {
		t.Run(tls.VersionName(version), func(t *testing.T) {
			t.Parallel()
			e := newMTEnv(t)
			srv := pkiServe(t, mustServerConfig(t, e.source(e.inter.issue(t, nil, serverIDs)), workload.AuthorizeID(clientID)))
			notAfter := time.Now().Add(4 * time.Second) // margin: two fifths of its life, 1.6 s
			old := e.inter.issue(t, func(c *x509.Certificate) { c.NotAfter = notAfter }, clientIDs)
			csrc := e.source(old)
			ccfg := mustClientConfig(t, csrc, workload.AuthorizeID(serverID))
			ccfg.MaxVersion = version
			ccfg.ClientSessionCache = tls.NewLRUClientSessionCache(8)
			connect := func(wantResume bool) pkiResult {
				t.Helper()
				cliErr, cs, res := srv.dial(t, ccfg)
				if cliErr != nil || res.err != nil {
					t.Fatalf("connection refused: client %v, server %v", cliErr, res.err)
				}
				if cs.DidResume != wantResume || res.state.DidResume != wantResume {
					t.Fatalf("DidResume client %v server %v, want %v", cs.DidResume, res.state.DidResume, wantResume)
				}
				return res
			}
			connect(false)
			connect(true) // far from expiry: resumed
			// The client renews at half-life; its session still holds the old one.
			renewed := e.inter.issue(t, nil, clientIDs)
			csrc.svid.Store(renewed)
			time.Sleep(time.Until(notAfter.Add(-500 * time.Millisecond)))
			res := connect(false)
			if !res.state.PeerCertificates[0].Equal(renewed.Certificates[0]) {
				t.Fatal("the full handshake did not present the renewed client SVID")
			}
			connect(true) // the new session resumes again
		})
	}
}

// TestResumptionRefusedAfterServerRenewal: once the server has renewed its
// SVID, a session made with the previous one is not resumed (the client
// would verify the older server certificate): a full handshake presents
// the new one.
func TestResumptionRefusedAfterServerRenewal(t *testing.T) {
	for _, version := range []uint16{tls.VersionTLS13, tls.VersionTLS12} {
		t.Run(tls.VersionName(version), func(t *testing.T) {
			e := newMTEnv(t)
			ssrc := e.source(e.inter.issue(t, nil, serverIDs))
			srv := pkiServe(t, mustServerConfig(t, ssrc, workload.AuthorizeID(clientID)))
			ccfg := mustClientConfig(t, e.source(e.inter.issue(t, nil, clientIDs)), workload.AuthorizeID(serverID))
			ccfg.MaxVersion = version
			ccfg.ClientSessionCache = tls.NewLRUClientSessionCache(8)
			connect := func(wantResume bool) tls.ConnectionState {
				t.Helper()
				cliErr, cs, res := srv.dial(t, ccfg)
				if cliErr != nil || res.err != nil {
					t.Fatalf("connection refused: client %v, server %v", cliErr, res.err)
				}
				if cs.DidResume != wantResume || res.state.DidResume != wantResume {
					t.Fatalf("DidResume client %v server %v, want %v", cs.DidResume, res.state.DidResume, wantResume)
				}
				return cs
			}
			connect(false)
			connect(true)
			// 6 s of life: tickets of the first 2 s (a third) after the
			// server takes it up are not resumable (switchGrace).
			renewed := e.inter.issue(t, func(c *x509.Certificate) { c.NotAfter = time.Now().Add(6 * time.Second) }, serverIDs)
			ssrc.svid.Store(renewed)
			if cs := connect(false); !cs.PeerCertificates[0].Equal(renewed.Certificates[0]) {
				t.Fatal("the client did not see the renewed server SVID")
			}
			connect(false) // its ticket was made within the grace
			time.Sleep(2100 * time.Millisecond)
			connect(false) // the last ticket of the grace
			connect(true)
		})
	}
}

// renewingSource hands out its SVID once more after being armed, then the
// renewed one: a renewal landing between the GetCertificate of a handshake
// and the WrapSession of its ticket, forced rather than hoped for.
type renewingSource struct {
	*pkiSource
	next  *x509svid.SVID
	armed atomic.Bool
}

func (s *renewingSource) GetX509SVID() (*x509svid.SVID, error) {
	sv, err := s.pkiSource.GetX509SVID()
	if s.armed.CompareAndSwap(true, false) {
		s.svid.Store(s.next)
	}
	return sv, err
}

// TestResumptionTicketMintedAcrossServerRenewal: a handshake that presented
// the previous server SVID, whose ticket is made just after the renewal,
// must not be resumed as if it had presented the new one: the client would
// verify the previous chain (in the rotation test, an intermediate that had
// just expired).
func TestResumptionTicketMintedAcrossServerRenewal(t *testing.T) {
	for _, version := range []uint16{tls.VersionTLS13, tls.VersionTLS12} {
		t.Run(tls.VersionName(version), func(t *testing.T) {
			e := newMTEnv(t)
			old := e.inter.issue(t, nil, serverIDs)
			renewed := e.inter.issue(t, nil, serverIDs)
			ssrc := &renewingSource{pkiSource: e.source(old), next: renewed}
			srv := pkiServe(t, mustServerConfig(t, ssrc, workload.AuthorizeID(clientID)))
			ccfg := mustClientConfig(t, e.source(e.inter.issue(t, nil, clientIDs)), workload.AuthorizeID(serverID))
			ccfg.MaxVersion = version
			ccfg.ClientSessionCache = tls.NewLRUClientSessionCache(8)
			ssrc.armed.Store(true)
			cliErr, cs, res := srv.dial(t, ccfg)
			if cliErr != nil || res.err != nil {
				t.Fatalf("connection refused: client %v, server %v", cliErr, res.err)
			}
			if !cs.PeerCertificates[0].Equal(old.Certificates[0]) {
				t.Fatal("the first handshake did not present the SVID held when it began")
			}
			cliErr, cs, res = srv.dial(t, ccfg)
			if cliErr != nil || res.err != nil {
				t.Fatalf("connection refused: client %v, server %v", cliErr, res.err)
			}
			if cs.DidResume || !cs.PeerCertificates[0].Equal(renewed.Certificates[0]) {
				t.Fatalf("resumed %v with the %s server SVID; want a full handshake presenting the renewed one",
					cs.DidResume, map[bool]string{true: "previous", false: "renewed"}[cs.PeerCertificates[0].Equal(old.Certificates[0])])
			}
		})
	}
}

// TestResumptionRefusedNearServerExpiry: a server whose own SVID is about to
// expire (its renewal is late) does a full handshake instead of resuming, so
// the client never checks a session certificate that expires between
// crypto/tls's resumption check and VerifyConnection.
func TestResumptionRefusedNearServerExpiry(t *testing.T) {
	e := newMTEnv(t)
	short := e.inter.issue(t, func(c *x509.Certificate) { c.NotAfter = time.Now().Add(6 * time.Second) }, serverIDs)
	srv := pkiServe(t, mustServerConfig(t, e.source(short), workload.AuthorizeID(clientID)))
	ccfg := mustClientConfig(t, e.source(e.inter.issue(t, nil, clientIDs)), workload.AuthorizeID(serverID))
	ccfg.ClientSessionCache = tls.NewLRUClientSessionCache(8)
	connect := func(wantResume bool) {
		t.Helper()
		cliErr, cs, res := srv.dial(t, ccfg)
		if cliErr != nil || res.err != nil {
			t.Fatalf("connection refused: client %v, server %v", cliErr, res.err)
		}
		if cs.DidResume != wantResume {
			t.Fatalf("DidResume %v, want %v", cs.DidResume, wantResume)
		}
	}
	connect(false)
	connect(true)
	// Within the margin (min(5 s, ⅖ of ~6 s) ≈ 2.4 s) of the server's expiry.
	time.Sleep(time.Until(short.Certificates[0].NotAfter.Add(-time.Second)))
	connect(false)
}
