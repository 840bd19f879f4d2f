package idp

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/gatehouse/gatehouse/internal/secret"
	"github.com/gatehouse/gatehouse/internal/storage"
	"github.com/gatehouse/gatehouse/sdk/jwtx"
)

// verifiedToken is an access token of ours whose signature, type, issuer and
// lifetime were checked.
type verifiedToken struct {
	claims  accessClaims
	expires time.Time
	kid     string
}

// verifyAccessToken validates one of our own access tokens: strict JWS
// parsing and signature with our published keys (jwtx), typ at+jwt, exact
// issuer, exp required. Revocation is checked separately (the verification
// result is cached, the revocation state is not).
func (p *Provider) verifyAccessToken(tok string) (verifiedToken, bool) {
	if len(tok) > 8192 {
		return verifiedToken{}, false
	}
	key := sha256.Sum256([]byte(tok))
	now := p.now()
	if v, ok := p.intro.get(key); ok {
		// A key revoked in an emergency invalidates cached results at once.
		if _, _, published := p.signer.PublicKey(v.kid); published && now.Before(v.expires) {
			return v, true
		}
		return verifiedToken{}, false
	}
	hdr, payload, err := jwtx.Verify(tok, p.signer.PublicKey, jwtx.Options{MaxLen: 8192, Typ: []string{typAccessToken, "application/at+jwt"}})
	if err != nil {
		return verifiedToken{}, false
	}
	c, err := jwtx.ParseClaims(payload)
	if err != nil || c.Issuer != p.cfg.Issuer || c.Expiry == nil || c.ClientID == "" || c.JTI == "" {
		return verifiedToken{}, false
	}
	if err := jwtx.ValidateTime(c, now, 0); err != nil {
		return verifiedToken{}, false
	}
	var ac accessClaims
	if err := json.Unmarshal(payload, &ac); err != nil {
		return verifiedToken{}, false
	}
	v := verifiedToken{claims: ac, expires: time.Unix(*c.Expiry, 0), kid: hdr.Kid}
	p.intro.put(key, v)
	return v, true
}

// activeAccessToken is verifyAccessToken plus the revocation check (by grant
// id and by jti). Introspection, userinfo and token exchange all use it.
func (p *Provider) activeAccessToken(tok string) (verifiedToken, bool) {
	v, ok := p.verifyAccessToken(tok)
	if !ok || p.revoked.isRevoked(v.claims.GrantID, v.claims.JTI) {
		return verifiedToken{}, false
	}
	return v, true
}

// introspectionResponse is RFC 7662's answer.
type introspectionResponse struct {
	Active    bool     `json:"active"`
	Scope     string   `json:"scope,omitempty"`
	ClientID  string   `json:"client_id,omitempty"`
	Subject   string   `json:"sub,omitempty"`
	Audience  []string `json:"aud,omitempty"`
	Issuer    string   `json:"iss,omitempty"`
	Expiry    int64    `json:"exp,omitempty"`
	IssuedAt  int64    `json:"iat,omitempty"`
	JTI       string   `json:"jti,omitempty"`
	TokenType string   `json:"token_type,omitempty"`
	AuthTime  int64    `json:"auth_time,omitempty"`
	ACR       string   `json:"acr,omitempty"`
	Roles     []string `json:"roles,omitempty"`
	Groups    []string `json:"groups,omitempty"`
	Tenant    string   `json:"tenant,omitempty"`
	Act       *actor   `json:"act,omitempty"`
}

var inactive = &introspectionResponse{Active: false}

// Introspect answers RFC 7662 requests from authenticated confidential
// clients. Access tokens may be introspected by any confidential client
// (resource servers); refresh tokens only by the client they were issued to.
func (s *server) Introspect(ctx context.Context, r *op.Request[op.IntrospectionRequest]) (*op.Response, error) {
	p := s.p
	c, err := p.authenticateClient(ctx, r.Data.ClientCredentials)
	if err != nil {
		p.metrics.clientAuthFailures.Inc()
		return nil, err
	}
	if c.Public {
		return nil, errInvalidClient()
	}
	tok := r.Data.Token
	p.metrics.introspections.Inc()
	if strings.Count(tok, ".") == 2 {
		v, ok := p.activeAccessToken(tok)
		if !ok {
			return op.NewResponse(inactive), nil
		}
		cl := v.claims
		return op.NewResponse(&introspectionResponse{Active: true, Scope: cl.Scope, ClientID: cl.ClientID,
			Subject: cl.Subject, Audience: cl.Audience, Issuer: cl.Issuer, Expiry: cl.Expiry, IssuedAt: cl.IssuedAt,
			JTI: cl.JTI, TokenType: oidc.BearerToken, AuthTime: cl.AuthTime, ACR: cl.ACR, Roles: cl.Roles,
			Groups: cl.Groups, Tenant: cl.Tenant, Act: cl.Act}), nil
	}
	rt, g, ok, err := p.activeRefreshToken(ctx, tok)
	if err != nil {
		return nil, p.storageErr(err)
	}
	if !ok || rt.ClientID != c.ID {
		return op.NewResponse(inactive), nil
	}
	return op.NewResponse(&introspectionResponse{Active: true, Scope: strings.Join(g.Scopes, " "), ClientID: g.ClientID,
		Subject: g.UserID, Audience: g.Audience, Issuer: p.cfg.Issuer, Expiry: rt.ExpiresAt.Unix(),
		IssuedAt: rt.CreatedAt.Unix(), TokenType: "refresh_token"}), nil
}

func (p *Provider) activeRefreshToken(ctx context.Context, tok string) (storage.RefreshToken, storage.Grant, bool, error) {
	if tok == "" || len(tok) > 512 {
		return storage.RefreshToken{}, storage.Grant{}, false, nil
	}
	rt, err := p.store.GetRefreshToken(ctx, secret.Lookup(tok))
	if errors.Is(err, storage.ErrNotFound) {
		return rt, storage.Grant{}, false, nil
	} else if err != nil {
		return rt, storage.Grant{}, false, err
	}
	g, err := p.store.GetGrant(ctx, rt.GrantID)
	if errors.Is(err, storage.ErrNotFound) {
		return rt, g, false, nil
	} else if err != nil {
		return rt, g, false, err
	}
	now := p.now()
	active := rt.UsedAt.IsZero() && now.Before(rt.ExpiresAt) && g.RevokedAt.IsZero() && now.Before(g.ExpiresAt) &&
		!p.revoked.isRevoked(g.ID, "")
	return rt, g, active, nil
}

// Revocation implements RFC 7009. Revoking a refresh token revokes its whole
// grant (and so the grant's access tokens); revoking an access token revokes
// that token. An exchanged token (RFC 8693) may also be revoked by the client
// it was issued to (its act.sub). Tokens of other clients and unknown tokens
// are ignored, and the answer is always 200.
func (s *server) Revocation(ctx context.Context, r *op.ClientRequest[oidc.RevocationRequest]) (*op.Response, error) {
	p := s.p
	c := r.Client.(client)
	tok := r.Data.Token
	if strings.Count(tok, ".") == 2 {
		if v, ok := p.verifyAccessToken(tok); ok && (v.claims.ClientID == c.ID || v.claims.Act != nil && v.claims.Act.Subject == c.ID) {
			now := p.now()
			p.revoked.addToken(v.claims.JTI, v.expires)
			if err := p.store.RevokeAccessToken(ctx, storage.RevokedToken{JTI: v.claims.JTI, ExpiresAt: v.expires, RevokedAt: now}); err != nil {
				return nil, p.storageErr(err)
			}
		}
		return op.NewResponse(struct{}{}), nil
	}
	rt, _, _, err := p.activeRefreshToken(ctx, tok)
	if err != nil {
		return nil, p.storageErr(err)
	}
	if rt.GrantID != "" && rt.ClientID == c.ID {
		p.revoked.addGrant(rt.GrantID, p.now())
		if err := p.store.RevokeGrant(ctx, rt.GrantID, "revoked_by_client", p.now()); err != nil && !errors.Is(err, storage.ErrNotFound) {
			return nil, p.storageErr(err)
		}
	}
	return op.NewResponse(struct{}{}), nil
}

// UserInfo returns the claims of the access token's user (OIDC Core §5.3).
func (s *server) UserInfo(ctx context.Context, r *op.Request[oidc.UserInfoRequest]) (*op.Response, error) {
	p := s.p
	v, ok := p.activeAccessToken(r.Data.AccessToken)
	scopes := strings.Fields(v.claims.Scope)
	if !ok || !slices.Contains(scopes, oidc.ScopeOpenID) || v.claims.GrantID == "" {
		return nil, op.NewStatusError(&oidc.Error{ErrorType: "invalid_token", Description: "the access token is invalid"}, http.StatusUnauthorized)
	}
	u, err := p.store.GetUser(ctx, v.claims.Subject)
	if err != nil || u.Disabled {
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			return nil, p.storageErr(err)
		}
		return nil, op.NewStatusError(&oidc.Error{ErrorType: "invalid_token", Description: "the access token is invalid"}, http.StatusUnauthorized)
	}
	out := map[string]any{"sub": u.ID}
	if slices.Contains(scopes, oidc.ScopeProfile) {
		out["preferred_username"] = u.Username
		if u.Name != "" {
			out["name"] = u.Name
		}
	}
	if slices.Contains(scopes, oidc.ScopeEmail) && u.Email != "" {
		out["email"] = u.Email
		out["email_verified"] = u.EmailVerified
	}
	return op.NewResponse(out), nil
}

// bearerChallenge adds WWW-Authenticate to 401 answers of the userinfo endpoint (RFC 6750).
func bearerChallenge(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(&challengeWriter{ResponseWriter: w}, r)
	})
}

type challengeWriter struct{ http.ResponseWriter }

// noQueryToken refuses access tokens in the query string (RFC 6750 §2.3 is
// not supported: URLs end up in logs and Referer headers).
func noQueryToken(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Has("access_token") {
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_request"`)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"error":"invalid_request","error_description":"access tokens are not accepted in the query string"}`))
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (w *challengeWriter) WriteHeader(status int) {
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
	}
	w.ResponseWriter.WriteHeader(status)
}

// introspectionCache remembers successfully verified access tokens by the
// SHA-256 of the token, until they expire (bounded size).
type introspectionCache struct {
	mu  sync.RWMutex
	m   map[[32]byte]verifiedToken
	max int
}

func newIntrospectionCache(max int) *introspectionCache {
	return &introspectionCache{m: make(map[[32]byte]verifiedToken), max: max}
}

func (c *introspectionCache) get(k [32]byte) (verifiedToken, bool) {
	c.mu.RLock()
	v, ok := c.m[k]
	c.mu.RUnlock()
	return v, ok
}

func (c *introspectionCache) put(k [32]byte, v verifiedToken) {
	c.mu.Lock()
	if len(c.m) >= c.max {
		clear(c.m) // crude but bounded; entries are cheap to rebuild
	}
	c.m[k] = v
	c.mu.Unlock()
}
