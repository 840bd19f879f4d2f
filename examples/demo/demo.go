// Package demo wires the demo services of "Alice and her orders" the way a
// real deployment would: each service gets its own SDK Verifier for its own
// audience, trusting the Gatehouse issuer (keys fetched from its JWKS over
// HTTP), and a propagating transport allowed to reach only the other
// service. `gatehouse dev` and the commands in examples/cmd use it.
//
// With Config.Workload each service also has a workload identity (an X.509
// SVID, sdk/workload): it serves mutual TLS, accepts only the callers the
// workload policy allows (per connection, then per method and path), and
// calls the other service over mTLS with the user's token alongside.
package demo

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/gatehouse/gatehouse/examples/orders"
	"github.com/gatehouse/gatehouse/examples/payments"
	"github.com/gatehouse/gatehouse/sdk/auth"
	"github.com/gatehouse/gatehouse/sdk/authz"
)

// Config says where the issuer and the services are.
type Config struct {
	Issuer      string // Gatehouse issuer URL, e.g. http://localhost:8080
	OrdersURL   string // base URL of orders, e.g. http://127.0.0.1:8091
	PaymentsURL string // base URL of payments, e.g. http://127.0.0.1:8092
	// JWKSCacheFile, when set, is the verifier's on-disk key cache (one per
	// service: the name gets a ".orders" or ".payments" suffix).
	JWKSCacheFile string
	HTTPClient    *http.Client // fetches discovery and JWKS; default 10s timeout
	Logger        *slog.Logger // default discards
	// Authz, when its URL is set, makes orders delegate its fine-grained
	// decisions to Gatehouse's authorization service.
	Authz AuthzConfig
	// Workload, when set, turns on mutual TLS with SPIFFE identities: the
	// services serve HTTPS (their URLs are https://) and accept only the
	// callers the workload policy allows. Nil: plain HTTP.
	Workload *WorkloadConfig

	// newVerifier replaces the issuer verifier in tests.
	newVerifier func(audience string) (*auth.Verifier, error)
}

// AuthzConfig says where the authorization service is and how orders
// authenticates to it: its own client credentials at the issuer, for the
// service's audience.
type AuthzConfig struct {
	URL          string // e.g. http://127.0.0.1:8002
	Audience     string // the service's API audience, e.g. gatehouse-authz
	ClientID     string
	ClientSecret string
	// Timeout bounds one decision, the service's first token included
	// (default 1s: a laptop running everything at once is slow to start).
	Timeout time.Duration
}

func (c Config) logger() *slog.Logger {
	if c.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return c.Logger
}

// origin returns scheme://host of a base URL.
func origin(base string) (string, error) {
	u, err := url.Parse(base)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return "", fmt.Errorf("demo: bad service URL %q", base)
	}
	return u.Scheme + "://" + u.Host, nil
}

func (c Config) verifier(audience, suffix string) (*auth.Verifier, error) {
	if c.newVerifier != nil {
		return c.newVerifier(audience)
	}
	ic := auth.IssuerConfig{Issuer: c.Issuer, Audience: audience, HTTPClient: c.HTTPClient}
	if c.JWKSCacheFile != "" {
		ic.CacheFile = c.JWKSCacheFile + suffix
	}
	return auth.NewVerifier(auth.VerifierConfig{Issuers: []auth.IssuerConfig{ic}, Logger: c.logger()})
}

// Service is a built service: its handler and its verifier (Close it when
// done; Ready reports whether it has the issuer's keys).
type Service struct {
	Handler  http.Handler
	Verifier *auth.Verifier
	// TLS, when not nil, is the mutual-TLS configuration the service
	// serves with (Config.Workload); Handler then checks the workload
	// policy of every request.
	TLS *tls.Config
	// Replicate, when not nil, pushes the service's relationships to the
	// authorization service (orders with Config.Authz only).
	Replicate func(context.Context) (string, error)
}

// Close stops the verifier's background refreshes.
func (s *Service) Close() { s.Verifier.Close() }

// identity is the service's identity under cfg.Workload (nil without).
func (c Config) identity(name string, id func(*WorkloadConfig) Identity) (Identity, error) {
	if c.Workload == nil {
		return nil, nil
	}
	if i := id(c.Workload); i != nil {
		return i, nil
	}
	return nil, fmt.Errorf("demo: Workload is set but %s has no identity", name)
}

// secure wraps svc's handler and sets its TLS configuration when the
// service has an identity.
func secure(svc *Service, id Identity) error {
	if id == nil {
		return nil
	}
	tc, h, err := ServerTLS(id, svc.Handler)
	if err != nil {
		return err
	}
	svc.TLS, svc.Handler = tc, h
	return nil
}

// NewOrders builds the orders service, calling payments at cfg.PaymentsURL
// with the caller's token (no PaymentsURL: paying answers 503). With
// cfg.Workload, the call is mutual TLS with orders' SVID, to a server that
// must be payments.
func NewOrders(cfg Config) (*Service, error) {
	id, err := cfg.identity("orders", func(w *WorkloadConfig) Identity { return w.Orders })
	if err != nil {
		return nil, err
	}
	var rt http.RoundTripper
	if cfg.PaymentsURL != "" {
		o, err := origin(cfg.PaymentsURL)
		if err != nil {
			return nil, err
		}
		base, err := baseTransport(id, cfg.PaymentsURL, PaymentsPath)
		if err != nil {
			return nil, err
		}
		if rt, err = auth.NewPropagatingTransport(base, o); err != nil {
			return nil, err
		}
	}
	v, err := cfg.verifier(orders.Audience, ".orders")
	if err != nil {
		return nil, err
	}
	oc := orders.Config{Authenticator: v, PaymentsURL: cfg.PaymentsURL, PaymentsTransport: rt,
		Logger: cfg.logger().With("service", "orders")}
	if cfg.Authz.URL != "" {
		c, err := cfg.authzClient()
		if err != nil {
			v.Close()
			return nil, err
		}
		oc.Authorizer, oc.Relationships = c, c
	}
	svc, err := orders.New(oc)
	if err != nil {
		v.Close()
		return nil, err
	}
	out := &Service{Handler: svc.Handler(), Verifier: v}
	if oc.Relationships != nil {
		out.Replicate = svc.Replicate
	}
	if err := secure(out, id); err != nil {
		v.Close()
		return nil, err
	}
	return out, nil
}

// authzClient is the orders service's client of the authorization service:
// every call carries orders' own client-credentials token, sent only to the
// service's origin.
func (c Config) authzClient() (*authz.Client, error) {
	o, err := origin(c.Authz.URL)
	if err != nil {
		return nil, err
	}
	ts, err := auth.NewClientCredentials(auth.ClientCredentialsConfig{TokenURL: c.Issuer + "/oauth/token", ClientID: c.Authz.ClientID,
		ClientSecret: c.Authz.ClientSecret, Scopes: []string{"authz:check", "authz:write"}, Audience: []string{c.Authz.Audience},
		HTTPClient: c.HTTPClient})
	if err != nil {
		return nil, err
	}
	rt, err := auth.NewServiceTransport(nil, ts, o)
	if err != nil {
		return nil, err
	}
	timeout := c.Authz.Timeout
	if timeout == 0 {
		timeout = time.Second
	}
	return authz.New(authz.Config{URL: c.Authz.URL, HTTPClient: &http.Client{Transport: rt}, Timeout: timeout})
}

// NewPayments builds the payments service, asking orders at cfg.OrdersURL
// who owns an order, with the caller's token. With cfg.Workload, payments
// serves mutual TLS; an https OrdersURL is then reached with payments' SVID
// (the demo's policy lets payments call no one: `gatehouse dev` points
// OrdersURL at the gateway, the public door to orders).
func NewPayments(cfg Config) (*Service, error) {
	id, err := cfg.identity("payments", func(w *WorkloadConfig) Identity { return w.Payments })
	if err != nil {
		return nil, err
	}
	o, err := origin(cfg.OrdersURL)
	if err != nil {
		return nil, err
	}
	base, err := baseTransport(id, cfg.OrdersURL, OrdersPath)
	if err != nil {
		return nil, err
	}
	rt, err := auth.NewPropagatingTransport(base, o)
	if err != nil {
		return nil, err
	}
	v, err := cfg.verifier(payments.Audience, ".payments")
	if err != nil {
		return nil, err
	}
	svc, err := payments.New(payments.Config{Authenticator: v, OrdersURL: cfg.OrdersURL, OrdersTransport: rt,
		Logger: cfg.logger().With("service", "payments")})
	if err != nil {
		v.Close()
		return nil, err
	}
	out := &Service{Handler: svc.Handler(), Verifier: v}
	if err := secure(out, id); err != nil {
		v.Close()
		return nil, err
	}
	return out, nil
}

// Serve serves the service on ln until ctx ends: HTTPS with mutual TLS
// when it has a TLS configuration, plain HTTP otherwise.
func (s *Service) Serve(ctx context.Context, ln net.Listener) error {
	if s.TLS != nil {
		ln = tls.NewListener(ln, s.TLS)
	}
	return Serve(ctx, ln, s.Handler)
}

// Serve serves h on ln until ctx ends, then shuts down gracefully (5s).
func Serve(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return err
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Run serves svc on listen until ctx ends (the thin mains in examples/cmd
// use it), then closes the service.
func Run(ctx context.Context, name, listen string, svc *Service, log *slog.Logger) error {
	defer svc.Close()
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	log.Info(name+" listening", "addr", ln.Addr().String(), "mtls", svc.TLS != nil)
	return svc.Serve(ctx, ln)
}
