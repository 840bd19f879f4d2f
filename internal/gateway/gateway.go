package gateway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/gateway/edge"
	"github.com/gatehouse/gatehouse/internal/ratelimit"
	"github.com/gatehouse/gatehouse/sdk/auth"
	"github.com/gatehouse/gatehouse/sdk/authz"
)

// Deps are the gateway's collaborators.
type Deps struct {
	// Issuer is this Gatehouse's issuer, used when the configuration names no
	// JWT issuer and to derive the introspection and token endpoints.
	Issuer string
	// Shared is the Redis-backed limiter; nil when gateway.redis.addr is
	// empty (routes with shared limits then fail to compile).
	Shared *ratelimit.Shared
	// HTTPClient reaches the IdP (JWKS, introspection, token exchange).
	// Default: a client with a 10s timeout.
	HTTPClient *http.Client
	// Workload is the gateway's own SVID and trust bundle, for routes with
	// upstream_tls.spiffe_id. It may be nil and set later with SetWorkload
	// (the SVID is fetched in the background); until then such routes
	// answer 503.
	Workload WorkloadSource
	Now      func() time.Time
	Log      *slog.Logger
}

// Gateway is the proxy and the external authorizer. Create it with New; it
// is safe for concurrent use.
type Gateway struct {
	cfg      config.GatewayConfig // the parts that need a restart
	deps     Deps
	trusted  []netip.Prefix
	table    atomic.Pointer[table]
	local    *ratelimit.Local
	exchange *exchanger
	authz    *authz.Client // nil unless gateway.authz.url is set
	metrics  *metrics
	log      *slog.Logger
	idPrefix string
	idSeq    atomic.Uint64
	workload lazySource // for routes with upstream_tls.spiffe_id

	mu          sync.Mutex // guards the maps below (used while compiling)
	verifiers   map[string]*auth.Verifier
	introspects map[string]*auth.Introspector
	transports  map[config.GatewayTLS]*http.Transport
	reloadMu    sync.Mutex
}

// New builds a gateway from a validated configuration section.
func New(cfg config.GatewayConfig, d Deps) (*Gateway, error) {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if d.HTTPClient == nil {
		d.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	trusted, err := edge.ParsePrefixes(cfg.TrustedProxies)
	if err != nil {
		return nil, fmt.Errorf("gateway.trusted_proxies: %w", err)
	}
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	g := &Gateway{
		cfg: cfg, deps: d, trusted: trusted, log: d.Log,
		local:       ratelimit.NewLocal(100_000, d.Now),
		metrics:     newMetrics(),
		idPrefix:    hex.EncodeToString(rnd[:]) + "-",
		verifiers:   map[string]*auth.Verifier{},
		introspects: map[string]*auth.Introspector{},
		transports:  map[config.GatewayTLS]*http.Transport{},
	}
	g.SetWorkload(d.Workload)
	if cfg.TokenExchange.ClientID != "" {
		g.exchange = newExchanger(exchangeConfig{
			Endpoint: g.endpoint(cfg.TokenExchange.TokenEndpoint, "/oauth/token"),
			ClientID: cfg.TokenExchange.ClientID, ClientSecret: cfg.TokenExchange.ClientSecret,
			HTTPClient: d.HTTPClient, Now: d.Now,
		})
		g.exchange.onRes = func(r string) { g.metrics.exchanges.WithLabelValues(r).Inc() }
	}
	if cfg.Authz.URL != "" {
		if g.authz, err = newAuthzClient(cfg.Authz, g.endpoint(cfg.Authz.TokenEndpoint, "/oauth/token"), d); err != nil {
			return nil, err
		}
	}
	t, err := g.compile(cfg.Routes)
	if err != nil {
		g.Close()
		return nil, err
	}
	g.table.Store(t)
	return g, nil
}

// endpoint returns configured, or the issuer + path.
func (g *Gateway) endpoint(configured, path string) string {
	if configured != "" {
		return configured
	}
	return trimSlash(g.deps.Issuer) + path
}

func trimSlash(s string) string {
	for len(s) > 0 && s[len(s)-1] == '/' {
		s = s[:len(s)-1]
	}
	return s
}

// Reload compiles routes and swaps them in atomically. On error the running
// routes stay; requests in flight finish on the routes they started with.
func (g *Gateway) Reload(routes []config.GatewayRoute) error {
	g.reloadMu.Lock()
	defer g.reloadMu.Unlock()
	t, err := g.compile(routes)
	if err != nil {
		g.metrics.reloads.WithLabelValues("rejected").Inc()
		return err
	}
	g.awaitKeys(t)
	g.table.Store(t)
	g.metrics.reloads.WithLabelValues("applied").Inc()
	g.log.Info("gateway routes reloaded", "routes", len(t.routes))
	return nil
}

// reloadKeyWait bounds how long Reload waits for the keys of a new audience.
const reloadKeyWait = 5 * time.Second

// awaitKeys waits, at most reloadKeyWait, until the JWT verifiers of t have
// keys, so that a reload adding an audience does not answer 503 while that
// audience's keys are fetched. Past the bound the routes are applied anyway
// (they answer 503 until the keys arrive, as at startup).
func (g *Gateway) awaitKeys(t *table) {
	ctx, cancel := context.WithTimeout(context.Background(), reloadKeyWait)
	defer cancel()
	for _, r := range t.routes {
		v, ok := r.authn.(*auth.Verifier)
		if !ok || v.Ready() == nil {
			continue
		}
		if err := v.WaitReady(ctx); err != nil {
			g.log.Warn("gateway reload: applying routes whose keys are not available yet", "route", r.name, "err", err)
			return
		}
	}
}

// Ready reports whether every JWT route can verify tokens.
func (g *Gateway) Ready(context.Context) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	for aud, v := range g.verifiers {
		if err := v.Ready(); err != nil {
			return fmt.Errorf("gateway: keys for audience %q: %w", aud, err)
		}
	}
	return nil
}

// WaitReady waits until the JWT verifiers have keys or ctx ends.
func (g *Gateway) WaitReady(ctx context.Context) error {
	g.mu.Lock()
	vs := make([]*auth.Verifier, 0, len(g.verifiers))
	for _, v := range g.verifiers {
		vs = append(vs, v)
	}
	g.mu.Unlock()
	for _, v := range vs {
		if err := v.WaitReady(ctx); err != nil {
			return err
		}
	}
	return nil
}

// Close stops background work (key refresh) and idle connections.
func (g *Gateway) Close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, v := range g.verifiers {
		v.Close()
	}
	for _, t := range g.transports {
		t.CloseIdleConnections()
	}
}

// requestID returns the inbound X-Request-Id when a trusted proxy sent a
// well-formed one, else a fresh unique id.
func (g *Gateway) requestID(r *http.Request, fromTrusted bool) string {
	if fromTrusted {
		if v := r.Header.Values("X-Request-Id"); len(v) == 1 && validRequestID(v[0]) {
			return v[0]
		}
	}
	return g.idPrefix + strconv.FormatUint(g.idSeq.Add(1), 36)
}

func validRequestID(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// errNoRoute and friends are the gateway's own refusals.
var (
	errNoRoute    = errors.New("gateway: no route")
	errBadRequest = errors.New("gateway: bad request")
)
