package authz

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/gatehouse/gatehouse/internal/authz/policy"
	"github.com/gatehouse/gatehouse/sdk/auth"
)

// errNoPrincipalTokens: the service has no principal verifier.
var errNoPrincipalTokens = errors.New("principal tokens are not accepted by this service")

// principalFromToken verifies a principal's access token and turns its
// claims into an entity (AZ-03): the id is the token's sub (or, for a
// client-credentials token, client::"<client_id>"), iss is kept as an
// attribute, and email or names are never used. A token from another issuer
// fails verification.
func (s *Service) principalFromToken(ctx context.Context, token string) (policy.Entity, error) {
	if s.principals == nil {
		return policy.Entity{}, errNoPrincipalTokens
	}
	c, err := s.principals.Authenticate(ctx, token)
	if err != nil {
		if errors.Is(err, auth.ErrUnavailable) {
			return policy.Entity{}, errors.New("principal token cannot be verified now")
		}
		return policy.Entity{}, errors.New("principal token refused")
	}
	return entityFromClaims(c)
}

// entityFromClaims maps verified claims to a principal entity.
func entityFromClaims(c *auth.Claims) (policy.Entity, error) {
	e := policy.Entity{Type: "user", ID: c.Subject}
	if !c.EndUser() {
		e = policy.Entity{Type: "client", ID: c.ClientID}
	}
	if !validID(e.ID) {
		return policy.Entity{}, errors.New("principal token names no usable subject")
	}
	attrs := map[string]any{
		"iss":    c.Issuer,
		"sub":    c.Subject,
		"roles":  anyList(c.Roles),
		"scopes": anyList(c.Scopes),
	}
	if c.Tenant != "" {
		attrs["tenant"] = c.Tenant
	}
	if c.ClientID != "" {
		attrs["client_id"] = c.ClientID
	}
	if raw, ok := c.Extra["acr"]; ok {
		var acr string
		if err := json.Unmarshal(raw, &acr); err == nil {
			attrs["acr"] = acr
		}
	}
	if raw, ok := c.Extra["auth_time"]; ok {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		var n json.Number
		if err := dec.Decode(&n); err == nil {
			attrs["auth_time"] = n
		}
	}
	e.Attrs = attrs
	return e, nil
}

// resolvePrincipal returns the entity and the raw token (for hashing in
// the log) of a decoded principal.
func (s *Service) resolvePrincipal(ctx context.Context, p principalInput) (policy.Entity, string, error) {
	if p.token == "" {
		return p.entity, "", nil
	}
	e, err := s.principalFromToken(ctx, p.token)
	return e, p.token, err
}

// Authenticators accepts a token that any of its authenticators accepts,
// trying them in order: one Verifier per principal audience
// (authz.principal_audiences), since a Verifier holds one audience per
// issuer. When none accepts, the error wraps auth.ErrUnavailable if any
// authenticator could not decide, else auth.ErrInvalidToken.
type Authenticators []auth.Authenticator

// Authenticate implements auth.Authenticator.
func (as Authenticators) Authenticate(ctx context.Context, token string) (*auth.Claims, error) {
	unavailable := false
	for _, a := range as {
		c, err := a.Authenticate(ctx, token)
		if err == nil {
			return c, nil
		}
		if errors.Is(err, auth.ErrUnavailable) {
			unavailable = true
		}
	}
	if unavailable {
		return nil, fmt.Errorf("%w: no authenticator could verify the token", auth.ErrUnavailable)
	}
	return nil, fmt.Errorf("%w: no authenticator accepted the token", auth.ErrInvalidToken)
}
