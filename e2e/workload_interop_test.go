package e2e

import (
	"io"
	"log"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/gatehouse/gatehouse/sdk/workload"
)

// TestWorkloadInteropGoSpiffe: go-spiffe alone accepts what the CA hands
// out. An SVID obtained with a raw POST /v1/svid verifies with
// x509svid.Verify against the bundle that spiffebundle.Parse reads from
// GET /v1/bundle; a go-spiffe tlsconfig.MTLSClientConfig client holding
// that SVID calls a ServerTLSConfig + Middleware server of ours, and one of
// our ClientTLSConfig clients calls a go-spiffe MTLSServerConfig server.
func TestWorkloadInteropGoSpiffe(t *testing.T) {
	w := newWorkloadEnv(t, "sqlite", "file:"+t.TempDir()+"/g.db", wlSetup{policy: []workload.Rule{ordersPaysRule()}})
	raw := w.caHTTP(t)

	resp, err := raw.Get(w.caURL() + "/v1/bundle")
	if err != nil {
		t.Fatal(err)
	}
	doc := readBody(t, resp)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("GET /v1/bundle: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	bundle, err := spiffebundle.Parse(wlTD, []byte(doc))
	if err != nil {
		t.Fatalf("spiffebundle.Parse of GET /v1/bundle: %v", err)
	}
	if seq, ok := bundle.SequenceNumber(); !ok || seq == 0 {
		t.Errorf("the bundle has no spiffe_sequence")
	}
	if hint, ok := bundle.RefreshHint(); !ok || hint <= 0 {
		t.Errorf("the bundle has no spiffe_refresh_hint")
	}

	key, csr := newCSR(t)
	st, ans, err := w.postSVID(raw, "JoinToken "+w.joinToken(t, ordersID), csr)
	if err != nil || st != http.StatusOK {
		t.Fatalf("POST /v1/svid: %d %s %v", st, ans.Error, err)
	}
	certs := parseSVIDChain(t, ans.X509SVID)
	id, chains, err := x509svid.Verify(certs, bundle)
	if err != nil {
		t.Fatalf("x509svid.Verify of the CA's SVID: %v", err)
	}
	if id != ordersID || ans.SPIFFEID != ordersID.String() || len(chains) == 0 {
		t.Fatalf("verified %s (answer %s), %d chains", id, ans.SPIFFEID, len(chains))
	}
	if exp, err := time.Parse(time.RFC3339, ans.ExpiresAt); err != nil || !exp.Equal(certs[0].NotAfter) {
		t.Errorf("expires_at %q is not the leaf's NotAfter %s", ans.ExpiresAt, certs[0].NotAfter)
	}
	if _, err := spiffebundle.Parse(wlTD, ans.Bundle); err != nil {
		t.Errorf("the answer's bundle does not parse with spiffebundle.Parse: %v", err)
	}
	svid := &x509svid.SVID{ID: id, Certificates: certs, PrivateKey: key}

	// go-spiffe client → our server.
	payments := w.source(t, w.caURL(), w.joinToken(t, paymentsID), nil, time.Second)
	waitPolicy(t, payments)
	base, tlsErrs := serveWorkload(t, payments, payments, paymentsID, nil)
	gs := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig: tlsconfig.MTLSClientConfig(svid, bundle, tlsconfig.AuthorizeID(paymentsID))}}
	defer gs.CloseIdleConnections()
	code, body, _, err := wlCall(gs, base+paymentsPath)
	if err != nil || code != http.StatusOK || body != "ok "+ordersID.String() {
		t.Fatalf("go-spiffe client → our server: %d %q %v\n%s", code, body, err, tlsErrs.String())
	}
	// The same client expecting another server ID is refused by go-spiffe.
	wrong := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig: tlsconfig.MTLSClientConfig(svid, bundle, tlsconfig.AuthorizeID(billingID))}}
	defer wrong.CloseIdleConnections()
	if _, _, _, err := wlCall(wrong, base+paymentsPath); err == nil {
		t.Error("go-spiffe accepted payments as billing")
	}

	// Our client → go-spiffe server (with a fresh SVID for billing).
	bkey, bcsr := newCSR(t)
	st, bans, err := w.postSVID(raw, "JoinToken "+w.joinToken(t, billingID), bcsr)
	if err != nil || st != http.StatusOK {
		t.Fatalf("POST /v1/svid for billing: %d %s %v", st, bans.Error, err)
	}
	bsvid := &x509svid.SVID{ID: billingID, Certificates: parseSVIDChain(t, bans.X509SVID), PrivateKey: bkey}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{ReadHeaderTimeout: 20 * time.Second, ErrorLog: log.New(io.Discard, "", 0), TLSConfig: tlsconfig.MTLSServerConfig(bsvid, bundle, tlsconfig.AuthorizeID(paymentsID)),
		Handler: http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
			peer, err := x509svid.IDFromCert(r.TLS.PeerCertificates[0])
			if err != nil {
				http.Error(rw, err.Error(), http.StatusInternalServerError)
				return
			}
			_, _ = io.WriteString(rw, "ok "+peer.String())
		})}
	go func() { _ = srv.ServeTLS(ln, "", "") }()
	defer srv.Close()
	for _, tc := range []struct {
		name   string
		expect spiffeid.ID
		ok     bool
	}{{"expects billing", billingID, true}, {"expects orders", ordersID, false}} {
		c := workloadHTTP(t, payments, tc.expect, freshConn)
		code, body, _, err := wlCall(c, "https://"+ln.Addr().String()+"/x")
		switch {
		case tc.ok && (err != nil || code != http.StatusOK || body != "ok "+paymentsID.String()):
			t.Errorf("our client (%s) → go-spiffe server: %d %q %v", tc.name, code, body, err)
		case !tc.ok && err == nil:
			t.Errorf("our client (%s) accepted the go-spiffe server's billing SVID", tc.name)
		}
	}
}
