package idp

import (
	"context"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/gatehouse/gatehouse/internal/secret"
)

// Token exchange (RFC 8693), as used by the API gateway: a confidential
// client registered for the grant swaps a user's access token (issued by us)
// for a short-lived token for exactly one of its registered audiences. The
// new token keeps the user's identity (sub, tenant, roles, groups, auth_time,
// acr, amr), the original client_id and the grant id (so revoking the user's
// grant revokes it too), gains act {"sub": exchanging client}, and never has
// a wider scope or a longer life than the subject token. See docs/tokens.md.

const (
	defaultExchangeTTL = 5 * time.Minute
	// maxActDepth bounds the actor chain (act inside act) of a token that
	// may be exchanged again.
	maxActDepth = 4
	// maxExchangeScopes bounds the number of requested scope values.
	maxExchangeScopes = 100
	maxAudienceLen    = 2048
	maxSubjectLen     = 8192
)

// exchangeRequest is a token-exchange request whose shape was validated.
type exchangeRequest struct {
	subjectToken string
	audience     string
	scopes       []string // nil when the request names no scope
}

// errBadSubject answers every unacceptable subject token alike: it never
// says why, and never echoes the token.
func errBadSubject() *oidc.Error {
	return oidc.ErrInvalidRequest().WithDescription("the subject token is invalid, expired or revoked") // RFC 8693 §2.2.2
}

// parseExchange validates the parameters of a token-exchange request
// (RFC 8693 §2.1) against what Gatehouse supports: an access token as
// subject, no actor token, an access token as the result, no resource,
// exactly one audience, and an optional space-separated scope. Every
// parameter may appear at most once. Error descriptions are fixed strings.
func parseExchange(form url.Values) (exchangeRequest, *oidc.Error) {
	for _, v := range form {
		if len(v) > 1 {
			return exchangeRequest{}, oidc.ErrInvalidRequest().WithDescription("a parameter is repeated")
		}
	}
	has := func(k string) bool { _, ok := form[k]; return ok }
	var req exchangeRequest
	switch {
	case has("actor_token") || has("actor_token_type"):
		return req, oidc.ErrInvalidRequest().WithDescription("actor tokens are not supported")
	case has("resource"):
		return req, oidc.ErrInvalidTarget().WithDescription("the resource parameter is not supported; use audience")
	case form.Get("subject_token") == "":
		return req, oidc.ErrInvalidRequest().WithDescription("subject_token missing")
	case form.Get("subject_token_type") != string(oidc.AccessTokenType):
		return req, oidc.ErrInvalidRequest().WithDescription("subject_token_type must be " + string(oidc.AccessTokenType))
	case has("requested_token_type") && form.Get("requested_token_type") != string(oidc.AccessTokenType):
		return req, oidc.ErrInvalidRequest().WithDescription("requested_token_type must be " + string(oidc.AccessTokenType))
	}
	req.subjectToken = form.Get("subject_token")
	if len(req.subjectToken) > maxSubjectLen {
		return exchangeRequest{}, errBadSubject()
	}
	aud := form.Get("audience")
	switch {
	case aud == "":
		return exchangeRequest{}, oidc.ErrInvalidRequest().WithDescription("audience missing: exactly one is required")
	case len(aud) > maxAudienceLen || len(strings.Fields(aud)) != 1 || strings.TrimSpace(aud) != aud:
		return exchangeRequest{}, oidc.ErrInvalidTarget().WithDescription("exactly one audience is required")
	}
	req.audience = aud
	if sc := form.Get("scope"); sc != "" {
		parts := strings.Split(sc, " ")
		if len(parts) > maxExchangeScopes {
			return exchangeRequest{}, oidc.ErrInvalidScope().WithDescription("too many scopes")
		}
		for _, s := range parts {
			if !validScope(s) {
				return exchangeRequest{}, oidc.ErrInvalidScope().WithDescription("malformed scope")
			}
			if !slices.Contains(req.scopes, s) {
				req.scopes = append(req.scopes, s)
			}
		}
	}
	return req, nil
}

// validScope reports whether s is an RFC 6749 scope-token (printable ASCII
// without space, '"' and '\').
func validScope(s string) bool {
	if s == "" || len(s) > 256 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// exchangeScopes decides the scope of the new token: the requested scopes
// (or, when none are requested, the subject token's) that the subject token
// has and the exchanging client is registered for. openid and
// offline_access never pass: an exchanged token is for one API, not for
// userinfo, and has no refresh token. Requesting a scope that cannot be
// granted is invalid_scope, as is an empty result.
func exchangeScopes(requested, subject, allowed []string) ([]string, *oidc.Error) {
	usable := func(s string) bool {
		return s != oidc.ScopeOpenID && s != oidc.ScopeOfflineAccess && slices.Contains(subject, s) && slices.Contains(allowed, s)
	}
	var out []string
	if requested != nil {
		for _, s := range requested {
			if !usable(s) {
				return nil, oidc.ErrInvalidScope().WithDescription("a requested scope is not granted to the subject token or not allowed for this client")
			}
		}
		out = slices.Clone(requested)
	} else {
		for _, s := range subject {
			if usable(s) && !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
	}
	if len(out) == 0 {
		return nil, oidc.ErrInvalidScope().WithDescription("no scope of the subject token may be delegated to this client")
	}
	return out, nil
}

// TokenExchange implements the RFC 8693 grant. op has already authenticated
// the client and checked that it is registered for the grant.
func (s *server) TokenExchange(_ context.Context, r *op.ClientRequest[oidc.TokenExchangeRequest]) (*op.Response, error) {
	resp, err := s.p.exchange(r.Client.(client), r.Form)
	if err != nil {
		s.p.metrics.exchanges.WithLabelValues("rejected").Inc()
		return nil, err
	}
	s.p.metrics.exchanges.WithLabelValues("issued").Inc()
	return resp, nil
}

func (p *Provider) exchange(c client, form url.Values) (*op.Response, error) {
	// Checked here as well as by op and at registration: fail closed.
	if c.Public || !c.hasGrant(grantTokenExchange) {
		return nil, oidc.ErrUnauthorizedClient().WithDescription("this client may not use token exchange")
	}
	req, oerr := parseExchange(form)
	if oerr != nil {
		return nil, oerr
	}
	if !slices.Contains(c.Audiences, req.audience) {
		return nil, oidc.ErrInvalidTarget().WithDescription("audience not allowed for this client")
	}
	// The same verification as introspection: signature with our published
	// keys, typ at+jwt, exact issuer, unexpired, not revoked (grant or jti).
	// ID tokens (typ JWT), refresh tokens (opaque) and foreign tokens fail.
	v, ok := p.activeAccessToken(req.subjectToken)
	if !ok || v.claims.Act.depth() >= maxActDepth {
		return nil, errBadSubject()
	}
	now := p.now()
	remaining := v.expires.Sub(now)
	if remaining < time.Second {
		return nil, errBadSubject()
	}
	scopes, oerr := exchangeScopes(req.scopes, strings.Fields(v.claims.Scope), c.Scopes)
	if oerr != nil {
		return nil, oerr
	}
	ttl := p.exchangeTTL(c.Client.AccessTokenTTL)
	if remaining < ttl {
		ttl = remaining
	}
	// Copy the subject's claims (sub, client_id, gid, auth_time, acr, amr,
	// roles, groups, tenant, iss) and replace what belongs to the new token.
	claims := v.claims
	claims.Issuer = p.cfg.Issuer
	claims.Audience = []string{req.audience}
	claims.IssuedAt = now.Unix()
	claims.Expiry = now.Add(ttl).Unix()
	if claims.Expiry > v.claims.Expiry { // rounding can never extend the subject's life
		claims.Expiry = v.claims.Expiry
	}
	claims.JTI = secret.Token(16)
	claims.Scope = strings.Join(scopes, " ")
	claims.Act = &actor{Subject: c.ID, Actor: v.claims.Act}
	at, err := p.signAccessClaims(claims)
	if err != nil {
		return nil, p.internalErr(err)
	}
	kind := "client"
	if claims.GrantID != "" {
		kind = "user"
	}
	p.metrics.tokens.WithLabelValues(kind).Inc()
	return op.NewResponse(&oidc.TokenExchangeResponse{AccessToken: at, IssuedTokenType: oidc.AccessTokenType,
		TokenType: oidc.BearerToken, ExpiresIn: uint64(max(claims.Expiry-now.Unix(), 0)), Scopes: scopes}), nil
}

// exchangeTTL is the lifetime of an exchanged token before it is capped by
// the subject token's: the client's own access-token TTL, else the
// configured exchange TTL.
func (p *Provider) exchangeTTL(clientTTL time.Duration) time.Duration {
	if clientTTL > 0 {
		return clientTTL
	}
	return p.cfg.ExchangeTokenTTL
}
