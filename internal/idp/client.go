package idp

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/gatehouse/gatehouse/internal/storage"
)

// Grant type names as stored on clients.
const (
	grantCode    = "authorization_code"
	grantRefresh = "refresh_token"
	grantCC      = "client_credentials"
	// grantTokenExchange is RFC 8693's grant, for confidential clients only.
	grantTokenExchange = string(oidc.GrantTypeTokenExchange)
)

// client adapts storage.Client to op.Client.
type client struct{ storage.Client }

var _ op.Client = client{}

func (c client) GetID() string                    { return c.ID }
func (c client) RedirectURIs() []string           { return c.Client.RedirectURIs }
func (c client) PostLogoutRedirectURIs() []string { return c.Client.PostLogoutRedirectURIs }
func (c client) ApplicationType() op.ApplicationType {
	if c.Public {
		return op.ApplicationTypeNative
	}
	return op.ApplicationTypeWeb
}
func (c client) AuthMethod() oidc.AuthMethod {
	if c.Public {
		return oidc.AuthMethodNone
	}
	return oidc.AuthMethodBasic
}
func (c client) ResponseTypes() []oidc.ResponseType {
	return []oidc.ResponseType{oidc.ResponseTypeCode}
}
func (c client) GrantTypes() []oidc.GrantType {
	out := make([]oidc.GrantType, 0, len(c.Client.GrantTypes))
	for _, g := range c.Client.GrantTypes {
		out = append(out, oidc.GrantType(g))
	}
	return out
}
func (c client) LoginURL(string) string               { return "" }
func (c client) AccessTokenType() op.AccessTokenType  { return op.AccessTokenTypeJWT }
func (c client) IDTokenLifetime() time.Duration       { return 0 }
func (c client) DevMode() bool                        { return false }
func (c client) IsScopeAllowed(s string) bool         { return slices.Contains(c.Scopes, s) }
func (c client) IDTokenUserinfoClaimsAssertion() bool { return false }
func (c client) ClockSkew() time.Duration             { return 0 }
func (c client) hasGrant(g string) bool               { return slices.Contains(c.Client.GrantTypes, g) }
func (c client) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (c client) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}

// clientCache keeps client records for a short TTL: the token endpoint's hot
// path then costs no database read. Deleting or changing a client reaches
// every replica within the TTL (the cache also holds negative answers
// briefly, so a flood of unknown ids does not reach the database).
type clientCache struct {
	store storage.ClientStore
	ttl   time.Duration
	now   func() time.Time
	mu    sync.RWMutex
	m     map[string]cachedClient
}

type cachedClient struct {
	c       storage.Client
	found   bool
	expires time.Time
}

// staleMax bounds how long a cached client is used past its TTL while the
// database is unavailable.
const staleMax = 5 * time.Minute

func newClientCache(s storage.ClientStore, ttl time.Duration, now func() time.Time) *clientCache {
	return &clientCache{store: s, ttl: ttl, now: now, m: map[string]cachedClient{}}
}

func (cc *clientCache) get(ctx context.Context, id string) (storage.Client, error) {
	now := cc.now()
	cc.mu.RLock()
	e, ok := cc.m[id]
	cc.mu.RUnlock()
	if ok && now.Before(e.expires) {
		if !e.found {
			return storage.Client{}, storage.ErrNotFound
		}
		return e.c, nil
	}
	c, err := cc.store.GetClient(ctx, id)
	found := err == nil
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		// Stale-if-error: while the database is unreachable, a client seen
		// within staleMax keeps working (RL-04; tokens keep flowing).
		if ok && e.found && errors.Is(err, storage.ErrUnavailable) && now.Sub(e.expires) < staleMax {
			return e.c, nil
		}
		return storage.Client{}, err
	}
	cc.mu.Lock()
	if len(cc.m) > 50_000 {
		clear(cc.m)
	}
	cc.m[id] = cachedClient{c: c, found: found, expires: now.Add(cc.ttl)}
	cc.mu.Unlock()
	return c, err
}

// errInvalidClient is the single answer to every client-authentication
// failure (unknown client, wrong secret, wrong method): 401 invalid_client.
func errInvalidClient() error {
	return op.NewStatusError(oidc.ErrInvalidClient().WithDescription("client authentication failed"), http.StatusUnauthorized)
}

// authenticateClient checks the client credentials of a token, introspection
// or revocation request. Confidential clients must present their secret;
// public clients must not present one.
func (p *Provider) authenticateClient(ctx context.Context, cc *op.ClientCredentials) (client, error) {
	if cc == nil || cc.ClientID == "" || len(cc.ClientID) > 256 {
		return client{}, errInvalidClient()
	}
	if cc.ClientAssertion != "" || cc.ClientAssertionType != "" {
		return client{}, op.NewStatusError(oidc.ErrInvalidClient().WithDescription("client assertions are not supported"), http.StatusUnauthorized)
	}
	c, err := p.clients.get(ctx, cc.ClientID)
	if err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			// Spend the same work as a real verification.
			p.secrets.Verify(cc.ClientSecret, nil)
			return client{}, errInvalidClient()
		}
		return client{}, p.storageErr(err)
	}
	if c.Public {
		if cc.ClientSecret != "" {
			return client{}, errInvalidClient()
		}
		return client{c}, nil
	}
	if cc.ClientSecret == "" || !p.secrets.Verify(cc.ClientSecret, c.SecretHash) {
		return client{}, errInvalidClient()
	}
	return client{c}, nil
}

// storageErr maps a storage failure to the protocol: 503 when the database
// is unavailable (RL-04), 500 otherwise. The cause is logged, not returned.
func (p *Provider) storageErr(err error) error {
	p.log.Error("storage failure", "err", err)
	if errors.Is(err, storage.ErrUnavailable) {
		return op.NewStatusError(&oidc.Error{ErrorType: "temporarily_unavailable", Description: "storage unavailable"}, http.StatusServiceUnavailable)
	}
	return op.NewStatusError(oidc.ErrServerError().WithDescription("internal error"), http.StatusInternalServerError)
}
