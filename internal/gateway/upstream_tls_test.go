package gateway

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
)

// testCA issues certificates for the upstream TLS tests.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue returns a PEM certificate and key for a server (IP 127.0.0.1) or a client.
func (ca *testCA) issue(t *testing.T, serial int64, server bool) (certPEM, keyPEM []byte) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "leaf"},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
	} else {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

func writeFile(t *testing.T, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestUpstreamMutualTLS: the gateway verifies the upstream's certificate
// against the configured CA and presents its client certificate; without
// them the upstream refuses (502 at the edge).
func TestUpstreamMutualTLS(t *testing.T) {
	ca := newTestCA(t)
	dir := t.TempDir()
	srvCert, srvKey := ca.issue(t, 2, true)
	cliCert, cliKey := ca.issue(t, 3, false)
	pair, err := tls.X509KeyPair(srvCert, srvKey)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	var sawClientCert bool
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sawClientCert = r.TLS != nil && len(r.TLS.PeerCertificates) == 1
		_, _ = w.Write([]byte(`{"ok":true}`))
	}))
	up.TLS = &tls.Config{Certificates: []tls.Certificate{pair}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert}
	up.StartTLS()
	t.Cleanup(up.Close)

	is := newTestIssuer(t)
	good := config.GatewayRoute{Name: "mtls", PathPrefix: "/mtls", Upstreams: []string{up.URL}, Token: "strip",
		Auth: config.GatewayAuth{Mode: "anonymous"},
		UpstreamTLS: config.GatewayTLS{CAFile: writeFile(t, dir, "ca.pem", ca.pem),
			CertFile: writeFile(t, dir, "c.pem", cliCert), KeyFile: writeFile(t, dir, "k.pem", cliKey)}}
	noCert := good
	noCert.Name, noCert.PathPrefix = "nocert", "/nocert"
	noCert.UpstreamTLS.CertFile, noCert.UpstreamTLS.KeyFile = "", ""
	noCA := good
	noCA.Name, noCA.PathPrefix = "noca", "/noca"
	noCA.UpstreamTLS.CAFile = ""
	tg := startGateway(t, is, gatewayConfig(is, good, noCert, noCA), nil)

	if resp, body := tg.do(t, "GET", "/mtls/x", "", nil); resp.StatusCode != 200 || !sawClientCert {
		t.Fatalf("mTLS upstream: status %d (client cert seen %v): %s", resp.StatusCode, sawClientCert, body)
	}
	if resp, _ := tg.do(t, "GET", "/nocert/x", "", nil); resp.StatusCode != http.StatusBadGateway {
		t.Errorf("without a client certificate: status %d, want 502", resp.StatusCode)
	}
	if resp, _ := tg.do(t, "GET", "/noca/x", "", nil); resp.StatusCode != http.StatusBadGateway {
		t.Errorf("upstream certificate from an unknown CA: status %d, want 502", resp.StatusCode)
	}
	// A route whose files cannot be read does not compile.
	bad := good
	bad.UpstreamTLS.CAFile = filepath.Join(dir, "missing.pem")
	if err := tg.G.Reload([]config.GatewayRoute{bad}); err == nil {
		t.Fatal("a route with an unreadable CA file compiled")
	}
	if resp, _ := tg.do(t, "GET", "/mtls/x", "", nil); resp.StatusCode != 200 {
		t.Fatalf("a rejected reload replaced the routes: status %d", resp.StatusCode)
	}
}
