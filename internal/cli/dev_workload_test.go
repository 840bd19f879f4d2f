package cli

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/gatehouse/gatehouse/examples/demo"
	"github.com/gatehouse/gatehouse/internal/app"
	"github.com/gatehouse/gatehouse/internal/storage"
)

// mtlsFlags are dev's default addresses, the workload CA included.
func mtlsFlags() devFlags {
	return devFlags{issuer: "http://localhost:8080", adminListen: "127.0.0.1:8081", demoListen: "127.0.0.1:8090", dataDir: "d",
		listen: "127.0.0.1:8080", algorithm: "RS256", ordersListen: "127.0.0.1:8091", paymentsListen: "127.0.0.1:8092",
		gatewayListen: "127.0.0.1:8000", authorizerListen: "127.0.0.1:8001", authzListen: "127.0.0.1:8002", caListen: "127.0.0.1:8003"}
}

var mtlsURLs = demoURLs{orders: "https://127.0.0.1:8091", payments: "https://127.0.0.1:8092"}

// TestMT03DevPolicy: who may call whom in dev. The gateway calls orders
// and payments, orders pays, billing pays; payments calls no one, and a
// deny rule says so for orders; paths are exact.
func TestMT03DevPolicy(t *testing.T) {
	c := devCA(mtlsFlags())
	if _, err := c.Validate(); err != nil {
		t.Fatalf("dev ca section: %v", err)
	}
	p, err := c.NewPolicy()
	if err != nil {
		t.Fatal(err)
	}
	id := func(path string) spiffeid.ID { return spiffeid.RequireFromString(devSPIFFEID(path)) }
	gw, orders, payments, billing := id(demo.GatewayPath), id(demo.OrdersPath), id(demo.PaymentsPath), id(demo.BillingPath)
	for _, tc := range []struct {
		name           string
		from, to       spiffeid.ID
		method, path   string
		connect, allow bool
	}{
		{"MT-03/gateway-reads-orders", gw, orders, "GET", "/orders", true, true},
		{"MT-03/gateway-pays-an-order", gw, orders, "POST", "/orders/o-1001/pay", true, true},
		{"MT-03/gateway-pays", gw, payments, "POST", "/payments", true, true},
		{"MT-03/gateway-lists-no-payments", gw, payments, "GET", "/payments", true, false},
		{"MT-03/orders-pays", orders, payments, "POST", "/payments", true, true},
		{"MT-03/orders-path-exact", orders, payments, "POST", "/payments-admin", true, false},
		{"MT-03/orders-path-not-canonical", orders, payments, "POST", "/x/../payments", true, false},
		{"MT-03/billing-pays", billing, payments, "POST", "/payments", true, true},
		{"MT-03/payments-never-calls-orders", payments, orders, "GET", "/orders/o-1001", false, false},
		{"MT-03/billing-not-orders", billing, orders, "GET", "/orders", false, false},
		{"MT-03/orders-not-gateway", orders, gw, "GET", "/", false, false},
		{"MT-03/another-trust-domain", spiffeid.RequireFromString("spiffe://evil.example/gateway"), orders, "GET", "/orders", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := p.MayConnect(tc.from, tc.to); got != tc.connect {
				t.Errorf("MayConnect %v, want %v", got, tc.connect)
			}
			if d := p.Decide(tc.from, tc.to, tc.method, tc.path); d.Allow != tc.allow {
				t.Errorf("Decide %+v, want allow %v", d, tc.allow)
			}
		})
	}
	if d := p.Decide(payments, orders, "GET", "/orders"); !strings.Contains(d.Reason, "payments-never-calls-orders") {
		t.Errorf("payments -> orders: reason %q does not name the deny rule", d.Reason)
	}
}

// TestDevConfigMTLS: with the CA, the dev configuration validates; the
// gateway reaches orders and payments by SPIFFE ID with its own SVID; the
// others routes are unchanged. Without the CA nothing of it is set.
func TestDevConfigMTLS(t *testing.T) {
	st := devState{KEK: base64.StdEncoding.EncodeToString(make([]byte, 32)), Pepper: base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef")),
		AdminToken: "gha_x", DemoGatewaySecret: "ghs_g"}
	f := mtlsFlags()
	cfg := devConfig(f, st, mtlsURLs)
	if _, err := cfg.Validate(); err != nil {
		t.Fatalf("dev config with the CA does not validate: %v", err)
	}
	if cfg.CA.Listen != f.caListen || cfg.CA.TrustDomain != devTrustDomain {
		t.Errorf("ca %+v", cfg.CA)
	}
	w := cfg.Gateway.Workload
	if w.CAURL != "https://127.0.0.1:8003" || w.ClientID != devGatewayClient || w.ClientSecret != "ghs_g" || w.Audience != devCAAudience {
		t.Errorf("gateway.workload %v", w)
	}
	want := map[string]string{"orders-read": "/orders", "orders-write": "/orders", "orders-delete": "/orders", "tenant-orders": "/orders", "discovery": "",
		"payments": "/payments"}
	for _, r := range cfg.Gateway.Routes {
		p, ok := want[r.Name]
		if !ok {
			t.Errorf("unexpected route %s", r.Name)
			continue
		}
		if wantID := map[bool]string{true: devSPIFFEID(p), false: ""}[p != ""]; r.UpstreamTLS.SPIFFEID != wantID {
			t.Errorf("%s: spiffe_id %q, want %q", r.Name, r.UpstreamTLS.SPIFFEID, wantID)
		}
	}
	// No CA: plain HTTP as before.
	f.caListen = ""
	if f.mtls() {
		t.Fatal("mTLS without a CA")
	}
	cfg = devConfig(f, st, demoURLs{orders: "http://127.0.0.1:8091", payments: "http://127.0.0.1:8092"})
	if cfg.CA.Listen != "" || cfg.Gateway.Workload.Enabled() || cfg.Gateway.SPIFFEIDs() {
		t.Errorf("no CA, yet workload settings: %+v %v", cfg.CA, cfg.Gateway.Workload)
	}
	if _, err := cfg.Validate(); err != nil {
		t.Fatalf("dev config without the CA: %v", err)
	}
	// No gateway: the services stay plain HTTP (payments reaches orders
	// through the gateway only).
	f = mtlsFlags()
	f.gatewayListen = ""
	if f.mtls() {
		t.Error("mTLS without the gateway")
	}
}

// TestDevWorkloadClients: demo-orders and demo-gateway are registered with
// their SPIFFE IDs and may ask tokens for the CA; other clients are not.
func TestDevWorkloadClients(t *testing.T) {
	o := withWorkloadIdentity(storage.Client{ID: devOrdersClient, Audiences: []string{devAuthzAudience}})
	if o.SPIFFEID != "spiffe://gatehouse.local/orders" || strings.Join(o.Audiences, " ") != devAuthzAudience+" "+devCAAudience {
		t.Errorf("demo-orders %+v", o)
	}
	if again := withWorkloadIdentity(o); len(again.Audiences) != 2 {
		t.Errorf("audience added twice: %v", again.Audiences)
	}
	if b := withWorkloadIdentity(storage.Client{ID: "demo-billing", Audiences: []string{paymentsAudience}}); b.SPIFFEID != "" ||
		len(b.Audiences) != 1 {
		t.Errorf("demo-billing got a workload identity: %+v", b)
	}
}

// A printed workload check: "    ✓ desc   expected X, got Y".
var workloadCheckRE = regexp.MustCompile(`^\s+([✓✗!]) (.+?)\s+expected (\S+), got (\S+)$`)

type parsedCheck struct {
	mark, desc, want, got string
}

func parseWorkloadChecks(tour string) []parsedCheck {
	var out []parsedCheck
	sc := bufio.NewScanner(strings.NewReader(tour))
	for sc.Scan() {
		if m := workloadCheckRE.FindStringSubmatch(sc.Text()); m != nil {
			out = append(out, parsedCheck{m[1], m[2], m[3], m[4]})
		}
	}
	return out
}

// TestWorkloadTourPrints: the workload step lists the SVIDs and the checks
// (a check that went otherwise is marked "!"), and its api step goes
// through the gateway; the billing command carries the join token and the
// CA's address and root.
func TestWorkloadTourPrints(t *testing.T) {
	f := mtlsFlags()
	st := devState{DemoBillingSecret: "ghs_b"}
	exp := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	d := mtlsURLs
	d.workload = &workloadReport{fingerprint: "ab12", billingJoin: "jt_1",
		svids: []svidInfo{{id: devSPIFFEID("/orders"), how: "client credentials", expires: exp}},
		checks: []workloadCheck{{desc: "payments -> orders", want: "refused", got: "refused", detail: "orders' policy: no"},
			{ok: true, desc: "billing -> payments", want: "201", got: "500"}}}
	var b strings.Builder
	printTour(&b, f, st, d)
	tour := b.String()
	for _, want := range []string{"11. Workload identity (mTLS)", "https://127.0.0.1:8003", "SVID spiffe://gatehouse.local/orders",
		"expires 2030-01-02T03:04:05Z", "orders' policy: no", "CA root (SHA-256): ab12",
		"DEMO_BILLING_SECRET=ghs_b DEMO_BILLING_JOIN_TOKEN=jt_1 go run ./examples/cmd/billing -payments-url https://127.0.0.1:8092 " +
			"-orders-url https://127.0.0.1:8091 -ca-url https://127.0.0.1:8003 -ca-fingerprint ab12"} {
		if !strings.Contains(tour, want) {
			t.Errorf("tour lacks %q", want)
		}
	}
	checks := parseWorkloadChecks(tour)
	if len(checks) != 2 || checks[0].mark != "✗" || checks[1].mark != "!" {
		t.Fatalf("checks %+v", checks)
	}
	var pay *parsedStep
	for _, s := range parseTour(t, tour) {
		if strings.HasSuffix(s.cmd, "/orders/o-1002/pay") {
			pay = &s
		}
	}
	if pay == nil || !pay.ok || pay.want != http.StatusCreated || !strings.HasPrefix(pay.cmd, `api "$ALICE" -X POST http://127.0.0.1:8000/`) {
		t.Fatalf("pay step %+v", pay)
	}
	// Before the checks ran (no report), the step still prints its api call.
	b.Reset()
	printTour(&b, f, st, mtlsURLs)
	if !strings.Contains(b.String(), "/orders/o-1002/pay") || len(parseWorkloadChecks(b.String())) != 0 {
		t.Errorf("static workload step:\n%s", b.String())
	}
	// Without the CA there is no workload step.
	b.Reset()
	f.caListen = ""
	printTour(&b, f, st, demoURLs{orders: "http://127.0.0.1:8091", payments: "http://127.0.0.1:8092"})
	if strings.Contains(b.String(), "Workload identity") {
		t.Error("workload step without the CA")
	}
}

// checkWorkloadTour checks the workload step of a running gatehouse dev
// (printed after its checks ran): every SVID is shown with its expiry,
// every check went as expected, and a payment through the gateway names
// orders as the paying service.
func checkWorkloadTour(t *testing.T, tour, gatewayURL string, vars map[string]string) {
	t.Helper()
	for _, path := range []string{"/orders", "/payments", "/billing"} {
		re := regexp.MustCompile(`SVID ` + regexp.QuoteMeta(devSPIFFEID(path)) + `\s+expires (\S+),`)
		m := re.FindStringSubmatch(tour)
		if m == nil {
			t.Errorf("no SVID with its expiry for %s", path)
			continue
		}
		if exp, err := time.Parse(time.RFC3339, m[1]); err != nil || time.Until(exp) <= 0 || time.Until(exp) > 25*time.Hour {
			t.Errorf("%s: expiry %s", path, m[1])
		}
	}
	if !strings.Contains(tour, "SVID "+devSPIFFEID("/gateway")) {
		t.Error("the gateway's SVID is not shown")
	}
	checks := parseWorkloadChecks(tour)
	wants := map[string]string{"payments -> orders": "refused", "orders -> payments": "401", "billing (join token identity)": "201",
		"the same join token": "401"}
	if len(checks) != len(wants) {
		t.Fatalf("%d workload checks: %+v", len(checks), checks)
	}
	for _, c := range checks {
		var want string
		for prefix, w := range wants {
			if strings.HasPrefix(c.desc, prefix) {
				want = w
			}
		}
		if c.mark == "!" || c.got != c.want || c.want != want {
			t.Errorf("workload check %q: expected %s, got %s (want %s)", c.desc, c.want, c.got, want)
		}
	}
	for _, s := range []string{`denied by rule "payments-never-calls-orders"`, "invalid_token", "spiffe://gatehouse.local/billing on the connection"} {
		if !strings.Contains(tour, s) {
			t.Errorf("workload step lacks %q", s)
		}
	}
	// carol pays her order through the gateway: payments saw orders'
	// SPIFFE ID on the connection and carol's token inside.
	req, _ := http.NewRequest(http.MethodPost, gatewayURL+"/orders/o-3001/pay", nil)
	req.Header.Set("Authorization", "Bearer "+vars["CAROL"])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var p struct {
		Payer         string `json:"payer"`
		PaidByService string `json:"paid_by_service"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&p); err != nil || resp.StatusCode != http.StatusCreated || p.Payer != "usr_carol" ||
		p.PaidByService != devSPIFFEID("/orders") {
		t.Fatalf("carol pays o-3001: %d %+v %v", resp.StatusCode, p, err)
	}
}

// TestDevUpgradesOldDemoClients: a data directory from before the workload
// demo has demo-orders and demo-gateway without a SPIFFE ID (seeding never
// overwrites a client): dev gives them theirs, once, and keeps the rest.
func TestDevUpgradesOldDemoClients(t *testing.T) {
	dir := t.TempDir()
	st, err := loadDevState(filepath.Join(dir, "dev-secrets.json"))
	if err != nil {
		t.Fatal(err)
	}
	f := devFlags{issuer: "http://localhost:8080", listen: freeAddr(t), adminListen: freeAddr(t), dataDir: dir, algorithm: "ES256"}
	cfg := devConfig(f, st, demoURLs{})
	ctx := context.Background()
	a, err := app.New(ctx, cfg, slog.New(slog.DiscardHandler), app.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	now := time.Now()
	old := []storage.Client{
		{ID: devOrdersClient, Name: "old orders", GrantTypes: []string{"client_credentials"}, Audiences: []string{devAuthzAudience},
			SecretHash: a.Secrets.Sum("s"), CreatedAt: now, UpdatedAt: now},
		{ID: devGatewayClient, Name: "old gateway", GrantTypes: []string{"client_credentials"}, Audiences: []string{ordersAudience},
			SecretHash: a.Secrets.Sum("g"), CreatedAt: now, UpdatedAt: now},
	}
	for _, c := range old {
		if err := a.Store.CreateClient(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	changed, err := upgradeDemoClients(ctx, a)
	if err != nil || strings.Join(changed, ",") != devOrdersClient+","+devGatewayClient {
		t.Fatalf("changed %v, %v", changed, err)
	}
	for _, c := range old {
		got, err := a.Store.GetClient(ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.SPIFFEID != devClientSPIFFEIDs[c.ID] || got.Audiences[len(got.Audiences)-1] != devCAAudience ||
			len(got.Audiences) != 2 || got.Name != c.Name {
			t.Errorf("%s after the upgrade: %+v", c.ID, got)
		}
	}
	if changed, err := upgradeDemoClients(ctx, a); err != nil || len(changed) != 0 {
		t.Errorf("second upgrade changed %v, %v", changed, err)
	}
}
