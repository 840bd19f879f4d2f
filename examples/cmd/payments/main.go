// Command payments runs the demo payments service on its own, as a separate
// process (gatehouse dev also runs it in-process):
//
//	go run ./examples/cmd/payments -issuer http://localhost:8080 -listen 127.0.0.1:8092 \
//	    -orders-url http://127.0.0.1:8091
//
// It validates tokens locally with the Gatehouse SDK (audience
// https://api.payments.example) and needs no secret.
//
// With -ca-url it serves mutual TLS with its own SVID (SPIFFE ID
// spiffe://<trust domain>/payments), obtained from the Gatehouse workload
// CA with a single-use join token (in DEMO_PAYMENTS_JOIN_TOKEN; an
// administrator creates it with `gatehouse join-tokens create`); it then
// accepts only the callers the CA's policy allows:
//
//	DEMO_PAYMENTS_JOIN_TOKEN=... go run ./examples/cmd/payments -ca-url https://127.0.0.1:8003 \
//	    -ca-fingerprint <hex> -orders-url http://127.0.0.1:8000
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
	listen := flag.String("listen", "127.0.0.1:8092", "listen address")
	otherURL := flag.String("orders-url", "http://127.0.0.1:8091", "orders base URL (with -ca-url: the gateway's, e.g. http://127.0.0.1:8000)")
	cache := flag.String("jwks-cache", "", "optional on-disk JWKS cache file")
	ca := demo.CAFlags(flag.CommandLine)
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, demo.Config{Issuer: *issuer, OrdersURL: *otherURL, JWKSCacheFile: *cache, Logger: log}, *ca, *listen, log); err != nil {
		fmt.Fprintln(os.Stderr, "payments:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, cfg demo.Config, ca demo.CA, listen string, log *slog.Logger) error {
	if ca.Enabled() {
		token := os.Getenv("DEMO_PAYMENTS_JOIN_TOKEN")
		if token == "" {
			return errors.New("set DEMO_PAYMENTS_JOIN_TOKEN with -ca-url (a single-use join token for spiffe://<trust domain>/payments)")
		}
		ca.Logger = log
		id, err := demo.NewIdentity(ctx, ca, demo.Credential{JoinToken: token})
		if err != nil {
			return err
		}
		defer id.Close()
		cfg.Workload = &demo.WorkloadConfig{Payments: id}
	}
	svc, err := demo.NewPayments(cfg)
	if err != nil {
		return err
	}
	return demo.Run(ctx, "payments", listen, svc, log)
}
