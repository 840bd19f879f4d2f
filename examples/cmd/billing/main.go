// Command billing runs the demo billing job once: it pays a fixed batch of
// invoices with its own client-credentials token (client demo-billing,
// audience https://api.payments.example, scope payments:write), then shows
// that the same token cannot read orders.
//
//	DEMO_BILLING_SECRET=... go run ./examples/cmd/billing
//
// The client secret comes from the environment only (never a flag, which
// other users of the machine could read); `gatehouse dev` prints it.
//
// With -ca-url the job first gets its own workload identity (SVID
// spiffe://<trust domain>/billing) from the Gatehouse CA with a single-use
// join token (DEMO_BILLING_JOIN_TOKEN), then calls payments (https://) over
// mutual TLS, its client-credentials token alongside:
//
//	DEMO_BILLING_SECRET=... DEMO_BILLING_JOIN_TOKEN=... go run ./examples/cmd/billing \
//	    -ca-url https://127.0.0.1:8003 -ca-fingerprint <hex> -payments-url https://127.0.0.1:8092
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/examples/billing"
	"github.com/gatehouse/gatehouse/examples/demo"
	"github.com/gatehouse/gatehouse/sdk/auth"
)

func main() {
	issuer := flag.String("issuer", "http://localhost:8080", "Gatehouse issuer URL")
	clientID := flag.String("client-id", "demo-billing", "client id")
	paymentsURL := flag.String("payments-url", "http://127.0.0.1:8092", "payments base URL")
	ordersURL := flag.String("orders-url", "http://127.0.0.1:8091", "orders base URL")
	ca := demo.CAFlags(flag.CommandLine)
	flag.Parse()
	if err := run(*issuer, *clientID, os.Getenv("DEMO_BILLING_SECRET"), *paymentsURL, *ordersURL, *ca); err != nil {
		fmt.Fprintln(os.Stderr, "billing:", err)
		os.Exit(1)
	}
}

func run(issuer, clientID, secret, paymentsURL, ordersURL string, ca demo.CA) error {
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
	if ca.Enabled() {
		token := os.Getenv("DEMO_BILLING_JOIN_TOKEN")
		if token == "" {
			return errors.New("set DEMO_BILLING_JOIN_TOKEN with -ca-url (gatehouse dev prints one; each is single use)")
		}
		id, err := demo.NewIdentity(ctx, ca, demo.Credential{JoinToken: token})
		if err != nil {
			return fmt.Errorf("workload identity: %w", err)
		}
		defer id.Close()
		svid, err := id.GetX509SVID()
		if err != nil {
			return err
		}
		fmt.Printf("✓ SVID %s (join token), expires %s\n", svid.ID, svid.Certificates[0].NotAfter.UTC().Format(time.RFC3339))
		// Payments, and orders to show that it refuses us: the server
		// must present one of these identities.
		rt, err := demo.ClientTransport(id, demo.PaymentsPath, demo.OrdersPath)
		if err != nil {
			return err
		}
		cfg.HTTPClient = &http.Client{Transport: rt, Timeout: 10 * time.Second}
	}
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
	case err != nil && ca.Enabled():
		// Over mTLS orders' policy refuses the billing identity before
		// any token is looked at.
		fmt.Printf("✓ GET /orders refused: orders does not accept the billing identity (%v)\n", err)
	case err != nil:
		return err
	case status/100 == 2:
		fmt.Printf("✗ GET /orders answered %d: the billing token can read orders (it must not)\n", status)
	default:
		fmt.Printf("✓ GET /orders refused with %d: the billing token is for payments only\n", status)
	}
	return nil
}
