// Command payments runs the demo payments service on its own, as a separate
// process (gatehouse dev also runs it in-process):
//
//	go run ./examples/cmd/payments -issuer http://localhost:8080 -listen 127.0.0.1:8092 \
//	    -orders-url http://127.0.0.1:8091
//
// It validates tokens locally with the Gatehouse SDK (audience
// https://api.payments.example) and needs no secret.
package main

import (
	"context"
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
	otherURL := flag.String("orders-url", "http://127.0.0.1:8091", "orders base URL")
	cache := flag.String("jwks-cache", "", "optional on-disk JWKS cache file")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	svc, err := demo.NewPayments(demo.Config{Issuer: *issuer, OrdersURL: *otherURL, JWKSCacheFile: *cache, Logger: log})
	if err == nil {
		err = demo.Run(ctx, "payments", *listen, svc, log)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "payments:", err)
		os.Exit(1)
	}
}
