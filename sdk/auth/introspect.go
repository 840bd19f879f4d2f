package auth

import (
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/gatehouse/gatehouse/sdk/jwtx"
)

// Limits and defaults of the Introspector.
const (
	defaultIntrospectCacheSize = 10000
	defaultIntrospectCacheTTL  = 10 * time.Second
	introHTTPTimeout           = 10 * time.Second
	// maxIntrospectTokenLen caps the tokens sent to the IdP; longer ones are
	// refused without a network call.
	maxIntrospectTokenLen = 8192
	// maxIntrospectBody caps the IdP's answer (JWT-F01).
	maxIntrospectBody = 256 << 10
	// maxIntrospectDepth bounds the nesting of the IdP's JSON answer.
	maxIntrospectDepth = 16
)

// errMalformedResponse marks an introspection answer that is not a strict
// RFC 7662 JSON object. It is wrapped in ErrUnavailable: the IdP did not give
// a usable decision, so the token is refused (fail closed).
var errMalformedResponse = errors.New("malformed introspection response")

// IntrospectorConfig configures an Introspector.
type IntrospectorConfig struct {
	// Endpoint is the IdP's introspection endpoint (required). It must be
	// https, or http on a loopback address (tests, sidecars).
	Endpoint string
	// ClientID and ClientSecret are this resource server's client
	// credentials at the IdP (both required). They are sent with HTTP Basic
	// authentication, form-urlencoded first as RFC 6749 §2.3.1 says.
	ClientID     string
	ClientSecret string
	// Issuer is required: the answer's "iss", when present, must equal it
	// exactly.
	Issuer string
	// Audience is this API's identifier (required): the answer's "aud" must
	// contain it.
	Audience string
	// CacheSize bounds the result cache (default 10000; negative disables
	// caching).
	CacheSize int
	// CacheTTL is how long an active result may be reused (default 10s). An
	// entry never outlives the token's exp. This is also the bound on how
	// long a revoked token may still be accepted. Inactive or refused
	// results are never cached; concurrent identical lookups share one call.
	CacheTTL time.Duration
	// HTTPClient calls the endpoint (default: 10s timeout). Each call is
	// bounded by 10s whatever the client's Timeout, and redirects are never
	// followed, whatever its CheckRedirect says.
	HTTPClient *http.Client
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Introspector is an Authenticator that asks the IdP about each token (RFC
// 7662 token introspection) instead of validating it locally. Use it for
// opaque tokens, or when revocation must be seen within seconds. It is safe
// for concurrent use.
type Introspector struct {
	endpoint     string
	clientID     string
	clientSecret string
	issuer       string
	audience     string
	ttl          time.Duration
	client       *http.Client
	now          func() time.Time
	cache        *introCache // nil when disabled
	flight       singleflight.Group
}

// NewIntrospector checks cfg and returns an Introspector. It makes no
// network call.
func NewIntrospector(cfg IntrospectorConfig) (*Introspector, error) {
	if err := checkIntrospectEndpoint(cfg.Endpoint); err != nil {
		return nil, err
	}
	switch {
	case cfg.ClientID == "" || cfg.ClientSecret == "":
		return nil, errors.New("auth: introspection needs ClientID and ClientSecret")
	case cfg.Issuer == "":
		return nil, errors.New("auth: introspection needs Issuer")
	case cfg.Audience == "":
		return nil, errors.New("auth: introspection needs Audience")
	case cfg.CacheTTL < 0:
		return nil, errors.New("auth: introspection CacheTTL must not be negative")
	}
	i := &Introspector{
		endpoint:     cfg.Endpoint,
		clientID:     cfg.ClientID,
		clientSecret: cfg.ClientSecret,
		issuer:       cfg.Issuer,
		audience:     cfg.Audience,
		ttl:          cfg.CacheTTL,
		now:          cfg.Now,
	}
	if i.ttl == 0 {
		i.ttl = defaultIntrospectCacheTTL
	}
	if i.now == nil {
		i.now = time.Now
	}
	var c http.Client
	if cfg.HTTPClient != nil {
		c = *cfg.HTTPClient
	} else {
		c.Timeout = introHTTPTimeout
	}
	// The request carries client credentials: never replay it elsewhere.
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	i.client = &c
	size := cfg.CacheSize
	if size == 0 {
		size = defaultIntrospectCacheSize
	}
	if size > 0 {
		i.cache = newIntroCache(size)
	}
	return i, nil
}

// checkIntrospectEndpoint accepts absolute https URLs, and http ones on loopback.
func checkIntrospectEndpoint(endpoint string) error {
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" || u.User != nil || u.Fragment != "" || u.Opaque != "" {
		return errors.New("auth: introspection Endpoint must be an absolute URL without user info or fragment")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if isLoopback(u.Hostname()) {
			return nil
		}
	}
	return errors.New("auth: introspection Endpoint must use https (http only on loopback)")
}

// Authenticate asks the IdP whether token is active and turns the answer
// into Claims. Errors wrap ErrInvalidToken when the token is refused and
// ErrUnavailable when the IdP gave no usable answer.
func (i *Introspector) Authenticate(ctx context.Context, token string) (*Claims, error) {
	if token == "" || len(token) > maxIntrospectTokenLen || !introVisibleASCII(token) {
		return nil, fmt.Errorf("%w: malformed token", ErrInvalidToken)
	}
	key := sha256.Sum256([]byte(token))
	if i.cache != nil {
		if c, ok := i.cache.get(key, i.now()); ok {
			return c, nil
		}
	}
	// Concurrent lookups of one token share a call. The call does not end
	// when the first caller gives up, so it runs without that caller's
	// cancellation (the HTTP client's timeout still applies).
	fctx := context.WithoutCancel(ctx)
	ch := i.flight.DoChan(string(key[:]), func() (any, error) {
		// A caller that missed the cache just before the previous call for
		// this token filled it (and ended its flight) finds the answer here
		// instead of asking the IdP again.
		if i.cache != nil {
			if c, ok := i.cache.get(key, i.now()); ok {
				return c, nil
			}
		}
		return i.introspect(fctx, token, key)
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		return r.Val.(*Claims), nil
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, ctx.Err())
	}
}

func (i *Introspector) introspect(ctx context.Context, token string, key [32]byte) (*Claims, error) {
	// Bound the shared call even if HTTPClient has no timeout, so that a
	// hung IdP cannot hold every later lookup of this token.
	ctx, cancel := context.WithTimeout(ctx, introHTTPTimeout)
	defer cancel()
	form := url.Values{"token": {token}, "token_type_hint": {"access_token"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, i.endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, fmt.Errorf("%w: introspection request: %w", ErrUnavailable, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.SetBasicAuth(url.QueryEscape(i.clientID), url.QueryEscape(i.clientSecret))
	resp, err := i.client.Do(req)
	if err != nil {
		// The error names the endpoint URL, never the token (it is in the body).
		return nil, fmt.Errorf("%w: introspection call failed: %w", ErrUnavailable, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxIntrospectBody+1))
	if err != nil {
		return nil, fmt.Errorf("%w: reading introspection response: %w", ErrUnavailable, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%w: introspection endpoint answered %d", ErrUnavailable, resp.StatusCode)
	}
	if len(body) > maxIntrospectBody {
		return nil, fmt.Errorf("%w: %w: response larger than %d bytes", ErrUnavailable, errMalformedResponse, maxIntrospectBody)
	}
	if mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return nil, fmt.Errorf("%w: %w: content type is not application/json", ErrUnavailable, errMalformedResponse)
	}
	r, err := parseIntrospection(body)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	now := i.now()
	c, err := r.claims(i.issuer, i.audience, now)
	if err != nil {
		return nil, err
	}
	c.Token = token
	if i.cache != nil {
		until := now.Add(i.ttl)
		if c.Expiry.Before(until) {
			until = c.Expiry
		}
		i.cache.put(key, c, until)
	}
	return c, nil
}

// introspection is a parsed RFC 7662 answer.
type introspection struct {
	active    bool
	scope     string
	clientID  string
	subject   string
	audience  []string
	issuer    *string
	expiry    *int64
	issuedAt  *int64
	notBefore *int64
	jti       string
	tokenType *string
	roles     []string
	groups    []string
	tenant    string
	extra     map[string]json.RawMessage
}

// parseIntrospection decodes an introspection answer strictly: exactly one
// JSON object, valid UTF-8, no duplicate or case-variant members (JWT-E02),
// bounded nesting, "active" a JSON boolean, and every known member of its
// RFC 7662 type. Errors wrap errMalformedResponse.
func parseIntrospection(body []byte) (*introspection, error) {
	pc, err := jwtx.ParseClaims(body)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errMalformedResponse, err)
	}
	r := &introspection{scope: pc.Scope, clientID: pc.ClientID, subject: pc.Subject, audience: pc.Audience,
		expiry: pc.Expiry, issuedAt: pc.IssuedAt, notBefore: pc.NotBefore, jti: pc.JTI}
	if _, ok := pc.Extra["iss"]; ok || pc.Issuer != "" {
		r.issuer = &pc.Issuer
	}
	bad := func(name string) error {
		return fmt.Errorf("%w: member %q has the wrong type", errMalformedResponse, name)
	}
	act, ok := pc.Extra["active"]
	if !ok {
		return nil, fmt.Errorf("%w: no active member", errMalformedResponse)
	}
	switch string(act) {
	case "true":
		r.active = true
	case "false":
	default:
		return nil, bad("active")
	}
	delete(pc.Extra, "active")
	if raw, ok := pc.Extra["token_type"]; ok {
		s, err := jwtx.StringValue(raw)
		if err != nil {
			return nil, bad("token_type")
		}
		r.tokenType = &s
		delete(pc.Extra, "token_type")
	}
	if r.roles, r.groups, r.tenant, err = identityClaims(pc.Extra); err != nil {
		return nil, fmt.Errorf("%w: %w", errMalformedResponse, err)
	}
	if len(pc.Extra) > 0 {
		r.extra = pc.Extra
	}
	return r, nil
}

// claims checks an active answer against this resource server's issuer,
// audience and clock. Refusals wrap ErrInvalidToken.
func (r *introspection) claims(issuer, audience string, now time.Time) (*Claims, error) {
	refuse := func(why string) error { return fmt.Errorf("%w: %s", ErrInvalidToken, why) }
	switch {
	case !r.active:
		return nil, refuse("token is not active")
	case r.issuer != nil && *r.issuer != issuer:
		return nil, refuse("issuer mismatch")
	case !slices.Contains(r.audience, audience):
		return nil, refuse("audience mismatch")
	case r.expiry == nil:
		return nil, refuse("no exp")
	case !now.Before(time.Unix(*r.expiry, 0)):
		return nil, refuse("expired")
	case r.notBefore != nil && now.Before(time.Unix(*r.notBefore, 0)):
		return nil, refuse("not yet valid")
	case r.tokenType != nil && !strings.EqualFold(*r.tokenType, "bearer") && *r.tokenType != "access_token":
		return nil, refuse("not an access token")
	}
	c := &Claims{
		Issuer:   issuer,
		Subject:  r.subject,
		ClientID: r.clientID,
		Audience: r.audience,
		Scopes:   strings.Fields(r.scope),
		Roles:    r.roles,
		Groups:   r.groups,
		Tenant:   r.tenant,
		Expiry:   time.Unix(*r.expiry, 0),
		ID:       r.jti,
		Extra:    r.extra,
	}
	if r.issuedAt != nil {
		c.IssuedAt = time.Unix(*r.issuedAt, 0)
	}
	return c, nil
}

func introVisibleASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// introCache is a bounded LRU of verified results keyed by the SHA-256 of
// the token, so that tokens are not kept as map keys.
type introCache struct {
	mu    sync.Mutex
	max   int
	order *list.List // front = most recently used; values are *introCacheEntry
	items map[[32]byte]*list.Element
}

type introCacheEntry struct {
	key    [32]byte
	claims *Claims
	until  time.Time
}

func newIntroCache(max int) *introCache {
	return &introCache{max: max, order: list.New(), items: make(map[[32]byte]*list.Element)}
}

func (c *introCache) get(key [32]byte, now time.Time) (*Claims, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[key]
	if !ok {
		return nil, false
	}
	e := el.Value.(*introCacheEntry)
	if !now.Before(e.until) {
		c.order.Remove(el)
		delete(c.items, key)
		return nil, false
	}
	c.order.MoveToFront(el)
	return e.claims, true
}

func (c *introCache) put(key [32]byte, claims *Claims, until time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[key]; ok {
		el.Value = &introCacheEntry{key: key, claims: claims, until: until}
		c.order.MoveToFront(el)
		return
	}
	for c.order.Len() >= c.max {
		old := c.order.Back()
		c.order.Remove(old)
		delete(c.items, old.Value.(*introCacheEntry).key)
	}
	c.items[key] = c.order.PushFront(&introCacheEntry{key: key, claims: claims, until: until})
}

func (c *introCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}
