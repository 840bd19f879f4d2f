package orders_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/examples/internal/demotest"
	"github.com/gatehouse/gatehouse/examples/orders"
	"github.com/gatehouse/gatehouse/sdk/auth"
)

const paymentsAud = "https://api.payments.example"

// fakePayments records what orders sends it and answers as told.
type fakePayments struct {
	mu     sync.Mutex
	auth   []string
	bodies []string
	status int
	answer string
}

func (f *fakePayments) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.auth = append(f.auth, r.Header.Get("Authorization"))
	f.bodies = append(f.bodies, r.Method+" "+r.URL.Path+" "+string(b))
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(f.status)
	_, _ = io.WriteString(w, f.answer)
}

func (f *fakePayments) calls() ([]string, []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.auth...), append([]string(nil), f.bodies...)
}

type fixture struct {
	t   *testing.T
	m   *demotest.Minter
	api *httptest.Server
	pay *fakePayments
}

func newFixture(t *testing.T, payStatus int, payAnswer string) *fixture {
	t.Helper()
	m := demotest.NewMinter()
	pay := &fakePayments{status: payStatus, answer: payAnswer}
	ps := httptest.NewServer(pay)
	t.Cleanup(ps.Close)
	svc, err := orders.New(orders.Config{Authenticator: m.Verifier(t, orders.Audience), PaymentsURL: ps.URL,
		PaymentsTransport: propagate(t, ps.URL)})
	if err != nil {
		t.Fatal(err)
	}
	api := httptest.NewServer(svc.Handler())
	t.Cleanup(api.Close)
	return &fixture{t: t, m: m, api: api, pay: pay}
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

const allScopes = "orders:read orders:write payments:write"

func (f *fixture) token(who string) string {
	aud := []string{orders.Audience, paymentsAud}
	switch who {
	case "alice":
		return f.m.Mint(demotest.User("usr_alice", []string{"user"}, allScopes, aud...))
	case "alice-readonly":
		return f.m.Mint(demotest.User("usr_alice", []string{"user"}, "orders:read", aud...))
	case "bob":
		return f.m.Mint(demotest.User("usr_bob", []string{"user"}, allScopes, aud...))
	case "carol":
		return f.m.Mint(demotest.User("usr_carol", []string{"admin"}, allScopes, aud...))
	case "billing": // the real billing token: audience payments only
		return f.m.Mint(demotest.Token{ClientID: "demo-billing", Scope: "payments:write", Audience: []string{paymentsAud}})
	case "service-for-orders": // a client-credentials token that is for orders
		return f.m.Mint(demotest.Token{ClientID: "demo-service", Scope: "orders:read orders:write", Audience: []string{orders.Audience}})
	case "expired":
		t := demotest.User("usr_alice", []string{"user"}, allScopes, aud...)
		t.TTL = -10 * time.Minute
		return f.m.Mint(t)
	case "other-audience":
		return f.m.Mint(demotest.User("usr_alice", []string{"user"}, allScopes, paymentsAud))
	case "":
		return ""
	}
	f.t.Fatalf("unknown caller %q", who)
	return ""
}

type answer struct {
	status int
	header http.Header
	body   map[string]any
}

func (f *fixture) do(method, path, who string) answer {
	f.t.Helper()
	req, _ := http.NewRequest(method, f.api.URL+path, nil)
	if tok := f.token(who); tok != "" {
		req.Header.Set("Authorization", demotest.Bearer(tok))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	a := answer{status: resp.StatusCode, header: resp.Header, body: map[string]any{}}
	b, _ := io.ReadAll(resp.Body)
	if len(b) > 0 && strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(b, &a.body); err != nil {
			f.t.Fatalf("%s %s: not JSON: %q", method, path, b)
		}
	}
	return a
}

func ids(a answer) []string {
	var out []string
	list, _ := a.body["orders"].([]any)
	for _, o := range list {
		out = append(out, o.(map[string]any)["id"].(string))
	}
	return out
}

func TestScenarios(t *testing.T) {
	type step struct {
		method, path, who string
		want              int
		check             func(t *testing.T, a answer)
	}
	wantIDs := func(want ...string) func(*testing.T, answer) {
		return func(t *testing.T, a answer) {
			if got := strings.Join(ids(a), ","); got != strings.Join(want, ",") {
				t.Errorf("orders %q, want %q", got, strings.Join(want, ","))
			}
		}
	}
	wantChallenge := func(substr string) func(*testing.T, answer) {
		return func(t *testing.T, a answer) {
			if h := a.header.Get("WWW-Authenticate"); !strings.Contains(h, substr) {
				t.Errorf("WWW-Authenticate %q lacks %q", h, substr)
			}
		}
	}
	wantError := func(code string) func(*testing.T, answer) {
		return func(t *testing.T, a answer) {
			if a.body["error"] != code {
				t.Errorf("error %v, want %s", a.body["error"], code)
			}
		}
	}
	cases := []struct {
		name  string
		steps []step
	}{
		{"ok/alice-reads-her-orders", []step{{"GET", "/orders", "alice", 200, wantIDs("o-1001", "o-1002")}}},
		{"ok/alice-reads-her-order", []step{{"GET", "/orders/o-1001", "alice", 200, func(t *testing.T, a answer) {
			if a.body["owner"] != "usr_alice" || a.body["amount_cents"] != float64(4200) {
				t.Errorf("order %v", a.body)
			}
		}}}},
		{"ok/alice-sees-bobs-orders-as-his-manager", []step{{"GET", "/orders?owner=usr_bob", "alice", 200, wantIDs("o-2001")}}},
		{"ok/alice-reads-bobs-order-as-his-manager", []step{{"GET", "/orders/o-2001", "alice", 200, nil}}},
		{"ok/bob-reads-his-orders", []step{{"GET", "/orders", "bob", 200, wantIDs("o-2001")}}},
		{"ok/carol-admin-reads-alices-orders", []step{{"GET", "/orders?owner=usr_alice", "carol", 200, wantIDs("o-1001", "o-1002")}}},
		{"ok/alice-deletes-her-order", []step{
			{"DELETE", "/orders/o-1002", "alice", 204, nil},
			{"GET", "/orders", "alice", 200, wantIDs("o-1001")},
		}},
		{"ok/carol-deletes-any-order", []step{
			{"DELETE", "/orders/o-2001", "carol", 204, nil},
			{"DELETE", "/orders/o-1001", "carol", 204, nil},
			{"GET", "/orders/o-2001", "bob", 404, nil},
		}},
		{"deny/bob-cannot-list-alices-orders", []step{{"GET", "/orders?owner=usr_alice", "bob", 403, wantError("forbidden")}}},
		{"deny/bob-cannot-read-alices-order-404", []step{{"GET", "/orders/o-1001", "bob", 404, wantError("not_found")}}},
		{"deny/unknown-order", []step{{"GET", "/orders/o-9999", "alice", 404, wantError("not_found")}}},
		{"deny/alice-cannot-delete-bobs-order", []step{
			{"DELETE", "/orders/o-2001", "alice", 403, wantError("forbidden")},
			{"GET", "/orders/o-2001", "bob", 200, nil},
		}},
		{"deny/bob-cannot-delete-alices-order", []step{
			{"DELETE", "/orders/o-1001", "bob", 404, nil},
			{"GET", "/orders/o-1001", "alice", 200, nil},
		}},
		{"deny/delete-needs-orders-write", []step{{"DELETE", "/orders/o-1002", "alice-readonly", 403, wantChallenge("insufficient_scope")}}},
		{"deny/pay-needs-orders-write", []step{{"POST", "/orders/o-1001/pay", "alice-readonly", 403, wantChallenge("insufficient_scope")}}},
		{"deny/billing-token-is-for-payments-only", []step{{"GET", "/orders", "billing", 401, wantChallenge("invalid_token")}}},
		{"deny/service-token-has-no-end-user", []step{{"GET", "/orders", "service-for-orders", 403, nil}}},
		{"deny/token-for-another-audience", []step{{"GET", "/orders", "other-audience", 401, wantChallenge("invalid_token")}}},
		{"deny/expired-token", []step{{"GET", "/orders", "expired", 401, wantChallenge("invalid_token")}}},
		{"deny/no-token", []step{{"GET", "/orders", "", 401, wantChallenge("Bearer")}}},
		{"deny/alice-cannot-pay-bobs-order", []step{{"POST", "/orders/o-2001/pay", "alice", 403, wantError("forbidden")}}},
		{"deny/bob-cannot-pay-alices-order", []step{{"POST", "/orders/o-1001/pay", "bob", 404, nil}}},
		{"deny/pay-unknown-order", []step{{"POST", "/orders/o-9999/pay", "alice", 404, nil}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, http.StatusCreated, `{"id":"pay-1"}`)
			for _, s := range tc.steps {
				a := f.do(s.method, s.path, s.who)
				if a.status != s.want {
					t.Fatalf("%s %s as %q: status %d, want %d (%v)", s.method, s.path, s.who, a.status, s.want, a.body)
				}
				if s.check != nil {
					s.check(t, a)
				}
			}
			if auths, _ := f.pay.calls(); len(auths) != 0 {
				t.Errorf("payments was called %d times", len(auths))
			}
		})
	}
}

func TestPayPropagatesTheCallersToken(t *testing.T) {
	f := newFixture(t, http.StatusCreated, `{"id":"pay-1","order_id":"o-1001","amount_cents":4200}`)
	req, _ := http.NewRequest("POST", f.api.URL+"/orders/o-1001/pay", nil)
	tok := f.token("alice")
	req.Header.Set("Authorization", demotest.Bearer(tok))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || !strings.Contains(string(b), `"pay-1"`) {
		t.Fatalf("pay: %d %s", resp.StatusCode, b)
	}
	auths, bodies := f.pay.calls()
	if len(auths) != 1 || auths[0] != "Bearer "+tok {
		t.Fatalf("payments did not receive alice's token: %d calls", len(auths))
	}
	if bodies[0] != `POST /payments {"order_id":"o-1001"}` {
		t.Errorf("payments got %q", bodies[0])
	}
	if a := f.do("GET", "/orders/o-1001", "alice"); a.body["status"] != orders.StatusPaid {
		t.Errorf("order not marked paid: %v", a.body)
	}
	if a := f.do("POST", "/orders/o-1001/pay", "alice"); a.status != http.StatusConflict {
		t.Errorf("second payment: %d, want 409", a.status)
	}
	if auths, _ := f.pay.calls(); len(auths) != 1 {
		t.Errorf("payments called again for a paid order")
	}
}

func TestPayPaymentsAnswers(t *testing.T) {
	for _, tc := range []struct {
		name         string
		status       int
		answer, want string
		wantStatus   int
		paid         bool
	}{
		{"refusal-passes-through", 403, `{"error":"forbidden"}`, "forbidden", 403, false},
		{"conflict-passes-through", 409, `{"error":"already_paid"}`, "already_paid", 409, false},
		{"token-refused-is-bad-gateway", 401, `{"error":"invalid_token"}`, "payments_failed", 502, false},
		{"server-error-is-bad-gateway", 500, `{"error":"boom"}`, "payments_failed", 502, false},
		{"non-json-is-bad-gateway", 201, `<html>`, "payments_failed", 502, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, tc.status, tc.answer)
			a := f.do("POST", "/orders/o-1001/pay", "alice")
			if a.status != tc.wantStatus || a.body["error"] != tc.want {
				t.Fatalf("%d %v", a.status, a.body)
			}
			if got := f.do("GET", "/orders/o-1001", "alice").body["status"]; (got == orders.StatusPaid) != tc.paid {
				t.Errorf("status %v", got)
			}
		})
	}
	t.Run("payments-down", func(t *testing.T) {
		m := demotest.NewMinter()
		dead := httptest.NewServer(http.NotFoundHandler())
		dead.Close()
		svc, err := orders.New(orders.Config{Authenticator: m.Verifier(t, orders.Audience), PaymentsURL: dead.URL,
			PaymentsTransport: propagate(t, dead.URL)})
		if err != nil {
			t.Fatal(err)
		}
		req := httptest.NewRequest("POST", "/orders/o-1001/pay", nil)
		req.Header.Set("Authorization", demotest.Bearer(m.Mint(demotest.User("usr_alice", nil, allScopes, orders.Audience))))
		rec := httptest.NewRecorder()
		svc.Handler().ServeHTTP(rec, req)
		if rec.Code != http.StatusBadGateway {
			t.Fatalf("%d %s", rec.Code, rec.Body)
		}
	})
}

func TestNewRejectsBadConfig(t *testing.T) {
	v := demotest.NewMinter().Verifier(t, orders.Audience)
	for name, cfg := range map[string]orders.Config{
		"no-authenticator":  {},
		"bad-payments-url":  {Authenticator: v, PaymentsURL: "ftp://x", PaymentsTransport: http.DefaultTransport},
		"no-transport":      {Authenticator: v, PaymentsURL: "http://127.0.0.1:1"},
		"relative-payments": {Authenticator: v, PaymentsURL: "/payments", PaymentsTransport: http.DefaultTransport},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := orders.New(cfg); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}
