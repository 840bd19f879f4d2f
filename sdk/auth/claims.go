package auth

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/gatehouse/gatehouse/sdk/jwtx"
)

// Claims is what a verified access token says about the caller. A *Claims
// returned by an Authenticator may be shared between requests (the
// verified-token cache hands out the same value): treat it as read-only.
type Claims struct {
	Issuer   string
	Subject  string // the end user, or the client itself for client credentials
	ClientID string
	Audience []string
	Scopes   []string
	Roles    []string
	Groups   []string
	Tenant   string
	Expiry   time.Time
	IssuedAt time.Time // zero when absent
	ID       string    // jti
	// Token is the raw access token, kept so that it can be propagated to
	// downstream services (see PropagatingTransport). Never log it.
	Token string
	// Extra holds every other claim, undecoded.
	Extra map[string]json.RawMessage
}

// HasScope reports whether the token was granted scope s.
func (c *Claims) HasScope(s string) bool { return slices.Contains(c.Scopes, s) }

// HasRole reports whether the subject has role r.
func (c *Claims) HasRole(r string) bool { return slices.Contains(c.Roles, r) }

// HasGroup reports whether the subject is in group g.
func (c *Claims) HasGroup(g string) bool { return slices.Contains(c.Groups, g) }

// EndUser reports whether the token acts for an end user. A client
// credentials token names the client itself as subject (RFC 9068 §2.2), so
// it has no end user.
func (c *Claims) EndUser() bool { return c.Subject != "" && c.Subject != c.ClientID }

type claimsKey struct{}

// ContextWithClaims returns a copy of ctx carrying c. The middleware and the
// gRPC interceptors call it; handlers read the claims with ClaimsFromContext.
func ContextWithClaims(ctx context.Context, c *Claims) context.Context {
	return context.WithValue(ctx, claimsKey{}, c)
}

// ClaimsFromContext returns the claims of the authenticated caller, if any.
func ClaimsFromContext(ctx context.Context) (*Claims, bool) {
	c, ok := ctx.Value(claimsKey{}).(*Claims)
	return c, ok && c != nil
}

// Authenticator turns a bearer token into verified claims. Verifier (local
// JWT validation) and Introspector (RFC 7662) implement it. Errors wrap
// ErrInvalidToken when the token is unacceptable, and ErrUnavailable when the
// authenticator cannot decide (keys not loaded, introspection endpoint down);
// both are answered 401 at the edge, never as an allow.
type Authenticator interface {
	Authenticate(ctx context.Context, token string) (*Claims, error)
}

// identityClaims reads Gatehouse's identity claims from a token's or an
// introspection answer's extra members: roles and groups are arrays of
// strings, tenant a string. Any other form is refused (JWT-C04: one
// canonical parse).
func identityClaims(extra map[string]json.RawMessage) (roles, groups []string, tenant string, err error) {
	if raw, ok := extra["roles"]; ok {
		if roles, err = jwtx.StringList(raw); err != nil {
			return nil, nil, "", fmt.Errorf("%w: roles", errClaimTyp)
		}
	}
	if raw, ok := extra["groups"]; ok {
		if groups, err = jwtx.StringList(raw); err != nil {
			return nil, nil, "", fmt.Errorf("%w: groups", errClaimTyp)
		}
	}
	if raw, ok := extra["tenant"]; ok {
		if tenant, err = jwtx.StringValue(raw); err != nil {
			return nil, nil, "", fmt.Errorf("%w: tenant", errClaimTyp)
		}
	}
	return roles, groups, tenant, nil
}
