package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
	"golang.org/x/sync/singleflight"
)

const (
	defaultEarlyRefresh = 30 * time.Second
	// noExpiryReuse bounds the reuse of a token whose response had no
	// expires_in.
	noExpiryReuse = 5 * time.Minute
	// ccRetryGap is the minimum gap between refresh attempts while a still
	// valid token is being served after a failed early refresh.
	ccRetryGap = time.Second
)

// ClientCredentialsConfig configures a service's own token source (OAuth 2.0
// client credentials grant, RFC 6749 §4.4).
type ClientCredentialsConfig struct {
	TokenURL     string // required; https, or http on loopback
	ClientID     string // required
	ClientSecret string // required; sent with HTTP Basic (client_secret_basic)
	Scopes       []string
	// Audience lists the APIs the token is for, sent as RFC 8707 "resource"
	// parameters (the Gatehouse IdP accepts resource or audience).
	Audience []string
	// EarlyRefresh is how long before expiry a token is replaced. Default:
	// 30s, but never more than 10% of the token's lifetime (a 60s token is
	// refreshed 6s early). When set explicitly it is used as given, capped
	// at half the token's lifetime. During the early window callers keep
	// getting the current token while it is refreshed in the background; if
	// the refresh fails they keep getting it until it really expires (and
	// the refresh is retried at most once a second).
	EarlyRefresh time.Duration
	// HTTPClient calls the token endpoint (default: 10s timeout).
	HTTPClient *http.Client

	now func() time.Time // tests
}

// NewClientCredentials returns a TokenSource for the service's own access
// tokens. Tokens are cached and refreshed before they expire; concurrent
// callers share one token request. It is safe for concurrent use. Errors
// from the token endpoint wrap ErrUnavailable. A token response without
// expires_in is reused for at most 5 minutes; a token_type other than
// Bearer is refused.
func NewClientCredentials(cfg ClientCredentialsConfig) (oauth2.TokenSource, error) {
	if cfg.ClientID == "" || cfg.ClientSecret == "" {
		return nil, errors.New("auth: client credentials need ClientID and ClientSecret")
	}
	u, err := url.Parse(cfg.TokenURL)
	if err != nil || u.Host == "" || u.User != nil || u.Fragment != "" ||
		!(u.Scheme == "https" || (u.Scheme == "http" && isLoopback(u.Hostname()))) {
		return nil, errors.New("auth: client credentials TokenURL must be an https URL (http only on loopback)")
	}
	if cfg.EarlyRefresh < 0 {
		return nil, errors.New("auth: EarlyRefresh must not be negative")
	}
	cc := &clientcredentials.Config{
		ClientID:     cfg.ClientID,
		ClientSecret: cfg.ClientSecret,
		TokenURL:     cfg.TokenURL,
		Scopes:       append([]string(nil), cfg.Scopes...),
		AuthStyle:    oauth2.AuthStyleInHeader,
	}
	if len(cfg.Audience) > 0 {
		cc.EndpointParams = url.Values{"resource": append([]string(nil), cfg.Audience...)}
	}
	client := cfg.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: introHTTPTimeout}
	}
	s := &ccSource{conf: cc, client: client, early: cfg.EarlyRefresh, now: cfg.now}
	if s.now == nil {
		s.now = time.Now
	}
	return s, nil
}

// ccSource caches one token and refreshes it early.
type ccSource struct {
	conf   *clientcredentials.Config
	client *http.Client
	early  time.Duration // 0: default policy
	now    func() time.Time
	flight singleflight.Group

	mu        sync.Mutex
	tok       *oauth2.Token
	refreshAt time.Time // start refreshing from here
	expires   time.Time // stop using tok from here
	lastFail  time.Time // last failed refresh
}

// Token returns a valid token, fetching one when needed. In the early
// refresh window it returns the current token at once and refreshes it in
// the background (one refresh at a time).
func (s *ccSource) Token() (*oauth2.Token, error) {
	now := s.now()
	s.mu.Lock()
	tok, refreshAt, expires, lastFail := s.tok, s.refreshAt, s.expires, s.lastFail
	s.mu.Unlock()
	if tok != nil && now.Before(refreshAt) {
		return tok, nil
	}
	if tok != nil && now.Before(expires) {
		if now.Sub(lastFail) >= ccRetryGap {
			// The result is not awaited; the channel is buffered.
			s.flight.DoChan("token", s.fetch)
		}
		return tok, nil
	}
	v, err, _ := s.flight.Do("token", s.fetch)
	if err != nil {
		return nil, err
	}
	return v.(*oauth2.Token), nil
}

// fetch requests a new token unless another flight just installed one.
func (s *ccSource) fetch() (any, error) {
	s.mu.Lock()
	if s.tok != nil && s.now().Before(s.refreshAt) {
		tok := s.tok
		s.mu.Unlock()
		return tok, nil
	}
	s.mu.Unlock()

	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, s.client)
	start := s.now()
	tok, err := s.conf.Token(ctx)
	if err == nil && !strings.EqualFold(tok.Type(), "bearer") {
		err = fmt.Errorf("token_type %q is not Bearer", tok.TokenType)
	}
	if err == nil && !isToken68(tok.AccessToken) {
		err = errors.New("access_token is not a valid bearer token")
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.lastFail = s.now()
		return nil, fmt.Errorf("%w: client credentials token request failed: %w", ErrUnavailable, err)
	}
	expires := tok.Expiry
	if expires.IsZero() {
		expires = start.Add(noExpiryReuse)
	}
	s.tok, s.expires = tok, expires
	s.refreshAt = expires.Add(-s.margin(expires.Sub(start)))
	return tok, nil
}

// margin is how long before expiry a token of the given lifetime is
// refreshed.
func (s *ccSource) margin(lifetime time.Duration) time.Duration {
	if lifetime <= 0 {
		return 0
	}
	if s.early == 0 {
		return min(defaultEarlyRefresh, lifetime/10)
	}
	return min(s.early, lifetime/2)
}

// NewServiceTransport returns an http.RoundTripper that sets
// "Authorization: Bearer <token>" with the service's own token from ts
// (usually NewClientCredentials) on requests to allowedOrigins. The origin
// allow-list works as in NewPropagatingTransport: required, exact, checked
// for every request and redirect; other origins fail with
// ErrOriginNotAllowed and are not sent. A request that already has an
// Authorization header fails. base nil means http.DefaultTransport.
func NewServiceTransport(base http.RoundTripper, ts oauth2.TokenSource, allowedOrigins ...string) (http.RoundTripper, error) {
	if ts == nil {
		return nil, errors.New("auth: a token source is required")
	}
	return newBearerTransport(base, allowedOrigins, func(*http.Request) (string, error) {
		tok, err := ts.Token()
		if err != nil {
			return "", fmt.Errorf("auth: service token: %w", err)
		}
		if tok == nil || tok.AccessToken == "" {
			return "", fmt.Errorf("%w: token source returned no token", ErrUnavailable)
		}
		return tok.AccessToken, nil
	})
}
