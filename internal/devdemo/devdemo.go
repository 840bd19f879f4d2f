// Package devdemo is a tiny OpenID Connect relying party that `gatehouse dev`
// runs next to the IdP, so that a newcomer can sign in from a browser end to
// end, and that the end-to-end browser tests drive.
//
// It is a demo and a test fixture, not a product surface: state lives in
// memory and is lost on restart, and nothing here is meant to be deployed.
// It is nevertheless a real OAuth client written the way an application
// should be: it uses only standard libraries (golang.org/x/oauth2 and
// github.com/coreos/go-oidc/v3), so it dogfoods Gatehouse against clients it
// does not control. The flow is authorization code with PKCE (S256), state,
// nonce and the RFC 9207 `iss` check; the ID token is verified against the
// IdP's JWKS; every state-changing request is a POST carrying a per-session
// CSRF token; tokens are never logged and only shown truncated.
//
// Routes: GET / (home), GET /login, GET /callback, POST /refresh,
// POST /userinfo, POST /logout.
package devdemo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// Default scopes requested when Config.Scopes is empty.
var defaultScopes = []string{oidc.ScopeOpenID, "profile", "email", oidc.ScopeOfflineAccess}

const (
	sessionCookie = "demo_session"
	flowCookie    = "demo_flow"

	flowTTL         = 10 * time.Minute
	sessionTTL      = 12 * time.Hour
	discoveryTTL    = 5 * time.Second
	outboundTimeout = 10 * time.Second
	maxEntries      = 10000 // per store; a demo, but memory stays bounded
	maxFormBytes    = 16 << 10
)

// Config configures the demo app.
type Config struct {
	Issuer       string       // the IdP, e.g. http://localhost:8080; discovery at Issuer + "/.well-known/openid-configuration"
	ClientID     string       // the demo's client id at the IdP
	ClientSecret string       // empty for a public client
	RedirectURL  string       // e.g. http://127.0.0.1:8090/callback; its origin is also the post-logout landing page
	Scopes       []string     // default: openid profile email offline_access
	HTTPClient   *http.Client // for calls to the IdP; optional, default has a 10 s timeout
}

// App is the demo relying party. Create it with New; it is safe for
// concurrent use.
type App struct {
	cfg        Config
	log        *slog.Logger
	client     *http.Client
	origin     string // scheme://host of RedirectURL
	secure     bool   // set Secure on cookies (https RedirectURL)
	now        func() time.Time
	pages      *pages
	discoverMu sync.Mutex
	provider   *oidc.Provider // nil until discovery succeeds; guarded by discoverMu

	flows    store[*flow]
	sessions store[*session]
}

// flow is a login in progress, created by /login and consumed by /callback.
type flow struct {
	state, nonce, verifier string
	expires                time.Time
}

// session is a signed-in browser.
type session struct {
	mu      sync.Mutex
	csrf    string
	expires time.Time
	sub     string
	claims  idClaims
	rawID   string
	token   *oauth2.Token
	// One-shot messages shown by the next GET / (post/redirect/get).
	flashRefreshed bool
	flashUserinfo  string
	flashError     string
}

// idClaims are the ID token claims the home page shows.
type idClaims struct {
	Sub               string `json:"sub"`
	PreferredUsername string `json:"preferred_username"`
	Email             string `json:"email"`
	Name              string `json:"name"`
}

// New returns the demo app. It does not contact the IdP: discovery happens on
// the first request that needs it and is retried until it succeeds, so the
// demo may start before the IdP.
func New(cfg Config, log *slog.Logger) *App {
	if len(cfg.Scopes) == 0 {
		cfg.Scopes = defaultScopes
	}
	cfg.Scopes = append([]string(nil), cfg.Scopes...)
	client := cfg.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: outboundTimeout}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	a := &App{
		cfg:    cfg,
		log:    log,
		client: client,
		now:    time.Now,
		pages:  newPages(),
	}
	if u, err := url.Parse(cfg.RedirectURL); err == nil && u.Scheme != "" && u.Host != "" {
		a.origin = u.Scheme + "://" + u.Host
		a.secure = u.Scheme == "https"
	}
	a.flows.init()
	a.sessions.init()
	return a
}

// Handler returns the app's HTTP handler.
func (a *App) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", a.home)
	mux.HandleFunc("GET /login", a.login)
	mux.HandleFunc("GET /callback", a.callback)
	mux.HandleFunc("POST /refresh", a.refresh)
	mux.HandleFunc("POST /userinfo", a.userinfo)
	mux.HandleFunc("POST /logout", a.logout)
	// Cross-origin POSTs are refused on Sec-Fetch-Site / Origin before the
	// CSRF token is even looked at (CS-01).
	cop := http.NewCrossOriginProtection()
	return securityHeaders(cop.Handler(mux))
}

// errUnavailable marks a failed discovery: the IdP is not reachable yet.
var errUnavailable = errors.New("devdemo: identity provider unavailable")

// withClient returns a context that makes go-oidc and x/oauth2 use a.client.
func (a *App) withClient(ctx context.Context) context.Context {
	return oidc.ClientContext(ctx, a.client)
}

// discover returns the provider, running discovery if it has not succeeded
// yet. Failures are not cached: the next request tries again.
func (a *App) discover(ctx context.Context) (*oidc.Provider, error) {
	a.discoverMu.Lock()
	defer a.discoverMu.Unlock()
	if a.provider != nil {
		return a.provider, nil
	}
	ctx, cancel := context.WithTimeout(ctx, discoveryTTL)
	defer cancel()
	// NewProvider keeps the client (not the context) for later JWKS and
	// userinfo calls, so the timeout above only bounds discovery.
	p, err := oidc.NewProvider(a.withClient(ctx), a.cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errUnavailable, err)
	}
	a.provider = p
	return p, nil
}

func (a *App) oauth2Config(p *oidc.Provider) *oauth2.Config {
	return &oauth2.Config{
		ClientID:     a.cfg.ClientID,
		ClientSecret: a.cfg.ClientSecret,
		RedirectURL:  a.cfg.RedirectURL,
		Endpoint:     p.Endpoint(),
		Scopes:       a.cfg.Scopes,
	}
}

// store is a bounded in-memory map from cookie value to entry with expiry.
type store[T interface{ expiry() time.Time }] struct {
	mu sync.Mutex
	m  map[string]T
}

func (f *flow) expiry() time.Time { return f.expires }

func (s *session) expiry() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.expires
}

func (s *store[T]) init() { s.m = make(map[string]T) }

var errFull = errors.New("devdemo: too many entries in memory")

// put stores v under key, dropping expired entries when full.
func (s *store[T]) put(key string, v T, now time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.m) >= maxEntries {
		for k, e := range s.m {
			if !now.Before(e.expiry()) {
				delete(s.m, k)
			}
		}
		if len(s.m) >= maxEntries {
			return errFull
		}
	}
	s.m[key] = v
	return nil
}

// get returns the unexpired entry under key.
func (s *store[T]) get(key string, now time.Time) (T, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[key]
	if ok && !now.Before(v.expiry()) {
		delete(s.m, key)
		var zero T
		return zero, false
	}
	return v, ok
}

// take removes and returns the unexpired entry under key (single use).
func (s *store[T]) take(key string, now time.Time) (T, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[key]
	delete(s.m, key)
	if ok && !now.Before(v.expiry()) {
		var zero T
		return zero, false
	}
	return v, ok
}

func (s *store[T]) remove(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, key)
}
