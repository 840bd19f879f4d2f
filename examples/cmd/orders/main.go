// Command orders runs the demo orders service on its own, as a separate
// process (gatehouse dev also runs it in-process):
//
//	go run ./examples/cmd/orders -issuer http://localhost:8080 -listen 127.0.0.1:8091 \
//	    -payments-url http://127.0.0.1:8092
//
// It validates tokens locally with the Gatehouse SDK (audience
// https://api.orders.example) and needs no secret.
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
	listen := flag.String("listen", "127.0.0.1:8091", "listen address")
	otherURL := flag.String("payments-url", "http://127.0.0.1:8092", "payments base URL")
	cache := flag.String("jwks-cache", "", "optional on-disk JWKS cache file")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	svc, err := demo.NewOrders(demo.Config{Issuer: *issuer, PaymentsURL: *otherURL, JWKSCacheFile: *cache, Logger: log})
	if err == nil {
		err = demo.Run(ctx, "orders", *listen, svc, log)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "orders:", err)
		os.Exit(1)
	}
}
