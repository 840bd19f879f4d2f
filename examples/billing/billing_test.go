package billing_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/gatehouse/gatehouse/examples/billing"
	"github.com/gatehouse/gatehouse/examples/internal/demotest"
	"github.com/gatehouse/gatehouse/examples/orders"
	"github.com/gatehouse/gatehouse/examples/payments"
	"github.com/gatehouse/gatehouse/sdk/auth"
)

// services starts orders and payments trusting m's key and returns their
// URLs.
func services(t testing.TB, m *demotest.Minter) (ordersURL, paymentsURL string) {
	ps := httptest.NewUnstartedServer(nil)
	pURL := "http://" + ps.Listener.Addr().String()
	toPayments, _ := auth.NewPropagatingTransport(nil, pURL)
	osvc, err := orders.New(orders.Config{Authenticator: m.Verifier(t, orders.Audience), PaymentsURL: pURL, PaymentsTransport: toPayments})
	if err != nil {
		t.Fatal(err)
	}
	os := httptest.NewServer(osvc.Handler())
	t.Cleanup(os.Close)
	toOrders, _ := auth.NewPropagatingTransport(nil, os.URL)
	psvc, err := payments.New(payments.Config{Authenticator: m.Verifier(t, payments.Audience), OrdersURL: os.URL, OrdersTransport: toOrders})
	if err != nil {
		t.Fatal(err)
	}
	ps.Config.Handler = psvc.Handler()
	ps.Start()
	t.Cleanup(ps.Close)
	return os.URL, ps.URL
}

func billingToken(m *demotest.Minter) oauth2.TokenSource {
	return oauth2.StaticTokenSource(&oauth2.Token{AccessToken: m.Mint(demotest.Token{ClientID: "demo-billing",
		Scope: "payments:write", Audience: []string{payments.Audience}}), TokenType: "Bearer"})
}

func TestRunPaysInvoicesOnce(t *testing.T) {
	m := demotest.NewMinter()
	ou, pu := services(t, m)
	cfg := billing.Config{TokenSource: billingToken(m), PaymentsURL: pu, OrdersURL: ou}
	res, err := billing.Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != len(billing.DemoInvoices()) {
		t.Fatalf("%d results", len(res))
	}
	for i, r := range res {
		if !r.OK() || r.PaymentID != fmt.Sprintf("pay-%d", i+1) {
			t.Errorf("%v", r)
		}
	}
	res, err = billing.Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.OK() || r.Status != http.StatusConflict {
			t.Errorf("paid twice: %v", r)
		}
	}
}

func TestBillingCannotReadOrders(t *testing.T) {
	m := demotest.NewMinter()
	ou, pu := services(t, m)
	status, err := billing.TryReadOrders(context.Background(), billing.Config{TokenSource: billingToken(m), PaymentsURL: pu, OrdersURL: ou})
	if err != nil || status != http.StatusUnauthorized {
		t.Fatalf("%d %v", status, err)
	}
}

func TestRefusalsAndFailures(t *testing.T) {
	m := demotest.NewMinter()
	ou, pu := services(t, m)
	t.Run("user-token-refused", func(t *testing.T) {
		ts := oauth2.StaticTokenSource(&oauth2.Token{AccessToken: m.Mint(demotest.User("usr_alice", nil, "payments:write", payments.Audience))})
		res, err := billing.Run(context.Background(), billing.Config{TokenSource: ts, PaymentsURL: pu, Invoices: billing.DemoInvoices()[:1]})
		if err != nil || len(res) != 1 || res[0].Status != http.StatusForbidden || !strings.Contains(res[0].String(), "refused") {
			t.Fatalf("%v %v", res, err)
		}
	})
	t.Run("token-endpoint-down", func(t *testing.T) {
		ts := oauth2.ReuseTokenSource(nil, failing{})
		res, err := billing.Run(context.Background(), billing.Config{TokenSource: ts, PaymentsURL: pu, Invoices: billing.DemoInvoices()[:1]})
		if err != nil || len(res) != 1 || !errors.Is(res[0].Err, errDown) || res[0].OK() {
			t.Fatalf("%v %v", res, err)
		}
	})
	t.Run("config", func(t *testing.T) {
		if _, err := billing.Run(context.Background(), billing.Config{PaymentsURL: pu}); err == nil {
			t.Error("no token source accepted")
		}
		if _, err := billing.Run(context.Background(), billing.Config{TokenSource: billingToken(m)}); err == nil {
			t.Error("no payments URL accepted")
		}
		if _, err := billing.TryReadOrders(context.Background(), billing.Config{TokenSource: billingToken(m)}); err == nil {
			t.Error("no orders URL accepted")
		}
		if _, err := billing.Run(context.Background(), billing.Config{TokenSource: billingToken(m), PaymentsURL: "ftp://x"}); err == nil {
			t.Error("bad URL accepted")
		}
	})
	_ = ou
}

var errDown = errors.New("token endpoint down")

type failing struct{}

func (failing) Token() (*oauth2.Token, error) { return nil, errDown }
