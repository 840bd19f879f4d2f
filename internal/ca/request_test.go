package ca

import (
	"context"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"net/url"
	"testing"

	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/gatehouse/gatehouse/internal/storage"
)

// TestMT02IssueRequest: IssueRequest issues for the given ID and the CSR's
// key only (subject, SANs and extensions ignored), checks the ID and the
// key, and counts failures like IssueCSR.
func TestMT02IssueRequest(t *testing.T) {
	c := newTestCA(t, nil, testConfig(), nil)
	reg := newRegistry(t, c)
	ctx := WithMethod(context.Background(), MethodRenewal)
	parse := func(t *testing.T, der []byte) *x509.CertificateRequest {
		t.Helper()
		csr, err := x509.ParseCertificateRequest(der)
		if err != nil {
			t.Fatal(err)
		}
		if err := csr.CheckSignature(); err != nil {
			t.Fatal(err)
		}
		return csr
	}
	key := ecKey(t, elliptic.P256())
	hostile := &x509.CertificateRequest{Subject: pkix.Name{CommonName: "Gatehouse root CA", Organization: []string{"Gatehouse"}},
		DNSNames: []string{"evil.example"}, URIs: []*url.URL{{Scheme: "spiffe", Host: "example.org", Path: "/gatehouse/ca"}}}
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	tests := []struct {
		name    string
		id      string
		csr     *x509.CertificateRequest
		wantErr error
		reason  string
	}{
		{"hostile CSR fields ignored", "spiffe://example.org/a", parse(t, makeCSR(t, hostile, key)), nil, ""},
		{"Ed25519", "spiffe://example.org/b", parse(t, makeCSR(t, nil, edKey)), nil, ""},
		{"P-224 key", "spiffe://example.org/a", parse(t, makeCSR(t, nil, ecKey(t, elliptic.P224()))), ErrWeakKey, "weak_key"},
		{"no CSR", "spiffe://example.org/a", nil, ErrBadCSR, "bad_csr"},
		{"other trust domain", "spiffe://other.org/a", parse(t, makeCSR(t, nil, key)), ErrBadID, "bad_id"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := gather(t, reg)[`gatehouse_ca_issue_failures_total{reason="`+tc.reason+`"}`]
			svid, err := c.IssueRequest(ctx, mustID(t, tc.id), tc.csr, 0)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if err != nil {
				if got := gather(t, reg)[`gatehouse_ca_issue_failures_total{reason="`+tc.reason+`"}`]; got != before+1 {
					t.Fatalf("failures{%s} %v → %v", tc.reason, before, got)
				}
				return
			}
			leaf := svid.Certificates[0]
			if len(leaf.URIs) != 1 || leaf.URIs[0].String() != tc.id || len(leaf.DNSNames) != 0 ||
				leaf.Subject.CommonName != "" || leaf.IsCA {
				t.Fatalf("leaf URIs %v DNS %v subject %v CA %v", leaf.URIs, leaf.DNSNames, leaf.Subject, leaf.IsCA)
			}
			if !publicKeysEqual(leaf.PublicKey, tc.csr.PublicKey) {
				t.Fatal("the SVID does not carry the CSR's key")
			}
			b, _ := c.Bundle()
			if _, _, err := x509svid.Verify(svid.Certificates, b, x509svid.WithTime(c.now())); err != nil {
				t.Fatal(err)
			}
		})
	}
	if got := gather(t, reg)[`gatehouse_ca_svids_issued_total{method="renewal"}`]; got != 2 {
		t.Fatalf("renewals counted: %v, want 2", got)
	}
}

// TestActiveRoot: the root the issuing intermediate chains to, nil before
// Start, following a root rotation, and the upstream root when imported.
func TestActiveRoot(t *testing.T) {
	st := newMemStore()
	clk := newClock()
	c, err := New(st, testConfig(), clk.Now, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	if r := c.ActiveRoot(); r != nil {
		t.Fatal("ActiveRoot before Start is not nil")
	}
	c = newTestCA(t, st, testConfig(), clk)
	check := func(t *testing.T, c *CA) *x509.Certificate {
		t.Helper()
		r := c.ActiveRoot()
		if r == nil {
			t.Fatal("no active root")
		}
		b, _ := c.Bundle()
		if !b.HasX509Authority(r) {
			t.Fatal("the active root is not in the bundle")
		}
		svid, err := c.Issue(context.Background(), mustID(t, "spiffe://example.org/a"), ecKey(t, elliptic.P256()).Public(), 0)
		if err != nil {
			t.Fatal(err)
		}
		roots := x509.NewCertPool()
		roots.AddCert(r)
		inter := x509.NewCertPool()
		inter.AddCert(svid.Certificates[1])
		if _, err := svid.Certificates[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter,
			CurrentTime: clk.Now(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
			t.Fatalf("an SVID does not chain to ActiveRoot: %v", err)
		}
		return r
	}
	first := check(t, c)
	if err := c.RotateNow(context.Background(), storage.AuthorityRoot); err != nil {
		t.Fatal(err)
	}
	if second := check(t, c); second.Equal(first) {
		t.Fatal("ActiveRoot did not follow the root rotation")
	}

	cfg := testConfig()
	cfg.Upstream = makeUpstream(t, elliptic.P256())
	up := newTestCA(t, nil, cfg, clk)
	if r := check(t, up); r != cfg.Upstream.Cert {
		t.Fatal("ActiveRoot is not the upstream root")
	}
}
