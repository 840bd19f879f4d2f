package payments_test

import (
	"fmt"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/examples/internal/demotest"
	"github.com/gatehouse/gatehouse/examples/payments"
	"github.com/gatehouse/gatehouse/sdk/auth"
)

// The billing job pays an invoice with its own token; a user may not, and a
// body with an unknown field is refused.
func Example() {
	m := demotest.NewMinter() // test tokens (HS256); a real service trusts Gatehouse's JWKS
	v, err := m.NewVerifier(payments.Audience)
	if err != nil {
		panic(err)
	}
	defer v.Close()
	toOrders, err := auth.NewPropagatingTransport(nil, "http://127.0.0.1:8091")
	if err != nil {
		panic(err)
	}
	svc, err := payments.New(payments.Config{Authenticator: v, OrdersURL: "http://127.0.0.1:8091", OrdersTransport: toOrders,
		Now: func() time.Time { return time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC) }})
	if err != nil {
		panic(err)
	}
	billing := m.Mint(demotest.Token{ClientID: "demo-billing", Scope: "payments:write", Audience: []string{payments.Audience}})
	alice := m.Mint(demotest.User("usr_alice", []string{"user"}, "payments:write", payments.Audience))
	post := func(tok, body string) {
		req := httptest.NewRequest("POST", "/payments", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		rec := httptest.NewRecorder()
		svc.Handler().ServeHTTP(rec, req)
		fmt.Print(rec.Code, " ", rec.Body.String())
	}
	post(billing, `{"invoice_id":"inv-1","amount_cents":1200}`)
	post(alice, `{"invoice_id":"inv-2","amount_cents":1200}`)
	post(billing, `{"invoice_id":"inv-3","amount_cents":1200,"currency":"EUR"}`)
	// Output:
	// 201 {"id":"pay-1","invoice_id":"inv-1","amount_cents":1200,"payer":"demo-billing","client_id":"demo-billing","created_at":"2026-11-27T12:00:00Z"}
	// 403 {"error":"forbidden","error_description":"invoices are paid by the billing service, not by users"}
	// 400 {"error":"invalid_request","error_description":"json: unknown field \"currency\""}
}
