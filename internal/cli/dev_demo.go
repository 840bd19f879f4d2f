package cli

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/gatehouse/gatehouse/examples/demo"
	"github.com/gatehouse/gatehouse/internal/app"
)

// API identifiers (audiences) of the demo services.
const (
	ordersAudience   = "https://api.orders.example"
	paymentsAudience = "https://api.payments.example"
)

// demoURLs are the base URLs of the running demo services ("" when off):
// https:// when they talk mutual TLS. workload, when not nil, is what the
// tour's workload identity step reports (checked at start).
type demoURLs struct {
	orders, payments string
	workload         *workloadReport
}

// demoListeners are the bound listeners of the demo services.
type demoListeners struct {
	orders, payments net.Listener
	urls             demoURLs
}

// listenDemo binds the demo services' addresses up front, so that a port
// conflict fails `gatehouse dev` at once. Payments needs orders (it asks it
// who owns an order), so it runs only when orders does.
func listenDemo(f devFlags) (demoListeners, error) {
	var d demoListeners
	if f.ordersListen == "" {
		return d, nil
	}
	ln, err := net.Listen("tcp", f.ordersListen)
	if err != nil {
		return d, fmt.Errorf("orders listen: %w", err)
	}
	scheme := "http"
	if f.mtls() {
		scheme = "https"
	}
	d.orders, d.urls.orders = ln, scheme+baseURL(ln)[len("http"):]
	if f.paymentsListen != "" {
		ln, err := net.Listen("tcp", f.paymentsListen)
		if err != nil {
			d.close()
			return demoListeners{}, fmt.Errorf("payments listen: %w", err)
		}
		d.payments, d.urls.payments = ln, scheme+baseURL(ln)[len("http"):]
	}
	return d, nil
}

func (d demoListeners) close() {
	for _, ln := range []net.Listener{d.orders, d.payments} {
		if ln != nil {
			_ = ln.Close()
		}
	}
}

// baseURL is http://host:port of ln, with 127.0.0.1 for a wildcard address.
func baseURL(ln net.Listener) string {
	a := ln.Addr().(*net.TCPAddr)
	host := a.IP.String()
	if a.IP.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, fmt.Sprint(a.Port))
}

// demoStart is how startDemo runs the services.
type demoStart struct {
	issuer string
	authz  demo.AuthzConfig
	// workload, when set, makes the services talk mutual TLS with these
	// identities; ordersVia is then how payments reaches orders (the
	// gateway: the policy lets payments call no service).
	workload  *demo.WorkloadConfig
	ordersVia string
}

// startDemo runs the demo services on d under g until ctx ends. It is
// called once the identity provider serves: each service has its own SDK
// Verifier for the dev issuer, which fetches the JWKS over HTTP as any
// service would. It waits (bounded) for their keys so the tour works at
// once, and returns a function releasing the verifiers.
func startDemo(ctx context.Context, g *errgroup.Group, d demoListeners, ds demoStart, log *slog.Logger) (func(), error) {
	if d.orders == nil {
		return func() {}, nil
	}
	cfg := demo.Config{Issuer: ds.issuer, OrdersURL: d.urls.orders, PaymentsURL: d.urls.payments, Authz: ds.authz,
		Workload: ds.workload, Logger: log.With("component", "demo-services")}
	if ds.ordersVia != "" {
		cfg.OrdersURL = ds.ordersVia
	}
	var svcs []*demo.Service
	release := func() {
		for _, s := range svcs {
			s.Close()
		}
	}
	orders, err := demo.NewOrders(cfg)
	if err != nil {
		return release, fmt.Errorf("orders: %w", err)
	}
	svcs = append(svcs, orders)
	g.Go(func() error { return orders.Serve(ctx, d.orders) })
	if d.payments != nil {
		payments, err := demo.NewPayments(cfg)
		if err != nil {
			return release, fmt.Errorf("payments: %w", err)
		}
		svcs = append(svcs, payments)
		g.Go(func() error { return payments.Serve(ctx, d.payments) })
	}
	wctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	for _, s := range svcs {
		if err := s.Verifier.WaitReady(wctx); err != nil && ctx.Err() == nil {
			log.Warn("demo services have no signing keys yet; they refuse requests until they do", "err", err)
			break
		}
	}
	if orders.Replicate != nil {
		// The authorization service learns who owns which order and who
		// manages whom; it may still be fetching the IdP's keys (it then
		// refuses orders' token), so retry for a while.
		var err error
		for ctx.Err() == nil {
			var rev string
			if rev, err = orders.Replicate(wctx); err == nil {
				log.Info("orders replicated its relationships to the authorization service", "revision", rev)
				break
			}
			if wctx.Err() != nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err != nil && ctx.Err() == nil {
			return release, fmt.Errorf("orders: replicate relationships: %w", err)
		}
	}
	return release, nil
}

// warnStaleDemoData warns when the data directory predates the orders demo:
// seeding never overwrites existing clients and users, so an old demo-cli
// cannot ask for the demo APIs.
func warnStaleDemoData(ctx context.Context, a *app.App, dataDir string, log *slog.Logger) {
	c, err := a.Store.GetClient(ctx, "demo-cli")
	if err != nil {
		return
	}
	if !slices.Contains(c.Audiences, paymentsAudience) || !slices.Contains(c.Scopes, "payments:write") {
		log.Warn("the data directory predates the orders demo; delete it to start over", "data_dir", dataDir)
	}
	if g, err := a.Store.GetClient(ctx, devGatewayClient); err == nil && !slices.Contains(g.GrantTypes, "client_credentials") {
		// Also too old for the workload demo (its SVID needs the grant).
		log.Warn("the data directory predates the authorization service demo: the gateway cannot ask it (deletes are refused); delete it to start over",
			"data_dir", dataDir)
	}
}
