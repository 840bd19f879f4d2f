// Package demotest helps the demo services' tests: it mints HS256 access
// tokens for the SDK's symmetric mode, so that the services are tested
// without an identity provider, with the standard library's HMAC only.
package demotest

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/sdk/auth"
)

// Issuer is the issuer of the test tokens.
const Issuer = "https://gatehouse.test"

// Minter signs test tokens with one random key.
type Minter struct {
	key []byte
}

// NewMinter returns a minter with a fresh 32-byte key.
func NewMinter() *Minter {
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	return &Minter{key: k}
}

// Verifier returns a real SDK verifier for audience that trusts this
// minter's key; it is closed when the test ends.
func (m *Minter) Verifier(t testing.TB, audience string) *auth.Verifier {
	t.Helper()
	v, err := m.NewVerifier(audience)
	if err != nil {
		t.Fatalf("verifier: %v", err)
	}
	t.Cleanup(v.Close)
	return v
}

// NewVerifier returns a real SDK verifier (symmetric mode) for audience
// that trusts this minter's key. Close it when done.
func (m *Minter) NewVerifier(audience string) (*auth.Verifier, error) {
	return auth.NewVerifier(auth.VerifierConfig{Issuers: []auth.IssuerConfig{{Issuer: Issuer, Audience: audience, HMACKey: m.key}}})
}

// Token describes a token to mint.
type Token struct {
	Subject  string   // default: ClientID (a client-credentials token)
	ClientID string   // default "demo-cli"
	Audience []string // required
	Scope    string   // space separated
	Roles    []string
	TTL      time.Duration // default 5 minutes; negative for an expired token
	Issuer   string        // default Issuer
}

// User describes an end user's token from demo-cli for audiences.
func User(sub string, roles []string, scope string, audiences ...string) Token {
	return Token{Subject: sub, ClientID: "demo-cli", Roles: roles, Scope: scope, Audience: audiences}
}

// Mint signs tok.
func (m *Minter) Mint(tok Token) string {
	if tok.ClientID == "" {
		tok.ClientID = "demo-cli"
	}
	if tok.Subject == "" {
		tok.Subject = tok.ClientID
	}
	if tok.TTL == 0 {
		tok.TTL = 5 * time.Minute
	}
	if tok.Issuer == "" {
		tok.Issuer = Issuer
	}
	now := time.Now()
	jti := make([]byte, 9)
	_, _ = rand.Read(jti)
	claims := map[string]any{"iss": tok.Issuer, "sub": tok.Subject, "aud": tok.Audience, "client_id": tok.ClientID,
		"iat": now.Unix(), "exp": now.Add(tok.TTL).Unix(), "jti": base64.RawURLEncoding.EncodeToString(jti)}
	if tok.Scope != "" {
		claims["scope"] = tok.Scope
	}
	if len(tok.Roles) > 0 {
		claims["roles"] = tok.Roles
	}
	header, _ := json.Marshal(map[string]string{"alg": "HS256", "typ": "at+jwt"})
	payload, _ := json.Marshal(claims)
	signing := base64.RawURLEncoding.EncodeToString(header) + "." + base64.RawURLEncoding.EncodeToString(payload)
	mac := hmac.New(sha256.New, m.key)
	mac.Write([]byte(signing))
	return signing + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// Bearer returns the Authorization header value for tok.
func Bearer(tok string) string { return "Bearer " + strings.TrimSpace(tok) }
