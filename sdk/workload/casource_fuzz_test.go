package workload

import (
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
)

// FuzzCASourceIssueAnswer: arbitrary issuance answers never panic and are
// never accepted without a valid signature chain.
func FuzzCASourceIssueAnswer(f *testing.F) {
	root := caTestRoot(f, "Fuzz Root")
	s := &CASource{cfg: CAConfig{TrustDomain: caTD}, opt: caOptions{now: time.Now}}
	s.bundle = x509bundle.FromX509Authorities(caTD, []*x509.Certificate{root.cert})
	key := caTestKey(f)
	b, _ := spiffebundle.FromX509Authorities(caTD, []*x509.Certificate{root.cert}).Marshal()
	f.Add([]byte(`{"spiffe_id":"spiffe://example.org/a","x509_svid":["AAAA"],"bundle":` + string(b) + `}`))
	f.Add([]byte(`{"x509_svid":[],"bundle":null}`))
	f.Add([]byte(`{"x509_svid":["` + strings.Repeat("A", 100) + `"],"x509_svid":[]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		if sv, _, err := s.verifyIssued(data, key, nil); err == nil {
			t.Fatalf("accepted %v", sv.ID)
		}
	})
}

// FuzzCASourceBundleFile: bundle files (SPIFFE JSON or PEM) never panic and
// never yield a bundle without roots or for another trust domain.
func FuzzCASourceBundleFile(f *testing.F) {
	root := caTestRoot(f, "Fuzz Root")
	b, _ := spiffebundle.FromX509Authorities(caTD, []*x509.Certificate{root.cert}).Marshal()
	f.Add(b)
	f.Add(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: root.cert.Raw}))
	f.Add([]byte(`{"keys":[{"use":"x509-svid","x5c":[]}]}`))
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		bundle, err := parseBundleFile(caTD, data)
		if err != nil {
			return
		}
		if len(bundle.X509Authorities()) == 0 || bundle.TrustDomain() != caTD {
			t.Fatalf("accepted a bundle with %d roots for %v", len(bundle.X509Authorities()), bundle.TrustDomain())
		}
	})
}
