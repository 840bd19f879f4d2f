package caserver

import (
	"crypto/x509"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/gatehouse/gatehouse/sdk/workload"
)

// TestMT01RenewalRejects: a renewal (and a policy fetch) needs a valid SVID
// of the CA's trust domain; an expired one that is ours gets svid_expired
// with a clear message, every other bad certificate invalid_svid.
func TestMT01RenewalRejects(t *testing.T) {
	h := newHarness(t)
	other := newFakeCA(t, testTD) // another CA, identical subjects
	foreign := newFakeCA(t, spiffeid.RequireTrustDomainFromString("other.test"))
	id := spiffeid.RequireFromString("spiffe://gatehouse.test/orders")
	now := time.Now()
	valid := func() *x509.Certificate { return leafTemplate(id, now.Add(-time.Minute), now.Add(time.Hour)) }
	tmpl := func(mod func(c *x509.Certificate)) *x509.Certificate { c := valid(); mod(c); return c }

	tests := []struct {
		name string
		ca   *fakeCA
		tmpl *x509.Certificate
		code string
	}{
		{"wrong CA, identical subject", other, valid(), "invalid_svid"},
		{"expired", h.ca, tmpl(func(c *x509.Certificate) { c.NotBefore, c.NotAfter = now.Add(-2*time.Hour), now.Add(-time.Hour) }), "svid_expired"},
		{"expired from the wrong CA", other, tmpl(func(c *x509.Certificate) { c.NotBefore, c.NotAfter = now.Add(-2*time.Hour), now.Add(-time.Hour) }), "invalid_svid"},
		{"not yet valid", h.ca, tmpl(func(c *x509.Certificate) { c.NotBefore = now.Add(time.Hour); c.NotAfter = now.Add(2 * time.Hour) }), "invalid_svid"},
		{"leaf marked CA", h.ca, tmpl(func(c *x509.Certificate) { c.IsCA = true }), "invalid_svid"},
		{"two URI SANs", h.ca, tmpl(func(c *x509.Certificate) {
			c.URIs = append(c.URIs, spiffeid.RequireFromString("spiffe://gatehouse.test/payments").URL())
		}), "invalid_svid"},
		{"no URI SAN", h.ca, tmpl(func(c *x509.Certificate) { c.URIs = nil }), "invalid_svid"},
		{"ID without path", h.ca, tmpl(func(c *x509.Certificate) { c.URIs = []*url.URL{{Scheme: "spiffe", Host: "gatehouse.test"}} }), "invalid_svid"},
		{"other trust domain, its own CA", foreign, tmpl(func(c *x509.Certificate) {
			c.URIs = []*url.URL{spiffeid.RequireFromString("spiffe://other.test/orders").URL()}
		}), "invalid_svid"},
		{"other trust domain, our CA", h.ca, tmpl(func(c *x509.Certificate) {
			c.URIs = []*url.URL{spiffeid.RequireFromString("spiffe://other.test/orders").URL()}
		}), "invalid_svid"},
		{"no clientAuth usage", h.ca, tmpl(func(c *x509.Certificate) { c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth} }), "invalid_svid"},
		{"DNS SAN", h.ca, tmpl(func(c *x509.Certificate) { c.DNSNames = []string{"orders.internal"} }), "invalid_svid"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			key := mustKey(t)
			chain := tc.ca.sign(t, tc.tmpl, key.Public())
			c := h.client(chain, key)
			body, _ := svidBody(t)
			for _, req := range []struct{ method, path, body string }{
				{http.MethodPost, "/v1/svid", body}, {http.MethodGet, "/v1/policy", ""},
			} {
				a := h.do(c, req.method, req.path, "", req.body)
				if a.status != http.StatusUnauthorized || a.code() != tc.code {
					t.Fatalf("%s %s: %d %s; want 401 %s", req.method, req.path, a.status, a.raw, tc.code)
				}
				if tc.code == "svid_expired" {
					desc, _ := a.body["error_description"].(string)
					if !strings.Contains(desc, "expired at "+tc.tmpl.NotAfter.UTC().Format(time.RFC3339)) ||
						!strings.Contains(desc, "bootstrap again with a join token or client credentials") {
						t.Fatalf("svid_expired description: %q", desc)
					}
				}
			}
		})
	}
	if n := h.ca.issued.Load(); n > 1 { // the serving certificate only
		t.Fatalf("%d certificates issued, want none for rejected renewals", n-1)
	}
}

func TestPolicy(t *testing.T) {
	h := newHarness(t)
	key := mustKey(t)
	now := time.Now()
	id := spiffeid.RequireFromString("spiffe://gatehouse.test/payments")
	c := h.client(h.ca.sign(t, leafTemplate(id, now.Add(-time.Minute), now.Add(time.Hour)), key.Public()), key)

	// No policy yet: empty rules with a version.
	a := h.do(c, http.MethodGet, "/v1/policy", "", "")
	if a.status != http.StatusOK || a.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("GET /v1/policy: %d %s", a.status, a.raw)
	}
	p, err := workload.DecodePolicy(a.raw)
	if err != nil || len(p.Rules()) != 0 || p.Version() == "" {
		t.Fatalf("empty policy: %v %v (%s)", p, err, a.raw)
	}

	pol, err := workload.NewPolicy([]workload.Rule{
		{Name: "orders-pays", Effect: "allow", From: []string{"spiffe://gatehouse.test/orders"}, To: []string{"spiffe://gatehouse.test/payments"}},
		{Name: "pays-ledger", Effect: "allow", From: []string{"spiffe://gatehouse.test/payments"}, To: []string{"spiffe://gatehouse.test/ledger"}},
		{Name: "any-all", Effect: "deny", From: []string{"spiffe://gatehouse.test/evil"}, To: []string{"spiffe://gatehouse.test/*"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	h.policy.Store(pol)
	a = h.do(c, http.MethodGet, "/v1/policy", "", "")
	if a.status != http.StatusOK {
		t.Fatalf("GET /v1/policy: %d %s", a.status, a.raw)
	}
	p, err = workload.DecodePolicy(a.raw)
	if err != nil {
		t.Fatalf("decode %s: %v", a.raw, err)
	}
	var names []string
	for _, r := range p.Rules() {
		names = append(names, r.Name)
	}
	if strings.Join(names, ",") != "any-all,orders-pays" && strings.Join(names, ",") != "orders-pays,any-all" {
		t.Fatalf("rules for payments: %v", names)
	}
	if p.Version() != pol.For(id).Version() {
		t.Fatalf("version %s, want %s", p.Version(), pol.For(id).Version())
	}

	// Without a client certificate: 401 invalid_svid; wrong method: 405.
	if a := h.do(h.client(nil, nil), http.MethodGet, "/v1/policy", "", ""); a.status != http.StatusUnauthorized || a.code() != "invalid_svid" {
		t.Fatalf("policy without mTLS: %d %s", a.status, a.raw)
	}
	if a := h.do(c, http.MethodPost, "/v1/policy", "", "{}"); a.status != http.StatusMethodNotAllowed {
		t.Fatalf("POST /v1/policy: %d %s", a.status, a.raw)
	}
}
