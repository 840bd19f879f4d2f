package e2e

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/examples/billing"
	"github.com/gatehouse/gatehouse/sdk/auth"
)

// TestAliceAndHerOrders acts out the demo of issue 3 end to end: a real
// Gatehouse, the demo orders and payments services protected by the SDK
// Verifier (keys from the IdP's JWKS), user tokens from the demo's terminal
// login (authorization code + PKCE, loopback redirect, form login), and the
// billing job with SDK client credentials. Each ✓ and ✗ is a subtest.
func TestAliceAndHerOrders(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *Env) {
		w := startAliceWorld(t, e)
		alice, bob, carol := w.login(t, "alice"), w.login(t, "bob"), w.login(t, "carol")
		orders, payments := w.ordersURL+"/orders", w.payURL+"/payments"
		expect := func(t *testing.T, r reply, status int) {
			t.Helper()
			if r.status != status {
				t.Fatalf("status %d, want %d: %.300s", r.status, status, r.raw)
			}
		}

		t.Run("ok/alice-reads-her-orders", func(t *testing.T) {
			r := call(t, "GET", orders, alice, "")
			expect(t, r, 200)
			if got := orderIDs(r); got != "o-1001,o-1002" {
				t.Errorf("orders %q", got)
			}
		})
		t.Run("ok/alice-sees-bobs-orders-as-his-manager", func(t *testing.T) {
			r := call(t, "GET", orders+"?owner=usr_bob", alice, "")
			expect(t, r, 200)
			if got := orderIDs(r); got != "o-2001" {
				t.Errorf("orders %q", got)
			}
			expect(t, call(t, "GET", orders+"/o-2001", alice, ""), 200)
		})
		t.Run("deny/alice-cannot-delete-bobs-order", func(t *testing.T) {
			r := call(t, "DELETE", orders+"/o-2001", alice, "")
			expect(t, r, 403)
			if r.body["error"] != "forbidden" {
				t.Errorf("%v", r.body)
			}
			expect(t, call(t, "GET", orders+"/o-2001", bob, ""), 200)
		})
		t.Run("deny/bob-cannot-see-alices-orders", func(t *testing.T) {
			expect(t, call(t, "GET", orders+"?owner=usr_alice", bob, ""), 403)
			expect(t, call(t, "GET", orders+"/o-1001", bob, ""), 404)
		})
		t.Run("ok/alice-pays-her-order", func(t *testing.T) {
			// orders -> payments (alice's token propagated) -> orders (again).
			r := call(t, "POST", orders+"/o-1001/pay", alice, "")
			expect(t, r, 201)
			if r.body["payer"] != "usr_alice" || r.body["order_id"] != "o-1001" || r.body["amount_cents"] != float64(4200) {
				t.Errorf("payment %v", r.body)
			}
			if got := call(t, "GET", orders+"/o-1001", alice, "").body["status"]; got != "paid" {
				t.Errorf("order status %v", got)
			}
			expect(t, call(t, "POST", orders+"/o-1001/pay", alice, ""), 409)
		})
		t.Run("deny/alice-cannot-pay-bobs-order", func(t *testing.T) {
			expect(t, call(t, "POST", orders+"/o-2001/pay", alice, ""), 403)
			// Payments checks ownership itself, whoever calls it.
			r := call(t, "POST", payments, alice, `{"order_id":"o-2001"}`)
			expect(t, r, 403)
			if r.body["error"] != "forbidden" {
				t.Errorf("%v", r.body)
			}
		})
		t.Run("deny/bob-cannot-pay-alices-order", func(t *testing.T) {
			expect(t, call(t, "POST", payments, bob, `{"order_id":"o-1002"}`), 404)
		})
		t.Run("ok/carol-deletes-any-order", func(t *testing.T) {
			expect(t, call(t, "DELETE", orders+"/o-2001", carol, ""), 204)
			expect(t, call(t, "GET", orders+"/o-2001", bob, ""), 404)
			expect(t, call(t, "DELETE", orders+"/o-1002", carol, ""), 204)
		})

		ts, err := auth.NewClientCredentials(auth.ClientCredentialsConfig{TokenURL: e.Issuer + "/oauth/token",
			ClientID: "demo-billing", ClientSecret: e.Secrets["demo-billing"], Scopes: []string{"payments:write"},
			Audience: []string{paymentsAPI}})
		if err != nil {
			t.Fatal(err)
		}
		cfg := billing.Config{TokenSource: ts, PaymentsURL: w.payURL, OrdersURL: w.ordersURL}
		t.Run("ok/billing-creates-payments", func(t *testing.T) {
			res, err := billing.Run(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range res {
				if !r.OK() {
					t.Errorf("%v", r)
				}
			}
			tok, err := ts.Token()
			if err != nil {
				t.Fatal(err)
			}
			e.remember(tok.AccessToken)
			r := call(t, "GET", payments, tok.AccessToken, "")
			if list, _ := r.body["payments"].([]any); r.status != 200 || len(list) != len(res) {
				t.Errorf("billing's payments: %d %.300s", r.status, r.raw)
			}
		})
		t.Run("deny/billing-cannot-read-orders", func(t *testing.T) {
			status, err := billing.TryReadOrders(context.Background(), cfg)
			if err != nil || status != http.StatusUnauthorized {
				t.Fatalf("%d %v", status, err)
			}
			tok, _ := ts.Token()
			r := call(t, "GET", orders, tok.AccessToken, "")
			if h := r.header.Get("WWW-Authenticate"); !strings.Contains(h, "invalid_token") {
				t.Errorf("WWW-Authenticate %q", h)
			}
		})
		t.Run("deny/billing-cannot-get-a-token-for-orders", func(t *testing.T) {
			status, out, _ := e.postForm(t, "/oauth/token", url.Values{"grant_type": {"client_credentials"},
				"scope": {"payments:write"}, "resource": {ordersAPI}}, "demo-billing", e.Secrets["demo-billing"])
			if status != 400 || out["error"] != "invalid_target" {
				t.Fatalf("%d %v", status, out)
			}
		})
		t.Run("deny/billing-cannot-pay-an-order", func(t *testing.T) {
			tok, _ := ts.Token()
			expect(t, call(t, "POST", payments, tok.AccessToken, `{"order_id":"o-3001"}`), 403)
		})
		t.Run("deny/user-cannot-pay-an-invoice", func(t *testing.T) {
			expect(t, call(t, "POST", payments, alice, `{"invoice_id":"inv-9","amount_cents":100}`), 403)
		})
		t.Run("deny/no-token", func(t *testing.T) {
			expect(t, call(t, "GET", orders, "", ""), 401)
			expect(t, call(t, "POST", payments, "", `{"order_id":"o-1001"}`), 401)
		})
		e.assertNoSecretsLogged()
	})
}
