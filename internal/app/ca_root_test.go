package app

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
)

// testRoot returns a self-signed CA certificate and its key, PEM-encoded
// (the key as PKCS #8 or SEC 1).
func testRoot(t testing.TB, pkcs8 bool) (certPEM, keyPEM []byte) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "upstream root"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(365 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	var kb []byte
	typ := "EC PRIVATE KEY"
	if pkcs8 {
		kb, typ = must(x509.MarshalPKCS8PrivateKey(key)), "PRIVATE KEY"
	} else {
		kb = must(x509.MarshalECPrivateKey(key))
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: kb})
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

func TestParseUpstreamRoot(t *testing.T) {
	c8, k8 := testRoot(t, true)
	c1, k1 := testRoot(t, false)
	tests := []struct {
		name       string
		cert, key  []byte
		wantErrKey string // "" = ok
	}{
		{"pkcs8", c8, k8, ""},
		{"sec1", c1, k1, ""},
		{"mismatched key", c8, k1, "ca.root.key_file"},
		{"key as cert", k8, k8, "ca.root.cert_file"},
		{"cert as key", c8, c8, "ca.root.key_file"},
		{"garbage key", c8, []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"), "ca.root.key_file"},
		{"empty", nil, nil, "ca.root.cert_file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up, err := parseUpstreamRoot(tt.cert, tt.key)
			if tt.wantErrKey == "" {
				if err != nil || up.Cert == nil || up.Key == nil {
					t.Fatalf("%v", err)
				}
				return
			}
			if err == nil || !strings.HasPrefix(err.Error(), tt.wantErrKey) {
				t.Fatalf("error %v, want one naming %s", err, tt.wantErrKey)
			}
		})
	}
	dir := t.TempDir()
	cp, kp := filepath.Join(dir, "root.pem"), filepath.Join(dir, "root.key")
	_ = os.WriteFile(cp, c8, 0o600)
	_ = os.WriteFile(kp, k8, 0o600)
	if _, err := loadUpstreamRoot(config.CARoot{CertFile: cp, KeyFile: kp}); err != nil {
		t.Fatal(err)
	}
	if _, err := loadUpstreamRoot(config.CARoot{CertFile: cp, KeyFile: filepath.Join(dir, "missing")}); err == nil ||
		!strings.HasPrefix(err.Error(), "ca.root.key_file") {
		t.Fatalf("missing key file: %v", err)
	}
}

// TestCAImportedRoot: with ca.root the CA's bundle is that root.
func TestCAImportedRoot(t *testing.T) {
	certPEM, keyPEM := testRoot(t, true)
	dir := t.TempDir()
	cfg := caConfig(t)
	cfg.CA.Root = config.CARoot{CertFile: filepath.Join(dir, "root.pem"), KeyFile: filepath.Join(dir, "root.key")}
	_ = os.WriteFile(cfg.CA.Root.CertFile, certPEM, 0o600)
	_ = os.WriteFile(cfg.CA.Root.KeyFile, keyPEM, 0o600)
	a, _ := runApp(t, cfg, nil)
	b, _ := a.CA.Bundle()
	block, _ := pem.Decode(certPEM)
	if roots := b.X509Authorities(); len(roots) != 1 || !roots[0].Equal(must2(x509.ParseCertificate(block.Bytes))) {
		t.Fatalf("bundle roots %d", len(b.X509Authorities()))
	}
	if a.CAFingerprint() == "" {
		t.Fatal("no fingerprint with an imported root")
	}
}

func must2(c *x509.Certificate, err error) *x509.Certificate {
	if err != nil {
		panic(err)
	}
	return c
}

func FuzzParseUpstreamRoot(f *testing.F) {
	c, k := testRoot(f, true)
	f.Add(c, k)
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"), []byte{})
	f.Fuzz(func(t *testing.T, certPEM, keyPEM []byte) {
		up, err := parseUpstreamRoot(certPEM, keyPEM)
		if err == nil && (up.Cert == nil || up.Key == nil || !publicKeyEqual(up.Key.Public(), up.Cert.PublicKey)) {
			t.Fatal("accepted a root without a matching key")
		}
		if err != nil && strings.Contains(err.Error(), "PRIVATE KEY-----") {
			t.Fatal("key material in an error")
		}
	})
}
