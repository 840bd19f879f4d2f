package idp

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/gatehouse/gatehouse/internal/secret"
	"github.com/gatehouse/gatehouse/internal/storage"
)

// Token type header values.
const (
	typAccessToken = "at+jwt" // RFC 9068
	typIDToken     = "JWT"
)

// accessClaims are the claims of a JWT access token (RFC 9068), plus the
// grant id (gid) used to revoke every token of a family, and the user
// attributes selected by the claims mapping ("provide" strategy).
type accessClaims struct {
	Issuer   string   `json:"iss"`
	Subject  string   `json:"sub"`
	Audience []string `json:"aud"`
	Expiry   int64    `json:"exp"`
	IssuedAt int64    `json:"iat"`
	JTI      string   `json:"jti"`
	ClientID string   `json:"client_id"`
	Scope    string   `json:"scope,omitempty"`
	AuthTime int64    `json:"auth_time,omitempty"`
	ACR      string   `json:"acr,omitempty"`
	AMR      []string `json:"amr,omitempty"`
	GrantID  string   `json:"gid,omitempty"`
	Roles    []string `json:"roles,omitempty"`
	Groups   []string `json:"groups,omitempty"`
	Tenant   string   `json:"tenant,omitempty"`
	Act      *actor   `json:"act,omitempty"` // RFC 8693 §4.1, only on exchanged tokens
}

// actor is RFC 8693's act claim: the client acting for the subject, with
// the previous actor (if the token was exchanged before) nested inside.
type actor struct {
	Subject string `json:"sub"`
	Actor   *actor `json:"act,omitempty"`
}

// depth counts the actors of a chain (nil has none).
func (a *actor) depth() int {
	n := 0
	for ; a != nil; a = a.Actor {
		n++
	}
	return n
}

type idClaims struct {
	Issuer            string   `json:"iss"`
	Subject           string   `json:"sub"`
	Audience          []string `json:"aud"`
	AuthorizedParty   string   `json:"azp"`
	Expiry            int64    `json:"exp"`
	IssuedAt          int64    `json:"iat"`
	AuthTime          int64    `json:"auth_time,omitempty"`
	Nonce             string   `json:"nonce,omitempty"`
	ACR               string   `json:"acr,omitempty"`
	AMR               []string `json:"amr,omitempty"`
	AccessTokenHash   string   `json:"at_hash,omitempty"`
	SessionID         string   `json:"sid,omitempty"`
	Name              string   `json:"name,omitempty"`
	PreferredUsername string   `json:"preferred_username,omitempty"`
	Email             string   `json:"email,omitempty"`
	EmailVerified     *bool    `json:"email_verified,omitempty"`
}

// issueParams describe one access token.
type issueParams struct {
	client   storage.Client
	subject  string
	user     *storage.User // nil for client credentials
	scopes   []string
	audience []string
	grantID  string
	authTime time.Time
	acr      string
	amr      []string
}

func (p *Provider) accessTTL(c storage.Client) time.Duration {
	if c.AccessTokenTTL > 0 {
		return c.AccessTokenTTL
	}
	return p.cfg.AccessTokenTTL
}

// mintAccessToken signs an RFC 9068 access token.
func (p *Provider) mintAccessToken(ip issueParams, now time.Time) (string, time.Duration, error) {
	ttl := p.accessTTL(ip.client)
	c := accessClaims{
		Issuer:   p.cfg.Issuer,
		Subject:  ip.subject,
		Audience: ip.audience,
		Expiry:   now.Add(ttl).Unix(),
		IssuedAt: now.Unix(),
		JTI:      secret.Token(16),
		ClientID: ip.client.ID,
		Scope:    strings.Join(ip.scopes, " "),
		ACR:      ip.acr,
		AMR:      ip.amr,
		GrantID:  ip.grantID,
	}
	if !ip.authTime.IsZero() {
		c.AuthTime = ip.authTime.Unix()
	}
	if u := ip.user; u != nil {
		if p.cfg.Claims.Roles {
			c.Roles = u.Roles
		}
		if p.cfg.Claims.Groups {
			c.Groups = u.Groups
		}
		if p.cfg.Claims.Tenant {
			c.Tenant = u.Tenant
		}
	}
	tok, err := p.signAccessClaims(c)
	if err != nil {
		return "", 0, err
	}
	return tok, ttl, nil
}

// signAccessClaims signs complete access-token claims (typ at+jwt).
func (p *Provider) signAccessClaims(c accessClaims) (string, error) {
	tok, err := p.signer.Sign(typAccessToken, c)
	if err != nil {
		return "", fmt.Errorf("sign access token: %w", err)
	}
	return tok, nil
}

// mintIDToken signs an OpenID Connect ID token for user u.
func (p *Provider) mintIDToken(c storage.Client, u storage.User, scopes []string, nonce, sid string,
	authTime time.Time, acr string, amr []string, accessToken string, now time.Time) (string, error) {
	claims := idClaims{
		Issuer:          p.cfg.Issuer,
		Subject:         u.ID,
		Audience:        []string{c.ID},
		AuthorizedParty: c.ID,
		Expiry:          now.Add(p.cfg.IDTokenTTL).Unix(),
		IssuedAt:        now.Unix(),
		Nonce:           nonce,
		ACR:             acr,
		AMR:             amr,
		SessionID:       sid,
	}
	if !authTime.IsZero() {
		claims.AuthTime = authTime.Unix()
	}
	if accessToken != "" {
		h, err := oidc.ClaimHash(accessToken, jose.SignatureAlgorithm(p.signer.Algorithm()))
		if err != nil {
			return "", fmt.Errorf("at_hash: %w", err)
		}
		claims.AccessTokenHash = h
	}
	if slices.Contains(scopes, oidc.ScopeProfile) {
		claims.Name = u.Name
		claims.PreferredUsername = u.Username
	}
	if slices.Contains(scopes, oidc.ScopeEmail) && u.Email != "" {
		claims.Email = u.Email
		v := u.EmailVerified
		claims.EmailVerified = &v
	}
	tok, err := p.signer.Sign(typIDToken, claims)
	if err != nil {
		return "", fmt.Errorf("sign id token: %w", err)
	}
	return tok, nil
}

// resolveAudience limits the requested audiences (RFC 8707 resource or the
// audience parameter) to those the client may ask for. Nothing requested:
// every audience the client may ask for, or the issuer when it has none.
func (p *Provider) resolveAudience(c storage.Client, requested []string) ([]string, error) {
	if len(requested) == 0 {
		if len(c.Audiences) > 0 {
			return slices.Clone(c.Audiences), nil
		}
		return []string{p.cfg.Issuer}, nil
	}
	out := make([]string, 0, len(requested))
	for _, a := range requested {
		if !slices.Contains(c.Audiences, a) {
			return nil, oidc.ErrInvalidTarget().WithDescription("audience not allowed for this client")
		}
		if !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out, nil
}

// requestedAudience reads the RFC 8707 resource and the audience parameters.
func requestedAudience(form map[string][]string) []string {
	var out []string
	for _, k := range []string{"resource", "audience"} {
		for _, v := range form[k] {
			for _, a := range strings.Fields(v) {
				out = append(out, a)
			}
		}
	}
	return out
}
