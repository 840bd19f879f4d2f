package demo

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/gatehouse/gatehouse/examples/internal/demotest"
	"github.com/gatehouse/gatehouse/examples/orders"
	"github.com/gatehouse/gatehouse/examples/payments"
	"github.com/gatehouse/gatehouse/sdk/auth"
	"github.com/gatehouse/gatehouse/sdk/workload"
)

const td = "gatehouse.test"

// demoPolicy is the dev policy in small: the gateway may call orders and
// payments, orders may pay, billing may pay; nothing lets payments call
// orders, and a deny rule keeps billing away from orders whatever an allow
// rule says.
func demoPolicy(t *testing.T) *workload.Policy {
	id := func(p string) string { return "spiffe://" + td + p }
	return demotest.Policy(t,
		workload.Rule{Name: "gateway-orders", Effect: "allow", From: []string{id("/gateway")}, To: []string{id("/orders")},
			Paths: []string{"/orders", "/orders/*"}},
		workload.Rule{Name: "gateway-payments", Effect: "allow", From: []string{id("/gateway")}, To: []string{id("/payments")},
			Paths: []string{"/payments"}, Methods: []string{"POST"}},
		workload.Rule{Name: "orders-pays", Effect: "allow", From: []string{id("/orders")}, To: []string{id("/payments")},
			Paths: []string{"/payments"}, Methods: []string{"POST"}},
		workload.Rule{Name: "billing-pays", Effect: "allow", From: []string{id("/billing")}, To: []string{id("/payments")},
			Paths: []string{"/payments"}, Methods: []string{"POST"}},
		// A rule someone added by mistake, and the one that overrides it.
		workload.Rule{Name: "billing-reads-orders", Effect: "allow", From: []string{id("/billing")}, To: []string{id("/orders")},
			Paths: []string{"/orders"}, Methods: []string{"GET"}},
		workload.Rule{Name: "billing-never-orders", Effect: "deny", From: []string{id("/billing")}, To: []string{id("/orders")}},
	)
}

// mtlsDemo is orders and payments serving mutual TLS with test SVIDs, and a
// stand-in for the gateway: plain HTTP in front, mTLS with its own SVID to
// orders (payments asks orders through it, as in gatehouse dev).
type mtlsDemo struct {
	ca                            *demotest.CA
	policy                        *workload.Policy
	minter                        *demotest.Minter
	ordersURL, paymentsURL, gwURL string
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

func startMTLSDemo(t *testing.T) *mtlsDemo {
	t.Helper()
	d := &mtlsDemo{ca: demotest.NewCA(t, td), policy: demoPolicy(t), minter: demotest.NewMinter()}
	ordersLn, paymentsLn := listen(t), listen(t)
	d.ordersURL, d.paymentsURL = "https://"+ordersLn.Addr().String(), "https://"+paymentsLn.Addr().String()

	gwTransport, err := ClientTransport(d.ca.Source(t, GatewayPath, d.policy), OrdersPath, PaymentsPath)
	if err != nil {
		t.Fatal(err)
	}
	ou, _ := url.Parse(d.ordersURL)
	proxy := httputil.NewSingleHostReverseProxy(ou)
	proxy.Transport = gwTransport
	gw := httptest.NewServer(proxy)
	t.Cleanup(gw.Close)
	d.gwURL = gw.URL

	cfg := Config{Issuer: demotest.Issuer, OrdersURL: d.gwURL, PaymentsURL: d.paymentsURL,
		newVerifier: func(aud string) (*auth.Verifier, error) { return d.minter.NewVerifier(aud) },
		Workload:    &WorkloadConfig{Orders: d.ca.Source(t, OrdersPath, d.policy), Payments: d.ca.Source(t, PaymentsPath, d.policy)}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	t.Cleanup(func() { cancel(); <-done; <-done })
	for _, s := range []struct {
		build func(Config) (*Service, error)
		ln    net.Listener
	}{{NewOrders, ordersLn}, {NewPayments, paymentsLn}} {
		svc, err := s.build(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if svc.TLS == nil {
			t.Fatal("a service with an identity serves without TLS")
		}
		t.Cleanup(svc.Close)
		go func() { _ = svc.Serve(ctx, s.ln); done <- struct{}{} }()
	}
	return d
}

func (d *mtlsDemo) alice() string {
	return d.minter.Mint(demotest.User("usr_alice", []string{"user"}, "orders:read orders:write payments:write",
		orders.Audience, payments.Audience))
}

// client is an HTTP client holding the SVID of path, willing to talk to
// orders or payments.
func (d *mtlsDemo) client(t *testing.T, src Identity) *http.Client {
	t.Helper()
	rt, err := ClientTransport(src, OrdersPath, PaymentsPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rt.CloseIdleConnections)
	return &http.Client{Transport: rt, Timeout: 10 * time.Second}
}

func do(t *testing.T, c *http.Client, method, u, token, body string) (int, map[string]any, error) {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", demotest.Bearer(token))
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	m := map[string]any{}
	_ = json.Unmarshal(b, &m)
	return resp.StatusCode, m, nil
}

// TestWorkloadPayCarriesBothIdentities: the gateway → orders → payments
// chain over mTLS; payments sees orders' SPIFFE ID on the connection and
// alice's token beside it (the payer is alice, the paying service orders).
func TestWorkloadPayCarriesBothIdentities(t *testing.T) {
	d := startMTLSDemo(t)
	gw := d.client(t, d.ca.Source(t, GatewayPath, d.policy))
	status, body, err := do(t, gw, "POST", d.ordersURL+"/orders/o-1001/pay", d.alice(), "")
	if err != nil || status != http.StatusCreated {
		t.Fatalf("pay: %d %v %v", status, body, err)
	}
	if body["paid_by_service"] != "spiffe://"+td+"/orders" || body["payer"] != "usr_alice" || body["order_id"] != "o-1001" {
		t.Fatalf("payment %v: want paid_by_service orders and payer usr_alice", body)
	}
	// The same through the plain-HTTP front door (payments → gateway →
	// orders for the owner check) for bob's order: payments refuses alice.
	status, body, err = do(t, http.DefaultClient, "POST", d.gwURL+"/orders/o-2001/pay", d.alice(), "")
	if err != nil || status == http.StatusCreated {
		t.Fatalf("alice paid bob's order: %d %v %v", status, body, err)
	}
}

// TestMT03WorkloadPolicy: who may call whom, per connection (refused in the
// handshake) and per request (403 from the middleware); deny wins.
func TestMT03WorkloadPolicy(t *testing.T) {
	d := startMTLSDemo(t)
	billingTok := d.minter.Mint(demotest.Token{ClientID: payments.DefaultBillingClient, Audience: []string{payments.Audience},
		Scope: "payments:write"})
	invoice := `{"invoice_id":"inv-1","amount_cents":1200}`
	for _, tc := range []struct {
		name, from, method, url, token, body string
		want                                 int // 0: the connection is refused
		service                              string
	}{
		{"MT-03/billing-pays-over-mtls", BillingPath, "POST", d.paymentsURL + "/payments", billingTok, invoice, http.StatusCreated,
			"spiffe://" + td + "/billing"},
		{"MT-03/payments-to-orders-refused", PaymentsPath, "GET", d.ordersURL + "/orders/o-1001", d.alice(), "", 0, ""},
		{"MT-03/deny-wins-billing-to-orders", BillingPath, "GET", d.ordersURL + "/orders", d.alice(), "", 0, ""},
		{"MT-03/unknown-workload-refused", "/intruder", "POST", d.paymentsURL + "/payments", billingTok, invoice, 0, ""},
		{"MT-03/orders-method-not-allowed", OrdersPath, "GET", d.paymentsURL + "/payments", d.alice(), "", http.StatusForbidden, ""},
		{"MT-03/orders-path-exact", OrdersPath, "POST", d.paymentsURL + "/payments-admin", d.alice(), "{}", http.StatusForbidden, ""},
		{"MT-03/non-canonical-path", OrdersPath, "POST", d.paymentsURL + "/x/../payments", d.alice(), invoice, http.StatusForbidden, ""},
		{"MT-03/svid-but-no-token", OrdersPath, "POST", d.paymentsURL + "/payments", "", `{"order_id":"o-1002"}`, http.StatusUnauthorized, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := d.client(t, d.ca.Source(t, tc.from, d.policy))
			status, body, err := do(t, c, tc.method, tc.url, tc.token, tc.body)
			if tc.want == 0 {
				if err == nil {
					t.Fatalf("connection accepted: %d %v", status, body)
				}
				return
			}
			if err != nil || status != tc.want {
				t.Fatalf("%d %v %v, want %d", status, body, err, tc.want)
			}
			if tc.service != "" && body["paid_by_service"] != tc.service {
				t.Errorf("paid_by_service %v, want %s", body["paid_by_service"], tc.service)
			}
			if status == http.StatusForbidden && body["error"] != "access_denied" {
				t.Errorf("403 without access_denied: %v", body)
			}
		})
	}
}

// TestMT01WorkloadRefusesForeignCertificates: a caller with an SVID of
// another CA (same trust domain name and ID), or with no certificate at
// all, never reaches payments; a server with the wrong identity is refused
// by the client.
func TestMT01WorkloadRefusesForeignCertificates(t *testing.T) {
	d := startMTLSDemo(t)
	other := demotest.NewCA(t, td)
	invoice := `{"invoice_id":"inv-9","amount_cents":1}`
	tok := d.minter.Mint(demotest.Token{ClientID: payments.DefaultBillingClient, Audience: []string{payments.Audience}, Scope: "payments:write"})
	// The intruder trusts our CA (so the handshake is not refused on its
	// side) but presents a certificate of its own CA.
	forged := other.Source(t, BillingPath, d.policy)
	tr, err := workload.ClientTLSConfig(mixed{forged, d.ca.Source(t, BillingPath, nil)}, workload.AuthorizeMemberOf(d.ca.TrustDomain()))
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: tr}, Timeout: 10 * time.Second}
	if status, _, err := do(t, c, "POST", d.paymentsURL+"/payments", tok, invoice); err == nil {
		t.Fatalf("MT-01/wrong-ca: accepted with %d", status)
	}
	// No client certificate: refused in the handshake.
	plain := &http.Client{Transport: &http.Transport{TLSClientConfig: tr.Clone()}, Timeout: 10 * time.Second}
	plain.Transport.(*http.Transport).TLSClientConfig.GetClientCertificate = nil
	if status, _, err := do(t, plain, "POST", d.paymentsURL+"/payments", tok, invoice); err == nil {
		t.Fatalf("MT-01/no-client-cert: accepted with %d", status)
	}
	// Orders' client expects payments: orders itself is not payments.
	rt, err := ClientTransport(d.ca.Source(t, OrdersPath, d.policy), PaymentsPath)
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = do(t, &http.Client{Transport: rt, Timeout: 10 * time.Second}, "GET", d.ordersURL+"/orders", d.alice(), "")
	if err == nil || !strings.Contains(err.Error(), "orders") {
		t.Fatalf("MT-01/server-identity: orders accepted as payments: %v", err)
	}
}

// mixed presents one source's SVID with another's bundle.
type mixed struct {
	svid   *demotest.Source
	bundle *demotest.Source
}

func (m mixed) GetX509SVID() (*x509svid.SVID, error) { return m.svid.GetX509SVID() }
func (m mixed) GetX509BundleForTrustDomain(d spiffeid.TrustDomain) (*x509bundle.Bundle, error) {
	return m.bundle.GetX509BundleForTrustDomain(d)
}

// TestWorkloadNeedsIdentities: Workload without the service's identity is
// a configuration error, not plain HTTP.
func TestWorkloadNeedsIdentities(t *testing.T) {
	m := demotest.NewMinter()
	cfg := Config{Issuer: demotest.Issuer, OrdersURL: "http://127.0.0.1:1", PaymentsURL: "https://127.0.0.1:2", Workload: &WorkloadConfig{},
		newVerifier: func(aud string) (*auth.Verifier, error) { return m.NewVerifier(aud) }}
	if _, err := NewOrders(cfg); err == nil || !strings.Contains(err.Error(), "orders") {
		t.Errorf("orders without an identity: %v", err)
	}
	if _, err := NewPayments(cfg); err == nil || !strings.Contains(err.Error(), "payments") {
		t.Errorf("payments without an identity: %v", err)
	}
	if _, err := NewIdentity(context.Background(), CA{URL: "https://127.0.0.1:1", TrustDomain: td}, Credential{}); err == nil {
		t.Error("an identity without a credential")
	}
	if _, err := NewIdentity(context.Background(), CA{URL: "https://127.0.0.1:1", TrustDomain: td},
		Credential{JoinToken: "j", ClientID: "c", ClientSecret: "s"}); err == nil {
		t.Error("an identity with two credentials")
	}
}
