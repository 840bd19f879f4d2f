package e2e

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/examples/demo"
	"github.com/gatehouse/gatehouse/examples/orders"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/gateway"
	"github.com/gatehouse/gatehouse/sdk/auth"
	"github.com/gatehouse/gatehouse/sdk/authz"
)

// forEachAuthzBackend runs fn against a fresh Gatehouse with the
// authorization service (setup s) on every storage backend.
func forEachAuthzBackend(t *testing.T, s azSetup, fn func(t *testing.T, az *azEnv)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			driver, dsn := b.dsn(t)
			fn(t, newAuthzEnv(t, driver, dsn, s))
		})
	}
}

// azWorld is the Alice world wired as gatehouse dev wires it with the
// authorization service: orders delegates its azDecisions through sdk/authz
// (its relationships replicated at start), payments behind it, and a gateway
// whose DELETE route asks the service before orders sees the request.
type azWorld struct {
	*azEnv
	alice     *aliceWorld // for login
	ordersURL string
	gw        *httptest.Server
	ordersLog *upstreamLog
	revision  string // what Replicate returned
}

// azOrders is the orders service wired as examples/demo.NewOrders wires it
// with Config.Authz (its own verifier, its client-credentials token for the
// authz API sent only there, sdk/authz deciding and replicating), except for
// the sdk/authz timeout: demo.AuthzConfig has no Timeout and sdk/authz's
// 250ms default made decisions time out (deny, 404) on a loaded CI machine.
type azOrders struct {
	svc      *orders.Service
	verifier *auth.Verifier
}

func newAzOrders(t *testing.T, e *Env, authzURL, payURL string, log *slog.Logger) *azOrders {
	t.Helper()
	v, err := auth.NewVerifier(auth.VerifierConfig{Issuers: []auth.IssuerConfig{{Issuer: e.Issuer, Audience: orders.Audience}},
		Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	ts, err := auth.NewClientCredentials(auth.ClientCredentialsConfig{TokenURL: e.Issuer + "/oauth/token", ClientID: authzOrdersApp,
		ClientSecret: e.Secrets[authzOrdersApp], Scopes: []string{"authz:check", "authz:write"}, Audience: []string{authzAudience}})
	if err != nil {
		t.Fatal(err)
	}
	rt, err := auth.NewServiceTransport(nil, ts, authzURL)
	if err != nil {
		t.Fatal(err)
	}
	c, err := authz.New(authz.Config{URL: authzURL, HTTPClient: &http.Client{Transport: rt}, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	pay, err := auth.NewPropagatingTransport(nil, payURL)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := orders.New(orders.Config{Authenticator: v, PaymentsURL: payURL, PaymentsTransport: pay,
		Logger: log.With("service", "orders"), Authorizer: c, Relationships: c})
	if err != nil {
		t.Fatal(err)
	}
	return &azOrders{svc: svc, verifier: v}
}

// startAzWorld seeds the demo users and clients and starts the services.
func startAzWorld(t *testing.T, az *azEnv) *azWorld {
	t.Helper()
	e := az.Env
	e.seedAlice(t)
	w := &azWorld{azEnv: az, alice: &aliceWorld{e: e}, ordersLog: &upstreamLog{}}
	ordersSrv, payments := httptest.NewUnstartedServer(nil), httptest.NewUnstartedServer(nil)
	w.ordersURL = "http://" + ordersSrv.Listener.Addr().String()
	payURL := "http://" + payments.Listener.Addr().String()
	log := slog.New(slog.NewJSONHandler(e.Logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg := demo.Config{Issuer: e.Issuer, OrdersURL: w.ordersURL, PaymentsURL: payURL, Logger: log}
	o := newAzOrders(t, e, az.authz.URL, payURL, log)
	p, err := demo.NewPayments(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	ordersSrv.Config.Handler, payments.Config.Handler = w.ordersLog.wrap(o.svc.Handler()), p.Handler
	ordersSrv.Start()
	payments.Start()
	t.Cleanup(ordersSrv.Close)
	t.Cleanup(payments.Close)

	g, err := gateway.New(azGateway(az.authz.URL, e.Secrets[authzGatewayApp], w.ordersURL),
		gateway.Deps{Issuer: e.Issuer, Log: log.With("component", "gateway")})
	if err != nil {
		t.Fatalf("gateway: %v", err)
	}
	t.Cleanup(g.Close)
	w.gw = httptest.NewServer(g)
	t.Cleanup(w.gw.Close)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, v := range []*auth.Verifier{o.verifier, p.Verifier} {
		if err := v.WaitReady(ctx); err != nil {
			t.Fatalf("the services never got the issuer's keys: %v", err)
		}
	}
	if err := g.WaitReady(ctx); err != nil {
		t.Fatalf("the gateway never got the issuer's keys: %v", err)
	}
	if w.revision, err = o.svc.Replicate(ctx); err != nil {
		t.Fatalf("replicating the orders' relationships: %v", err)
	}
	if w.revision == "" {
		t.Fatal("Replicate returned no revision")
	}
	return w
}

// azGateway is the dev gateway's delegated DELETE route alone: the caller's
// token must be for orders with orders:write, and the authorization service
// must allow "delete" on order <second path segment>.
func azGateway(authzURL, secret, ordersURL string) config.GatewayConfig {
	g := config.Default().Gateway
	g.ReloadInterval = 0
	g.Authz = config.GatewayAuthz{URL: authzURL, ClientID: authzGatewayApp, ClientSecret: secret, Audience: authzAudience,
		Timeout: config.Duration(5 * time.Second)} // CacheTTL 0: every request is asked
	write := config.GatewayAuth{Mode: "jwt", Audience: ordersAPI, ScopesAll: []string{"orders:write"}}
	g.Routes = []config.GatewayRoute{{Name: "orders-delete", PathPrefix: "/orders", Methods: []string{"DELETE"},
		Upstreams: []string{ordersURL}, Auth: write, Token: "forward",
		Delegate: &config.GatewayDelegate{Action: "delete", ResourceType: "order", ResourceIDSegment: 2}}}
	return g
}

// waitPrincipals waits until the service verifies end-user tokens as
// principals (its principal verifiers have the issuer's keys): alice may
// read her own order.
func (w *azWorld) waitPrincipals(t *testing.T, alice string) {
	t.Helper()
	c := azSDK(t, w.authz.URL, w.opsHTTP(t))
	deadline := time.Now().Add(20 * time.Second)
	for {
		d := c.Authorize(t.Context(), authz.Request{Principal: authz.Principal{Token: alice}, Action: "read",
			Resource: authz.Resource{Type: "order", ID: "o-1001"}, AtLeastAsFresh: w.revision})
		if d.Allow {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("alice's token never verified as a principal: %+v", d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
