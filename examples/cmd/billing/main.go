// Command billing runs the demo billing job once: it pays a fixed batch of
// invoices with its own client-credentials token (client demo-billing,
// audience https://api.payments.example, scope payments:write), then shows
// that the same token cannot read orders.
//
//	DEMO_BILLING_SECRET=... go run ./examples/cmd/billing
//
// The client secret comes from the environment only (never a flag, which
// other users of the machine could read); `gatehouse dev` prints it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/examples/billing"
	"github.com/gatehouse/gatehouse/sdk/auth"
)

func main() {
	issuer := flag.String("issuer", "http://localhost:8080", "Gatehouse issuer URL")
	clientID := flag.String("client-id", "demo-billing", "client id")
	paymentsURL := flag.String("payments-url", "http://127.0.0.1:8092", "payments base URL")
	ordersURL := flag.String("orders-url", "http://127.0.0.1:8091", "orders base URL")
	flag.Parse()
	if err := run(*issuer, *clientID, os.Getenv("DEMO_BILLING_SECRET"), *paymentsURL, *ordersURL); err != nil {
		fmt.Fprintln(os.Stderr, "billing:", err)
		os.Exit(1)
	}
}

func run(issuer, clientID, secret, paymentsURL, ordersURL string) error {
	if secret == "" {
		return errors.New("set DEMO_BILLING_SECRET (gatehouse dev prints it)")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	ts, err := auth.NewClientCredentials(auth.ClientCredentialsConfig{
		TokenURL: strings.TrimSuffix(issuer, "/") + "/oauth/token", ClientID: clientID, ClientSecret: secret,
		Scopes: []string{"payments:write"}, Audience: []string{"https://api.payments.example"}})
	if err != nil {
		return err
	}
	cfg := billing.Config{TokenSource: ts, PaymentsURL: paymentsURL, OrdersURL: ordersURL}
	results, err := billing.Run(ctx, cfg)
	if err != nil {
		return err
	}
	for _, r := range results {
		mark := "✓"
		if !r.OK() {
			mark = "✗"
		}
		fmt.Println(mark, r)
	}
	status, err := billing.TryReadOrders(ctx, cfg)
	switch {
	case err != nil:
		return err
	case status/100 == 2:
		fmt.Printf("✗ GET /orders answered %d: the billing token can read orders (it must not)\n", status)
	default:
		fmt.Printf("✓ GET /orders refused with %d: the billing token is for payments only\n", status)
	}
	return nil
}
