package gateway

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/sdk/workload"
)

var testTD = spiffeid.RequireTrustDomainFromString("gatehouse.local")

// staticSource is a fixed SVID and bundle.
type staticSource struct {
	svid   *x509svid.SVID
	bundle *x509bundle.Bundle
}

func (s *staticSource) GetX509SVID() (*x509svid.SVID, error) { return s.svid, nil }
func (s *staticSource) GetX509BundleForTrustDomain(td spiffeid.TrustDomain) (*x509bundle.Bundle, error) {
	return s.bundle.GetX509BundleForTrustDomain(td)
}

// svidFor issues an SVID for id (serverAuth + clientAuth) from ca and
// returns a source with it and a bundle of trusted roots.
func svidFor(t *testing.T, ca *testCA, id string, trusted ...*testCA) *staticSource {
	t.Helper()
	sid := spiffeid.RequireFromString(id)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	u, _ := url.Parse(id)
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{Organization: []string{"test workload"}},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour), URIs: []*url.URL{u},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	var roots []*x509.Certificate
	for _, c := range append([]*testCA{ca}, trusted...) {
		roots = append(roots, c.cert)
	}
	return &staticSource{svid: &x509svid.SVID{ID: sid, Certificates: []*x509.Certificate{leaf}, PrivateKey: crypto.Signer(key)},
		bundle: x509bundle.FromX509Authorities(testTD, roots)}
}

// spiffeUpstream serves HTTPS with src's SVID, accepting only the client
// SPIFFE ID client, and records the client's ID.
func spiffeUpstream(t *testing.T, src *staticSource, client string) (string, func() string) {
	t.Helper()
	tc, err := workload.ServerTLSConfig(src, workload.AuthorizeID(spiffeid.RequireFromString(client)))
	if err != nil {
		t.Fatal(err)
	}
	seenID := make(chan string, 16)
	srv := &http.Server{TLSConfig: tc, ReadHeaderTimeout: 5 * time.Second, ErrorLog: slog.NewLogLogger(slog.DiscardHandler, slog.LevelError),
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 && len(r.TLS.PeerCertificates[0].URIs) == 1 {
				seenID <- r.TLS.PeerCertificates[0].URIs[0].String()
			}
			_, _ = w.Write([]byte(`{"ok":true}`))
		})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.ServeTLS(ln, "", "") }()
	t.Cleanup(func() { _ = srv.Close() })
	return "https://" + ln.Addr().String(), func() string {
		select {
		case id := <-seenID:
			return id
		default:
			return ""
		}
	}
}

func spiffeRoute(name, upstream, id string) config.GatewayRoute {
	r := anonRoute(name, "/"+name, upstream)
	r.UpstreamTLS.SPIFFEID = id
	return r
}

const (
	gatewayID = "spiffe://gatehouse.local/gatehouse/gateway"
	ordersID  = "spiffe://gatehouse.local/orders"
)

// TestGatewaySPIFFEUpstream: with its own SVID the gateway reaches an
// upstream that presents exactly the route's SPIFFE ID and accepts only the
// gateway's; before the gateway has an SVID the route answers 503 and never
// falls back to plain TLS.
func TestGatewaySPIFFEUpstream(t *testing.T) {
	ca := newTestCA(t)
	orders := svidFor(t, ca, ordersID)
	up, seen := spiffeUpstream(t, orders, gatewayID)
	is := newTestIssuer(t)
	cfg := gatewayConfig(is, spiffeRoute("orders", up, ordersID))
	tg := startGateway(t, is, cfg, nil)

	if tg.G.HasWorkload() {
		t.Fatal("workload source set without SetWorkload")
	}
	resp, body := tg.do(t, "GET", "/orders/1", "", nil)
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "temporarily_unavailable") || seen() != "" {
		t.Fatalf("without an SVID: status %d %s", resp.StatusCode, body)
	}
	if !strings.Contains(tg.Logs.String(), "no workload SVID yet") {
		t.Errorf("no clear log line: %s", tg.Logs.String())
	}
	tg.G.SetWorkload(svidFor(t, ca, gatewayID))
	resp, body = tg.do(t, "GET", "/orders/1", "", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("with an SVID: status %d %s", resp.StatusCode, body)
	}
	if got := seen(); got != gatewayID {
		t.Fatalf("upstream saw client %q, want %q", got, gatewayID)
	}
}

// TestMT01GatewayRefusesWrongUpstream: an upstream presenting another
// SPIFFE ID, the right ID from another CA, or refusing the gateway's ID is
// a 502, never a proxied request.
func TestMT01GatewayRefusesWrongUpstream(t *testing.T) {
	ca, other := newTestCA(t), newTestCA(t)
	is := newTestIssuer(t)
	tests := []struct {
		name     string
		upstream *staticSource
		accepts  string // the client ID the upstream allows
	}{
		{"another SPIFFE ID", svidFor(t, ca, "spiffe://gatehouse.local/payments"), gatewayID},
		{"right ID, wrong CA", svidFor(t, other, ordersID, ca), gatewayID},
		{"upstream refuses the gateway", svidFor(t, ca, ordersID), "spiffe://gatehouse.local/someone-else"},
		{"ID with a suffix", svidFor(t, ca, ordersID+"-admin"), gatewayID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up, seen := spiffeUpstream(t, tt.upstream, tt.accepts)
			tg := startGateway(t, is, gatewayConfig(is, spiffeRoute("orders", up, ordersID)), nil)
			tg.G.SetWorkload(svidFor(t, ca, gatewayID))
			resp, body := tg.do(t, "GET", "/orders/1", "", nil)
			if resp.StatusCode != http.StatusBadGateway || seen() != "" {
				t.Fatalf("status %d, want 502: %s", resp.StatusCode, body)
			}
		})
	}
}

// TestGatewaySPIFFEDeps: a source given in Deps is used at once; a route
// whose spiffe_id does not parse does not compile.
func TestGatewaySPIFFEDeps(t *testing.T) {
	ca := newTestCA(t)
	up, _ := spiffeUpstream(t, svidFor(t, ca, ordersID), gatewayID)
	is := newTestIssuer(t)
	cfg := gatewayConfig(is, spiffeRoute("orders", up, ordersID))
	g, err := New(cfg, Deps{Issuer: is.URL, Workload: svidFor(t, ca, gatewayID)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	srv := httptest.NewServer(g)
	t.Cleanup(srv.Close)
	resp, err := http.Get(srv.URL + "/orders/x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	for _, bad := range []string{"spiffe://gatehouse.local", "https://orders", "spiffe://UPPER/x"} {
		if err := g.Reload([]config.GatewayRoute{spiffeRoute("orders", up, bad)}); err == nil {
			t.Errorf("spiffe_id %q compiled", bad)
		}
	}
	both := spiffeRoute("orders", up, ordersID)
	both.UpstreamTLS.CAFile = "/etc/ca.pem"
	if err := g.Reload([]config.GatewayRoute{both}); err == nil {
		t.Error("spiffe_id with ca_file compiled")
	}
}
