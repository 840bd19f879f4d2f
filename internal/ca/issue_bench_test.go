package ca

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"net/url"
	"testing"
	"time"
)

// BenchmarkIssueCSR measures end-to-end issuance (parse and check the CSR,
// sign, parse the leaf) in parallel; the goal is ≥ 2,000 SVIDs/s per core
// (issuances/cpu-s).
func BenchmarkIssueCSR(b *testing.B) {
	c := newTestCA(b, nil, testConfig(), nil)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	csr := makeCSR(b, nil, key)
	id := mustID(b, "spiffe://example.org/bench")
	ctx := WithMethod(context.Background(), MethodRenewal)
	b.ReportAllocs()
	b.ResetTimer()
	start, cpu0 := time.Now(), cpuTime()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.IssueCSR(ctx, id, csr, 0); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "issuances/s")
	// Per core: independent of other load on the machine.
	if cpu := cpuTime() - cpu0; cpu > 0 {
		b.ReportMetric(float64(b.N)/cpu.Seconds(), "issuances/cpu-s")
	}
}

// FuzzIssueCSR feeds arbitrary bytes as a CSR: IssueCSR must never panic
// and fail only with ErrBadCSR or ErrWeakKey.
func FuzzIssueCSR(f *testing.F) {
	ec := makeCSR(f, nil, mustEC(f))
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	u, _ := url.Parse("spiffe://example.org/x")
	f.Add(ec)
	f.Add(makeCSR(f, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "x"}, URIs: []*url.URL{u},
		DNSNames: []string{"a"}}, ed))
	if rk, err := rsa.GenerateKey(rand.Reader, 1024); err == nil {
		f.Add(makeCSR(f, nil, rk))
	}
	f.Add([]byte{})
	f.Add([]byte{0x30, 0x82, 0xff, 0xff})
	f.Add(ec[:len(ec)/2])
	c := newTestCA(f, nil, testConfig(), nil)
	id := mustID(f, "spiffe://example.org/fuzz")
	f.Fuzz(func(t *testing.T, csr []byte) {
		svid, err := c.IssueCSR(context.Background(), id, csr, 0)
		if err != nil {
			if !errors.Is(err, ErrBadCSR) && !errors.Is(err, ErrWeakKey) {
				t.Fatalf("unexpected error class: %v", err)
			}
			return
		}
		leaf := svid.Certificates[0]
		if leaf.IsCA || len(leaf.URIs) != 1 || leaf.URIs[0].String() != id.String() || len(leaf.DNSNames) != 0 {
			t.Fatal("issued leaf carries CSR-chosen fields")
		}
	})
}

func mustEC(tb testing.TB) *ecdsa.PrivateKey { return ecKey(tb, elliptic.P256()) }
