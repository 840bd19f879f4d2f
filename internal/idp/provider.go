package idp

import (
	"context"
	"crypto"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/gatehouse/gatehouse/internal/gateway/edge"
	"github.com/gatehouse/gatehouse/internal/periodic"
	"github.com/gatehouse/gatehouse/internal/secret"
	"github.com/gatehouse/gatehouse/internal/storage"
	"github.com/gatehouse/gatehouse/internal/throttle"
	"github.com/gatehouse/gatehouse/internal/ui"
)

// Signer signs tokens with the current signing key and publishes the JWKS
// (internal/keys.Manager implements it).
type Signer interface {
	Sign(typ string, claims any) (string, error)
	Algorithm() string
	JWKS() (jose.JSONWebKeySet, time.Duration)
	PublicKey(kid string) (crypto.PublicKey, string, bool)
	Ready() bool
}

// PasswordVerifier checks user passwords (internal/password.Hasher).
type PasswordVerifier interface {
	Verify(pw, encoded string) (ok bool, needsRehash bool, err error)
	Dummy(pw string)
	Hash(pw string) (string, error)
}

// Store is the slice of storage the IdP uses.
type Store interface {
	storage.ClientStore
	storage.UserStore
	storage.AuthRequestStore
	storage.CodeStore
	storage.GrantStore
	storage.SessionStore
	storage.RevocationStore
	Ping(ctx context.Context) error
}

// Claims selects which user attributes go into access tokens.
type Claims struct {
	Roles, Groups, Tenant bool
}

// Config holds the IdP's tunables (validated by internal/config).
type Config struct {
	Issuer          string
	AccessTokenTTL  time.Duration
	IDTokenTTL      time.Duration
	AuthCodeTTL     time.Duration
	AuthRequestTTL  time.Duration
	RefreshIdleTTL  time.Duration
	RefreshMaxTTL   time.Duration
	SessionIdle     time.Duration
	SessionAbsolute time.Duration
	Claims          Claims
	TrustedProxies  []netip.Prefix
	RevocationPoll  time.Duration // how often revocations from other replicas are loaded (default 2s)
	ClientCacheTTL  time.Duration // how long a client record is cached (default 2s)
	// ExchangeTokenTTL is the lifetime of tokens issued by token exchange
	// (RFC 8693) to clients without their own access_token_ttl (default 5m);
	// an exchanged token never outlives its subject token.
	ExchangeTokenTTL time.Duration
}

// Deps are the IdP's collaborators.
type Deps struct {
	Store     Store
	Signer    Signer
	Secrets   *secret.Keyed // client-secret hashes and CSRF MACs
	Passwords PasswordVerifier
	UI        *ui.Renderer
	// AccountLimiter and IPLimiter throttle failed logins (BF-01).
	AccountLimiter *throttle.Limiter
	IPLimiter      *throttle.Limiter
	Now            func() time.Time
	Log            *slog.Logger
}

// Provider is the authorization server.
type Provider struct {
	cfg       Config
	issuer    *url.URL
	store     Store
	signer    Signer
	secrets   *secret.Keyed
	passwords PasswordVerifier
	ui        *ui.Renderer
	acctLim   *throttle.Limiter
	ipLim     *throttle.Limiter
	now       func() time.Time
	log       *slog.Logger

	clients *clientCache
	revoked *revocationCache
	intro   *introspectionCache
	metrics *metrics
	handler http.Handler
}

// New builds a Provider. Call Start to begin background work.
func New(cfg Config, d Deps) (*Provider, error) {
	if d.Store == nil || d.Signer == nil || d.Secrets == nil || d.Passwords == nil || d.UI == nil ||
		d.AccountLimiter == nil || d.IPLimiter == nil {
		return nil, fmt.Errorf("idp: missing dependency")
	}
	iss, err := url.Parse(cfg.Issuer)
	if err != nil || iss.Scheme == "" || iss.Host == "" {
		return nil, fmt.Errorf("idp: invalid issuer %q", cfg.Issuer)
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.RevocationPoll <= 0 {
		cfg.RevocationPoll = 2 * time.Second
	}
	if cfg.ClientCacheTTL <= 0 {
		cfg.ClientCacheTTL = 2 * time.Second
	}
	if cfg.ExchangeTokenTTL <= 0 {
		cfg.ExchangeTokenTTL = defaultExchangeTTL
	}
	p := &Provider{
		cfg: cfg, issuer: iss, store: d.Store, signer: d.Signer, secrets: d.Secrets,
		passwords: d.Passwords, ui: d.UI, acctLim: d.AccountLimiter, ipLim: d.IPLimiter,
		now: d.Now, log: d.Log,
	}
	p.clients = newClientCache(d.Store, cfg.ClientCacheTTL, d.Now)
	p.revoked = newRevocationCache(d.Store, d.Now)
	p.intro = newIntrospectionCache(100_000)
	p.metrics = newMetrics()
	p.handler = p.routes()
	return p, nil
}

// Start loads the revocation feed and keeps it current until ctx ends.
func (p *Provider) Start(ctx context.Context) error {
	if err := p.revoked.refresh(ctx); err != nil {
		return fmt.Errorf("idp: load revocations: %w", err)
	}
	go periodic.Run(ctx, p.cfg.RevocationPoll, p.log, "revocation feed refresh failed", p.revoked.refresh)
	return nil
}

// Handler returns the IdP's HTTP handler (public listener).
func (p *Provider) Handler() http.Handler { return p.handler }

// Collectors returns the IdP's Prometheus metrics.
func (p *Provider) Collectors() []prometheusCollector { return p.metrics.collectors() }

func (p *Provider) endpoint(path string) string {
	return strings.TrimSuffix(p.cfg.Issuer, "/") + path
}

// Paths of the endpoints, relative to the issuer.
const (
	pathAuthorize  = "/authorize"
	pathLogin      = "/login"
	pathConsent    = "/consent"
	pathToken      = "/oauth/token"
	pathIntrospect = "/oauth/introspect"
	pathRevoke     = "/oauth/revoke"
	pathUserinfo   = "/userinfo"
	pathEndSession = "/end_session"
	pathLogout     = "/logout"
	pathJWKS       = "/.well-known/jwks.json"
)

func (p *Provider) routes() http.Handler {
	prefix := strings.TrimSuffix(p.issuer.EscapedPath(), "/")
	srv := &server{p: p}
	opHandler := op.RegisterServer(srv, op.Endpoints{
		Token:         op.NewEndpoint(prefix + pathToken),
		Introspection: op.NewEndpoint(prefix + pathIntrospect),
		Revocation:    op.NewEndpoint(prefix + pathRevoke),
		Userinfo:      op.NewEndpoint(prefix + pathUserinfo),
		JwksURI:       op.NewEndpoint(prefix + pathJWKS),
	}, op.WithServerCORSOptions(nil))

	mux := http.NewServeMux()
	pages := func(h http.HandlerFunc) http.Handler { return ui.SecurityHeaders(h) }
	mux.Handle(prefix+pathAuthorize, pages(p.handleAuthorize))
	mux.Handle(prefix+pathLogin, pages(p.handleLogin))
	mux.Handle(prefix+pathConsent, pages(p.handleConsent))
	mux.Handle(prefix+pathEndSession, pages(p.handleEndSession))
	mux.Handle(prefix+pathLogout, pages(p.handleLogout))
	mux.Handle(prefix+"/static/", http.StripPrefix(prefix, p.ui.StaticHandler()))
	mux.Handle("GET "+prefix+"/.well-known/openid-configuration", http.HandlerFunc(p.handleDiscovery))
	mux.Handle("GET "+prefix+"/.well-known/oauth-authorization-server", http.HandlerFunc(p.handleDiscovery))
	guarded := p.tokenEndpointGuard(opHandler)
	mux.Handle(prefix+pathToken, guarded)
	mux.Handle(prefix+pathIntrospect, guarded)
	mux.Handle(prefix+pathRevoke, guarded)
	mux.Handle(prefix+pathUserinfo, bearerChallenge(noQueryToken(opHandler)))
	mux.Handle(prefix+pathJWKS, opHandler)
	return p.metrics.instrument(mux)
}

// clientIP returns the request's source address, believing X-Forwarded-For
// only from configured proxies (GW-02).
func (p *Provider) clientIP(r *http.Request) string {
	// The gateway's walk: X-Forwarded-For (or Forwarded, X-Real-IP) only
	// from trusted proxies, right to left over trusted hops (GW-02).
	if a, ok := edge.ClientIP(r.RemoteAddr, r.Header, p.cfg.TrustedProxies); ok {
		return a.String()
	}
	return r.RemoteAddr
}
