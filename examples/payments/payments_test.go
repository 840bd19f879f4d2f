package payments_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/gatehouse/gatehouse/examples/internal/demotest"
	"github.com/gatehouse/gatehouse/examples/orders"
	"github.com/gatehouse/gatehouse/examples/payments"
	"github.com/gatehouse/gatehouse/sdk/auth"
)

// stack is payments and the real orders service, each with its own verifier
// (same test key, each its own audience), calling each other with the
// caller's token forwarded.
type stack struct {
	t        *testing.T
	m        *demotest.Minter
	orders   *httptest.Server
	payments *httptest.Server

	mu         sync.Mutex
	ordersAuth []string // Authorization headers orders received
}

func newStack(t *testing.T) *stack {
	t.Helper()
	s := &stack{t: t, m: demotest.NewMinter()}
	s.payments = httptest.NewUnstartedServer(nil)
	osvc, err := orders.New(orders.Config{Authenticator: s.m.Verifier(t, orders.Audience),
		PaymentsURL:       "http://" + s.payments.Listener.Addr().String(),
		PaymentsTransport: propagate(t, "http://"+s.payments.Listener.Addr().String())})
	if err != nil {
		t.Fatal(err)
	}
	oh := osvc.Handler()
	s.orders = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.ordersAuth = append(s.ordersAuth, r.Header.Get("Authorization"))
		s.mu.Unlock()
		oh.ServeHTTP(w, r)
	}))
	t.Cleanup(s.orders.Close)
	psvc, err := payments.New(payments.Config{Authenticator: s.m.Verifier(t, payments.Audience), OrdersURL: s.orders.URL,
		OrdersTransport: propagate(t, s.orders.URL)})
	if err != nil {
		t.Fatal(err)
	}
	s.payments.Config.Handler = psvc.Handler()
	s.payments.Start()
	t.Cleanup(s.payments.Close)
	return s
}

// propagate is the SDK's token-forwarding transport, allowed to origin only.
func propagate(t *testing.T, origin string) http.RoundTripper {
	t.Helper()
	rt, err := auth.NewPropagatingTransport(nil, origin)
	if err != nil {
		t.Fatal(err)
	}
	return rt
}

const userScopes = "orders:read orders:write payments:write"

func (s *stack) token(who string) string {
	both := []string{orders.Audience, payments.Audience}
	switch who {
	case "alice":
		return s.m.Mint(demotest.User("usr_alice", []string{"user"}, userScopes, both...))
	case "alice-no-payments-scope":
		return s.m.Mint(demotest.User("usr_alice", []string{"user"}, "orders:read orders:write", both...))
	case "alice-orders-only":
		return s.m.Mint(demotest.User("usr_alice", []string{"user"}, userScopes, orders.Audience))
	case "bob":
		return s.m.Mint(demotest.User("usr_bob", []string{"user"}, userScopes, both...))
	case "carol":
		return s.m.Mint(demotest.User("usr_carol", []string{"admin"}, userScopes, both...))
	case "billing":
		return s.m.Mint(demotest.Token{ClientID: "demo-billing", Scope: "payments:write", Audience: []string{payments.Audience}})
	case "billing-no-scope":
		return s.m.Mint(demotest.Token{ClientID: "demo-billing", Scope: "payments:read", Audience: []string{payments.Audience}})
	case "other-service":
		return s.m.Mint(demotest.Token{ClientID: "demo-service", Scope: "payments:write", Audience: []string{payments.Audience}})
	case "":
		return ""
	}
	s.t.Fatalf("unknown caller %q", who)
	return ""
}

type answer struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func (s *stack) call(base, method, path, who, body string) answer {
	s.t.Helper()
	req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
	if tok := s.token(who); tok != "" {
		req.Header.Set("Authorization", demotest.Bearer(tok))
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, header: resp.Header, body: map[string]any{}, raw: string(b)}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") && len(b) > 0 {
		if err := json.Unmarshal(b, &a.body); err != nil {
			s.t.Fatalf("not JSON: %q", b)
		}
	}
	return a
}

func (s *stack) pay(who, body string) answer {
	return s.call(s.payments.URL, "POST", "/payments", who, body)
}

func TestPayments(t *testing.T) {
	type step struct {
		who, body string
		want      int
		check     func(t *testing.T, a answer)
	}
	errIs := func(code string) func(*testing.T, answer) {
		return func(t *testing.T, a answer) {
			t.Helper()
			if a.body["error"] != code {
				t.Errorf("error %v, want %s (%s)", a.body["error"], code, a.raw)
			}
		}
	}
	challenge := func(sub string) func(*testing.T, answer) {
		return func(t *testing.T, a answer) {
			if h := a.header.Get("WWW-Authenticate"); !strings.Contains(h, sub) {
				t.Errorf("WWW-Authenticate %q lacks %q", h, sub)
			}
		}
	}
	paid := func(payer string, amount float64) func(*testing.T, answer) {
		return func(t *testing.T, a answer) {
			if a.body["payer"] != payer || a.body["amount_cents"] != amount || a.body["id"] == "" {
				t.Errorf("payment %v", a.body)
			}
		}
	}
	order := func(id string) string { return `{"order_id":"` + id + `"}` }
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"ok/alice-pays-her-order", []step{{"alice", order("o-1001"), 201, paid("usr_alice", 4200)}}},
		{"ok/carol-pays-her-order", []step{{"carol", order("o-3001"), 201, paid("usr_carol", 9900)}}},
		{"ok/billing-pays-an-invoice", []step{{"billing", `{"invoice_id":"inv-1","amount_cents":1200}`, 201, paid("demo-billing", 1200)}}},
		{"deny/alice-cannot-pay-bobs-order-she-may-read", []step{{"alice", order("o-2001"), 403, errIs("forbidden")}}},
		{"deny/carol-admin-cannot-pay-others-order", []step{{"carol", order("o-1001"), 403, errIs("forbidden")}}},
		{"deny/bob-cannot-pay-alices-order", []step{{"bob", order("o-1001"), 404, errIs("not_found")}}},
		{"deny/unknown-order", []step{{"alice", order("o-9999"), 404, errIs("not_found")}}},
		{"deny/order-paid-twice", []step{{"alice", order("o-1001"), 201, nil}, {"alice", order("o-1001"), 409, errIs("already_paid")}}},
		{"deny/invoice-paid-twice", []step{
			{"billing", `{"invoice_id":"inv-1","amount_cents":1200}`, 201, nil},
			{"billing", `{"invoice_id":"inv-1","amount_cents":1200}`, 409, errIs("already_paid")},
		}},
		{"deny/no-payments-scope", []step{{"alice-no-payments-scope", order("o-1001"), 403, challenge("insufficient_scope")}}},
		{"deny/billing-without-scope", []step{{"billing-no-scope", `{"invoice_id":"inv-1","amount_cents":1}`, 403, challenge("insufficient_scope")}}},
		{"deny/token-not-for-payments", []step{{"alice-orders-only", order("o-1001"), 401, challenge("invalid_token")}}},
		{"deny/no-token", []step{{"", order("o-1001"), 401, challenge("Bearer")}}},
		{"deny/billing-cannot-pay-an-order", []step{{"billing", order("o-1001"), 403, nil}}},
		{"deny/user-cannot-pay-an-invoice", []step{{"alice", `{"invoice_id":"inv-1","amount_cents":1200}`, 403, nil}}},
		{"deny/other-client-cannot-pay-an-invoice", []step{{"other-service", `{"invoice_id":"inv-1","amount_cents":1200}`, 403, nil}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStack(t)
			for _, st := range tc.steps {
				a := s.pay(st.who, st.body)
				if a.status != st.want {
					t.Fatalf("%s %s: %d, want %d: %s", st.who, st.body, a.status, st.want, a.raw)
				}
				if st.check != nil {
					st.check(t, a)
				}
			}
		})
	}
}

func TestMalformedBodies(t *testing.T) {
	s := newStack(t)
	for name, body := range map[string]string{
		"empty":              ``,
		"not-json":           `order_id=o-1001`,
		"array":              `["o-1001"]`,
		"empty-object":       `{}`,
		"both-ids":           `{"order_id":"o-1001","invoice_id":"inv-1","amount_cents":1}`,
		"unknown-field":      `{"order_id":"o-1001","owner":"usr_alice"}`,
		"trailing-data":      `{"order_id":"o-1001"} {"order_id":"o-1002"}`,
		"trailing-garbage":   `{"order_id":"o-1001"}x`,
		"amount-with-order":  `{"order_id":"o-1001","amount_cents":1}`,
		"path-in-order-id":   `{"order_id":"../orders/o-2001"}`,
		"query-in-order-id":  `{"order_id":"o-1001?owner=usr_bob"}`,
		"upper-case-id":      `{"order_id":"O-1001"}`,
		"long-id":            `{"order_id":"` + strings.Repeat("a", 33) + `"}`,
		"number-id":          `{"order_id":1001}`,
		"fractional-amount":  `{"invoice_id":"inv-9","amount_cents":12.5}`,
		"string-amount":      `{"invoice_id":"inv-9","amount_cents":"1200"}`,
		"negative-amount":    `{"invoice_id":"inv-9","amount_cents":-1}`,
		"zero-amount":        `{"invoice_id":"inv-9","amount_cents":0}`,
		"huge-amount":        `{"invoice_id":"inv-9","amount_cents":100000001}`,
		"overflowing-amount": `{"invoice_id":"inv-9","amount_cents":99999999999999999999}`,
		"missing-amount":     `{"invoice_id":"inv-9"}`,
		"too-large":          `{"order_id":"o-1001","pad":"` + strings.Repeat("x", 5000) + `"}`,
	} {
		t.Run(name, func(t *testing.T) {
			for _, who := range []string{"alice", "billing"} {
				if a := s.pay(who, body); a.status != http.StatusBadRequest || a.body["error"] != "invalid_request" {
					t.Fatalf("%s: %d %s", who, a.status, a.raw)
				}
			}
		})
	}
}

func TestOwnershipCheckPropagatesTheToken(t *testing.T) {
	s := newStack(t)
	tok := s.token("alice")
	req, _ := http.NewRequest("POST", s.payments.URL+"/payments", strings.NewReader(`{"order_id":"o-1002"}`))
	req.Header.Set("Authorization", demotest.Bearer(tok))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("%d", resp.StatusCode)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.ordersAuth) != 1 || s.ordersAuth[0] != "Bearer "+tok {
		t.Fatalf("orders did not see alice's token (%d calls)", len(s.ordersAuth))
	}
}

// TestPayThroughOrders is the whole chain: orders calls payments with
// alice's token, payments asks orders who owns the order with the same
// token, and the order ends up paid.
func TestPayThroughOrders(t *testing.T) {
	s := newStack(t)
	a := s.call(s.orders.URL, "POST", "/orders/o-1001/pay", "alice", "")
	if a.status != http.StatusCreated || a.body["order_id"] != "o-1001" || a.body["payer"] != "usr_alice" {
		t.Fatalf("%d %s", a.status, a.raw)
	}
	if got := s.call(s.orders.URL, "GET", "/orders/o-1001", "alice", "").body["status"]; got != orders.StatusPaid {
		t.Errorf("order status %v", got)
	}
	if a := s.call(s.orders.URL, "POST", "/orders/o-2001/pay", "alice", ""); a.status != http.StatusForbidden {
		t.Errorf("alice paid bob's order through orders: %d", a.status)
	}
	list := s.call(s.payments.URL, "GET", "/payments", "alice", "")
	if ps, _ := list.body["payments"].([]any); list.status != 200 || len(ps) != 1 {
		t.Errorf("alice's payments: %d %s", list.status, list.raw)
	}
	if ps, _ := s.call(s.payments.URL, "GET", "/payments", "bob", "").body["payments"].([]any); len(ps) != 0 {
		t.Errorf("bob sees alice's payments: %v", ps)
	}
}

func TestOrdersDown(t *testing.T) {
	m := demotest.NewMinter()
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	svc, err := payments.New(payments.Config{Authenticator: m.Verifier(t, payments.Audience), OrdersURL: dead.URL,
		OrdersTransport: propagate(t, dead.URL)})
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest("POST", "/payments", strings.NewReader(`{"order_id":"o-1001"}`))
	req.Header.Set("Authorization", demotest.Bearer(m.Mint(demotest.User("usr_alice", nil, userScopes, payments.Audience))))
	rec := httptest.NewRecorder()
	svc.Handler().ServeHTTP(rec, req)
	if rec.Code != http.StatusBadGateway {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	v := demotest.NewMinter().Verifier(t, payments.Audience)
	for name, cfg := range map[string]payments.Config{
		"no-authenticator": {OrdersURL: "http://127.0.0.1:1", OrdersTransport: http.DefaultTransport},
		"no-orders-url":    {Authenticator: v, OrdersTransport: http.DefaultTransport},
		"bad-orders-url":   {Authenticator: v, OrdersURL: "javascript:x", OrdersTransport: http.DefaultTransport},
		"no-transport":     {Authenticator: v, OrdersURL: "http://127.0.0.1:1"},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := payments.New(cfg); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}
