package idp

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/gatehouse/gatehouse/internal/secret"
	"github.com/gatehouse/gatehouse/internal/storage"
)

// server implements op.Server: op parses and routes, we decide.
type server struct {
	op.UnimplementedServer
	p *Provider
}

func errInvalidGrant() error {
	return oidc.ErrInvalidGrant().WithDescription("the grant is invalid, expired or revoked")
}

func (s *server) VerifyClient(ctx context.Context, r *op.Request[op.ClientCredentials]) (op.Client, error) {
	c, err := s.p.authenticateClient(ctx, r.Data)
	if err != nil {
		s.p.metrics.clientAuthFailures.Inc()
		return nil, err
	}
	return c, nil
}

func (s *server) Keys(context.Context, *op.Request[struct{}]) (*op.Response, error) {
	set, maxAge := s.p.signer.JWKS()
	resp := op.NewResponse(set)
	resp.Header.Set("Cache-Control", "public, max-age="+strconv.FormatInt(int64(maxAge/time.Second), 10))
	return resp, nil
}

// CodeExchange redeems an authorization code (RFC 6749 §4.1.3, RFC 7636).
func (s *server) CodeExchange(ctx context.Context, r *op.ClientRequest[oidc.AccessTokenRequest]) (*op.Response, error) {
	p := s.p
	c := r.Client.(client)
	now := p.now()
	ac, err := p.store.RedeemAuthCode(ctx, secret.Lookup(r.Data.Code), now)
	switch {
	case errors.Is(err, storage.ErrAlreadyUsed):
		// OA-C: a second redemption revokes what the first issued.
		p.revokeGrant(ctx, ac.GrantID, "code_reuse")
		p.metrics.reuseDetected.WithLabelValues("code").Inc()
		return nil, errInvalidGrant()
	case errors.Is(err, storage.ErrNotFound), errors.Is(err, storage.ErrExpired):
		return nil, errInvalidGrant()
	case err != nil:
		return nil, p.storageErr(err)
	}
	if ac.ClientID != c.ID || ac.RedirectURI != r.Data.RedirectURI {
		return nil, errInvalidGrant()
	}
	if err := checkPKCE(ac.CodeChallenge, r.Data.CodeVerifier); err != nil {
		return nil, err
	}
	u, err := p.store.GetUser(ctx, ac.UserID)
	if err != nil || u.Disabled {
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			return nil, p.storageErr(err)
		}
		return nil, errInvalidGrant()
	}
	g := storage.Grant{
		ID: ac.GrantID, ClientID: c.ID, UserID: u.ID, SessionID: ac.SessionID,
		Scopes: ac.Scopes, Audience: ac.Audience, AuthTime: ac.AuthTime, AMR: ac.AMR, ACR: ac.ACR,
		CreatedAt: now, ExpiresAt: now.Add(p.refreshMax(c.Client)),
	}
	var refresh string
	var rt *storage.RefreshToken
	if c.hasGrant(grantRefresh) {
		refresh = secret.New()
		rt = &storage.RefreshToken{Hash: secret.Lookup(refresh), GrantID: g.ID, ClientID: c.ID,
			CreatedAt: now, ExpiresAt: minTime(now.Add(p.refreshIdle(c.Client)), g.ExpiresAt)}
	}
	if err := p.store.CreateGrant(ctx, g, rt); err != nil {
		if errors.Is(err, storage.ErrAlreadyExists) {
			return nil, errInvalidGrant()
		}
		return nil, p.storageErr(err)
	}
	return p.tokenResponse(c.Client, &u, g, ac.Nonce, refresh, now)
}

// tokenResponse mints the access token (and ID token when openid was granted).
func (p *Provider) tokenResponse(c storage.Client, u *storage.User, g storage.Grant, nonce, refresh string, now time.Time) (*op.Response, error) {
	at, ttl, err := p.mintAccessToken(issueParams{client: c, subject: u.ID, user: u, scopes: g.Scopes,
		audience: g.Audience, grantID: g.ID, authTime: g.AuthTime, acr: g.ACR, amr: g.AMR}, now)
	if err != nil {
		return nil, p.internalErr(err)
	}
	resp := &oidc.AccessTokenResponse{AccessToken: at, TokenType: oidc.BearerToken, ExpiresIn: uint64(ttl / time.Second),
		RefreshToken: refresh, Scope: g.Scopes}
	if slices.Contains(g.Scopes, oidc.ScopeOpenID) {
		resp.IDToken, err = p.mintIDToken(c, *u, g.Scopes, nonce, g.SessionID, g.AuthTime, g.ACR, g.AMR, at, now)
		if err != nil {
			return nil, p.internalErr(err)
		}
	}
	p.metrics.tokens.WithLabelValues("user").Inc()
	return op.NewResponse(resp), nil
}

// RefreshToken rotates a refresh token (RFC 9700 §4.14): the presented token
// is used up; presenting it again revokes the whole family. There is no
// grace period: of concurrent refreshes of one token exactly one succeeds,
// and the others revoke the family (documented in docs/tokens.md).
func (s *server) RefreshToken(ctx context.Context, r *op.ClientRequest[oidc.RefreshTokenRequest]) (*op.Response, error) {
	p := s.p
	c := r.Client.(client)
	now := p.now()
	hash := secret.Lookup(r.Data.RefreshToken)
	old, err := p.store.GetRefreshToken(ctx, hash)
	if err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return nil, errInvalidGrant()
		}
		return nil, p.storageErr(err)
	}
	if old.ClientID != c.ID {
		return nil, errInvalidGrant()
	}
	g, err := p.store.GetGrant(ctx, old.GrantID)
	if err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return nil, errInvalidGrant()
		}
		return nil, p.storageErr(err)
	}
	scopes := g.Scopes
	if len(r.Data.Scopes) > 0 {
		for _, sc := range r.Data.Scopes {
			if !slices.Contains(g.Scopes, sc) {
				return nil, oidc.ErrInvalidScope().WithDescription("a refresh cannot widen the scope")
			}
		}
		scopes = r.Data.Scopes
	}
	if req := requestedAudience(r.Form); len(req) > 0 {
		for _, a := range req {
			if !slices.Contains(g.Audience, a) {
				return nil, oidc.ErrInvalidTarget().WithDescription("a refresh cannot widen the audience")
			}
		}
	}
	next := secret.New()
	nrt := storage.RefreshToken{Hash: secret.Lookup(next), GrantID: g.ID, ClientID: c.ID, CreatedAt: now,
		ExpiresAt: minTime(now.Add(p.refreshIdle(c.Client)), g.ExpiresAt)}
	_, g, err = p.store.RotateRefreshToken(ctx, hash, nrt, now)
	switch {
	case errors.Is(err, storage.ErrAlreadyUsed):
		p.revokeGrant(ctx, old.GrantID, "refresh_reuse")
		p.metrics.reuseDetected.WithLabelValues("refresh").Inc()
		return nil, errInvalidGrant()
	case errors.Is(err, storage.ErrNotFound), errors.Is(err, storage.ErrExpired), errors.Is(err, storage.ErrRevoked):
		return nil, errInvalidGrant()
	case err != nil:
		return nil, p.storageErr(err)
	}
	u, err := p.store.GetUser(ctx, g.UserID)
	if err != nil || u.Disabled {
		p.revokeGrant(ctx, g.ID, "user_disabled")
		return nil, errInvalidGrant()
	}
	g.Scopes = scopes
	return p.tokenResponse(c.Client, &u, g, "", next, now)
}

// ClientCredentialsExchange issues a client's own access token (RFC 6749 §4.4).
func (s *server) ClientCredentialsExchange(ctx context.Context, r *op.ClientRequest[oidc.ClientCredentialsRequest]) (*op.Response, error) {
	p := s.p
	c := r.Client.(client)
	for _, sc := range r.Data.Scope {
		if sc == oidc.ScopeOpenID || sc == oidc.ScopeOfflineAccess || !c.IsScopeAllowed(sc) {
			return nil, oidc.ErrInvalidScope().WithDescription("a requested scope is not allowed for this client")
		}
	}
	aud, err := p.resolveAudience(c.Client, requestedAudience(r.Form))
	if err != nil {
		return nil, err
	}
	now := p.now()
	at, ttl, err := p.mintAccessToken(issueParams{client: c.Client, subject: c.ID, scopes: r.Data.Scope, audience: aud}, now)
	if err != nil {
		return nil, p.internalErr(err)
	}
	p.metrics.tokens.WithLabelValues("client").Inc()
	return op.NewResponse(&oidc.AccessTokenResponse{AccessToken: at, TokenType: oidc.BearerToken,
		ExpiresIn: uint64(ttl / time.Second), Scope: r.Data.Scope}), nil
}

// checkPKCE verifies an S256 code_verifier (OA-P). A verifier sent for a
// code issued without a challenge is a downgrade attempt and is rejected.
func checkPKCE(challenge, verifier string) error {
	if challenge == "" {
		if verifier != "" {
			return oidc.ErrInvalidGrant().WithDescription("code_verifier sent but no code_challenge was made")
		}
		return nil
	}
	if !validVerifier(verifier) {
		return oidc.ErrInvalidGrant().WithDescription("invalid code_verifier")
	}
	sum := sha256.Sum256([]byte(verifier))
	got := base64.RawURLEncoding.EncodeToString(sum[:])
	if subtle.ConstantTimeCompare([]byte(got), []byte(challenge)) != 1 {
		return oidc.ErrInvalidGrant().WithDescription("invalid code_verifier")
	}
	return nil
}

// validVerifier: 43-128 characters of [A-Za-z0-9-._~] (RFC 7636 §4.1).
func validVerifier(v string) bool {
	if len(v) < 43 || len(v) > 128 {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~') {
			return false
		}
	}
	return true
}

// revokeGrant revokes a token family and records it locally at once. A
// concurrent first redemption may not have created the grant yet; the
// revocation is retried briefly so the family cannot escape.
func (p *Provider) revokeGrant(ctx context.Context, id, reason string) {
	if id == "" {
		return
	}
	p.revoked.addGrant(id, p.now())
	for i := 0; i < 20; i++ {
		err := p.store.RevokeGrant(ctx, id, reason, p.now())
		if err == nil {
			return
		}
		if !errors.Is(err, storage.ErrNotFound) {
			p.log.Error("revoke grant", "err", err)
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (p *Provider) internalErr(err error) error {
	p.log.Error("internal error", "err", err)
	return op.NewStatusError(oidc.ErrServerError().WithDescription("internal error"), http.StatusInternalServerError)
}

func (p *Provider) refreshIdle(c storage.Client) time.Duration {
	if c.RefreshIdleTTL > 0 {
		return c.RefreshIdleTTL
	}
	return p.cfg.RefreshIdleTTL
}

func (p *Provider) refreshMax(c storage.Client) time.Duration {
	if c.RefreshMaxTTL > 0 {
		return c.RefreshMaxTTL
	}
	return p.cfg.RefreshMaxTTL
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
