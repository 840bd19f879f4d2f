// Command orders runs the demo orders service on its own, as a separate
// process (gatehouse dev also runs it in-process):
//
//	go run ./examples/cmd/orders -issuer http://localhost:8080 -listen 127.0.0.1:8091 \
//	    -payments-url http://127.0.0.1:8092
//
// It validates tokens locally with the Gatehouse SDK (audience
// https://api.orders.example) and needs no secret.
//
// With -ca-url it serves mutual TLS with its own SVID (SPIFFE ID
// spiffe://<trust domain>/orders), obtained from the Gatehouse workload CA
// with the client credentials of demo-orders (secret in DEMO_ORDERS_SECRET),
// and calls payments (then https://) over mTLS:
//
//	DEMO_ORDERS_SECRET=... go run ./examples/cmd/orders -ca-url https://127.0.0.1:8003 \
//	    -ca-fingerprint <hex> -payments-url https://127.0.0.1:8092
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/gatehouse/gatehouse/examples/demo"
)

func main() {
	issuer := flag.String("issuer", "http://localhost:8080", "Gatehouse issuer URL")
	listen := flag.String("listen", "127.0.0.1:8091", "listen address")
	otherURL := flag.String("payments-url", "http://127.0.0.1:8092", "payments base URL")
	cache := flag.String("jwks-cache", "", "optional on-disk JWKS cache file")
	clientID := flag.String("client-id", "demo-orders", "client id for the workload CA (with -ca-url)")
	ca := demo.CAFlags(flag.CommandLine)
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, demo.Config{Issuer: *issuer, PaymentsURL: *otherURL, JWKSCacheFile: *cache, Logger: log}, *ca, *clientID,
		*listen, log); err != nil {
		fmt.Fprintln(os.Stderr, "orders:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, cfg demo.Config, ca demo.CA, clientID, listen string, log *slog.Logger) error {
	if ca.Enabled() {
		secret := os.Getenv("DEMO_ORDERS_SECRET")
		if secret == "" {
			return errors.New("set DEMO_ORDERS_SECRET with -ca-url (gatehouse dev prints it)")
		}
		ca.Logger = log
		id, err := demo.NewIdentity(ctx, ca, demo.Credential{Issuer: cfg.Issuer, ClientID: clientID, ClientSecret: secret})
		if err != nil {
			return err
		}
		defer id.Close()
		cfg.Workload = &demo.WorkloadConfig{Orders: id}
	}
	svc, err := demo.NewOrders(cfg)
	if err != nil {
		return err
	}
	return demo.Run(ctx, "orders", listen, svc, log)
}
