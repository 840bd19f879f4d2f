package ca

import (
	"context"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/gatehouse/gatehouse/internal/storage"
)

// makeUpstream returns a self-signed upstream root with a key on curve.
func makeUpstream(t *testing.T, curve elliptic.Curve) *Upstream {
	t.Helper()
	key := ecKey(t, curve)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(42),
		Subject:               pkix.Name{CommonName: "Upstream root"},
		NotBefore:             newClock().Now().Add(-time.Hour),
		NotAfter:              newClock().Now().Add(90 * 24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &Upstream{Cert: cert, Key: key}
}

func TestUpstreamRoot(t *testing.T) {
	st := newMemStore()
	clk := newClock()
	cfg := testConfig()
	cfg.Upstream = makeUpstream(t, elliptic.P384())
	c := newTestCA(t, st, cfg, clk)
	if roots := st.list(storage.AuthorityRoot); len(roots) != 0 {
		t.Fatalf("upstream root stored: %d roots", len(roots))
	}
	inters := st.list(storage.AuthorityIntermediate)
	if len(inters) != 1 {
		t.Fatalf("%d intermediates", len(inters))
	}
	inter, _ := x509.ParseCertificate(inters[0].CertDER)
	if err := inter.CheckSignatureFrom(cfg.Upstream.Cert); err != nil {
		t.Fatalf("intermediate not signed by the upstream root: %v", err)
	}
	b, seq := c.Bundle()
	if len(b.X509Authorities()) != 1 || !b.X509Authorities()[0].Equal(cfg.Upstream.Cert) || seq < 1 {
		t.Fatalf("bundle: %d roots, seq %d", len(b.X509Authorities()), seq)
	}
	svid, err := c.Issue(context.Background(), mustID(t, "spiffe://example.org/a"), ecKey(t, elliptic.P256()).Public(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := x509svid.Verify(svid.Certificates, b, x509svid.WithTime(clk.Now())); err != nil {
		t.Fatal(err)
	}
	if err := c.RotateNow(context.Background(), storage.AuthorityRoot); err == nil {
		t.Fatal("RotateNow(root) with an upstream root succeeded")
	}
	// Intermediates rotate under the upstream root and never outlive it.
	for range 200 {
		clk.Advance(6 * time.Hour)
		if clk.Now().After(cfg.Upstream.Cert.NotAfter.Add(-12 * time.Hour)) {
			break
		}
		refresh(t, c)
		s := snap(c)
		if s.signing == nil || s.signing.cert.NotAfter.After(cfg.Upstream.Cert.NotAfter) {
			t.Fatal("no signing intermediate, or one outliving the upstream root")
		}
		if roots := st.list(storage.AuthorityRoot); len(roots) != 0 {
			t.Fatal("upstream root stored")
		}
	}
	// A CA restarted with another upstream root replaces the intermediate.
	cfg.Upstream = makeUpstream(t, elliptic.P256())
	c2 := newTestCA(t, st, cfg, clk)
	if err := snap(c2).signing.cert.CheckSignatureFrom(cfg.Upstream.Cert); err != nil {
		t.Fatalf("new upstream root: intermediate not replaced: %v", err)
	}
}
