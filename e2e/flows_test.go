package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// TestAuthorizationCodePKCE runs the authorization code flow with PKCE
// through the real pages, redeems the code with golang.org/x/oauth2 and
// verifies the ID token with go-oidc.
func TestAuthorizationCodePKCE(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *Env) {
		ctx := context.Background()
		provider, err := oidc.NewProvider(ctx, e.Issuer)
		if err != nil {
			t.Fatal(err)
		}
		conf := oauth2.Config{ClientID: "web", ClientSecret: e.Secrets["web"], Endpoint: provider.Endpoint(),
			RedirectURL: webRedirect, Scopes: []string{oidc.ScopeOpenID, "profile", "email", oidc.ScopeOfflineAccess}}
		verifier := oauth2.GenerateVerifier()
		authURL := conf.AuthCodeURL("state-123", oidc.Nonce("nonce-456"), oauth2.S256ChallengeOption(verifier))
		u, _ := url.Parse(authURL)
		loc := e.authorize(t, e.browser(), u.Query(), "alice", alicePassword)
		if got := loc.Scheme + "://" + loc.Host + loc.Path; got != webRedirect {
			t.Fatalf("redirected to %s", got)
		}
		if loc.Query().Get("state") != "state-123" || loc.Query().Get("iss") != e.Issuer {
			t.Fatalf("OA-M: state/iss missing in %v", loc.Query())
		}
		tok, err := conf.Exchange(ctx, loc.Query().Get("code"), oauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatal(err)
		}
		rawID, _ := tok.Extra("id_token").(string)
		e.remember(tok.AccessToken, tok.RefreshToken, rawID)
		idt, err := provider.Verifier(&oidc.Config{ClientID: "web"}).Verify(ctx, rawID)
		if err != nil {
			t.Fatalf("ID token: %v", err)
		}
		if idt.Nonce != "nonce-456" || idt.Subject != "usr_alice" {
			t.Fatalf("nonce/sub: %q %q", idt.Nonce, idt.Subject)
		}
		if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
			t.Fatalf("at_hash: %v", err)
		}
		var claims struct {
			Email    string   `json:"email"`
			AuthTime int64    `json:"auth_time"`
			AMR      []string `json:"amr"`
		}
		_ = idt.Claims(&claims)
		if claims.Email != "alice@example.com" || claims.AuthTime == 0 || len(claims.AMR) == 0 {
			t.Fatalf("claims: %+v", claims)
		}
		// The access token is an RFC 9068 JWT.
		hdr, payload := decodeJWT(t, tok.AccessToken)
		if hdr["typ"] != "at+jwt" || hdr["kid"] == nil || hdr["kid"] == "" {
			t.Fatalf("JWT-G01/RFC 9068 header: %v", hdr)
		}
		for _, k := range []string{"iss", "sub", "aud", "exp", "iat", "jti", "client_id", "scope"} {
			if _, ok := payload[k]; !ok {
				t.Errorf("access token lacks %s", k)
			}
		}
		if payload["roles"] == nil || payload["tenant"] != "acme" {
			t.Errorf("claims mapping: roles/tenant missing: %v", payload)
		}
		// userinfo through go-oidc.
		ui, err := provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
		if err != nil || ui.Subject != "usr_alice" || ui.Email != "alice@example.com" {
			t.Fatalf("userinfo: %v %+v", err, ui)
		}
		// Introspection says active.
		if in := e.introspect(t, tok.AccessToken); in["active"] != true || in["sub"] != "usr_alice" {
			t.Fatalf("introspection: %v", in)
		}
		// Refresh through x/oauth2.
		old := *tok
		tok.Expiry = tok.Expiry.Add(-24 * 3600e9)
		nt, err := conf.TokenSource(ctx, tok).Token()
		if err != nil {
			t.Fatalf("refresh: %v", err)
		}
		e.remember(nt.AccessToken, nt.RefreshToken)
		if nt.RefreshToken == old.RefreshToken || nt.AccessToken == old.AccessToken {
			t.Fatal("OA-T: refresh token was not rotated")
		}
	})
}

func decodeJWT(t *testing.T, tok string) (map[string]any, map[string]any) {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWS: %d parts", len(parts))
	}
	var h, p map[string]any
	hb, _ := base64.RawURLEncoding.DecodeString(parts[0])
	pb, _ := base64.RawURLEncoding.DecodeString(parts[1])
	if json.Unmarshal(hb, &h) != nil || json.Unmarshal(pb, &p) != nil {
		t.Fatal("undecodable JWT")
	}
	return h, p
}

// TestRefreshRotationAndReuse: a rotated refresh token presented again
// revokes the whole family, including the newest refresh token and every
// access token of the grant (OA-T).
func TestRefreshRotationAndReuse(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *Env) {
		tok := e.codeFlow(t, "web")
		rt1 := str(tok["refresh_token"])
		refresh := func(rt string) (int, map[string]any) {
			st, out, _ := e.postForm(t, "/oauth/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, "web", e.Secrets["web"])
			e.remember(str(out["access_token"]), str(out["refresh_token"]))
			return st, out
		}
		st, out := refresh(rt1)
		if st != 200 {
			t.Fatalf("first refresh: %d %v", st, out)
		}
		rt2, at2 := str(out["refresh_token"]), str(out["access_token"])
		if e.introspect(t, at2)["active"] != true {
			t.Fatal("new access token inactive")
		}
		st, out = refresh(rt1) // reuse
		if st != 400 || out["error"] != "invalid_grant" {
			t.Fatalf("OA-T/reuse: %d %v", st, out)
		}
		if st, out = refresh(rt2); st != 400 {
			t.Fatalf("OA-T/family-revoked: newest refresh token still works: %d %v", st, out)
		}
		for _, at := range []string{str(tok["access_token"]), at2} {
			if e.introspect(t, at)["active"] != false {
				t.Fatal("OA-T/family-revoked: access token still active")
			}
		}
		if e.introspect(t, rt2)["active"] != false {
			t.Fatal("refresh token introspects active after family revocation")
		}
	})
}

// TestRefreshConcurrent documents the grace policy: none. Of N parallel
// refreshes of one token exactly one succeeds; the others are reuse and
// revoke the family, so the winner's tokens die too.
func TestRefreshConcurrent(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *Env) {
		rt := str(e.codeFlow(t, "web")["refresh_token"])
		const n = 20
		var wg sync.WaitGroup
		results := make([]map[string]any, n)
		codes := make([]int, n)
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				codes[i], results[i], _ = e.postForm(t, "/oauth/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, "web", e.Secrets["web"])
			}(i)
		}
		wg.Wait()
		wins := 0
		var winner map[string]any
		for i, c := range codes {
			if c == 200 {
				wins++
				winner = results[i]
				e.remember(str(winner["access_token"]), str(winner["refresh_token"]))
			}
		}
		if wins != 1 {
			t.Fatalf("OA-T/concurrent: %d refreshes succeeded, want exactly 1", wins)
		}
		if e.introspect(t, str(winner["access_token"]))["active"] != false {
			t.Fatal("OA-T/concurrent: the family must be revoked after a concurrent reuse")
		}
	})
}

// TestCodeRedemptionConcurrent: 50 parallel redemptions of one code,
// exactly one succeeds, and the losers revoke what the winner got (OA-C).
func TestCodeRedemptionConcurrent(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *Env) {
		v, ch := pkce()
		loc := e.authorize(t, e.browser(), authParams("web", webRedirect, ch), "alice", alicePassword)
		code := loc.Query().Get("code")
		e.remember(code)
		const n = 50
		var wg sync.WaitGroup
		codes := make([]int, n)
		outs := make([]map[string]any, n)
		start := make(chan struct{})
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				<-start
				codes[i], outs[i], _ = e.postForm(t, "/oauth/token", url.Values{"grant_type": {"authorization_code"}, "code": {code},
					"redirect_uri": {webRedirect}, "code_verifier": {v}}, "web", e.Secrets["web"])
			}(i)
		}
		close(start)
		wg.Wait()
		wins := 0
		var winner map[string]any
		for i, c := range codes {
			switch c {
			case 200:
				wins++
				winner = outs[i]
				e.remember(str(winner["access_token"]), str(winner["refresh_token"]), str(winner["id_token"]))
			case 400:
				if outs[i]["error"] != "invalid_grant" {
					t.Errorf("loser error %v", outs[i])
				}
			default:
				t.Errorf("status %d %v", c, outs[i])
			}
		}
		if wins != 1 {
			t.Fatalf("OA-C/concurrent: %d redemptions succeeded, want 1", wins)
		}
		if e.introspect(t, str(winner["access_token"]))["active"] != false {
			t.Fatal("OA-C/reuse-revokes: access token from the first redemption is still active")
		}
		st, _, _ := e.postForm(t, "/oauth/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {str(winner["refresh_token"])}}, "web", e.Secrets["web"])
		if st != 400 {
			t.Fatal("OA-C/reuse-revokes: refresh token from the first redemption still works")
		}
	})
}

// TestClientCredentials uses golang.org/x/oauth2/clientcredentials.
func TestClientCredentials(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *Env) {
		cc := clientcredentials.Config{ClientID: "service", ClientSecret: e.Secrets["service"], TokenURL: e.Issuer + "/oauth/token",
			Scopes: []string{"orders:read"}, EndpointParams: url.Values{"resource": {apiAudience}}}
		tok, err := cc.Token(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		e.remember(tok.AccessToken)
		hdr, p := decodeJWT(t, tok.AccessToken)
		if hdr["typ"] != "at+jwt" || hdr["alg"] != "ES256" {
			t.Fatalf("header %v", hdr)
		}
		aud, _ := p["aud"].([]any)
		if p["sub"] != "service" || p["client_id"] != "service" || p["scope"] != "orders:read" || len(aud) != 1 || aud[0] != apiAudience {
			t.Fatalf("claims %v", p)
		}
		if tok.RefreshToken != "" {
			t.Fatal("client credentials must not return a refresh token")
		}
		// Widening the audience or the scope is refused.
		bad := cc
		bad.EndpointParams = url.Values{"resource": {"https://evil.example.com"}}
		if _, err := bad.Token(context.Background()); err == nil {
			t.Fatal("audience not allowed for the client was granted")
		}
		bad = cc
		bad.Scopes = []string{"admin"}
		if _, err := bad.Token(context.Background()); err == nil {
			t.Fatal("scope not allowed for the client was granted")
		}
		in := e.introspect(t, tok.AccessToken)
		if in["active"] != true || in["client_id"] != "service" {
			t.Fatalf("introspect: %v", in)
		}
	})
}

// TestIntrospectionAndRevocation covers RFC 7662 and RFC 7009.
func TestIntrospectionAndRevocation(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *Env) {
		tok := e.codeFlow(t, "web")
		at, rt := str(tok["access_token"]), str(tok["refresh_token"])
		// Introspection requires an authenticated confidential client.
		st, _, _ := e.postForm(t, "/oauth/introspect", url.Values{"token": {at}}, "", "")
		if st != 400 && st != 401 {
			t.Fatalf("unauthenticated introspection: %d", st)
		}
		st, _, _ = e.postForm(t, "/oauth/introspect", url.Values{"token": {at}}, "api", "wrong")
		if st != 401 {
			t.Fatalf("wrong secret: %d", st)
		}
		// Refresh tokens introspect only for their own client.
		if e.introspect(t, rt)["active"] != false {
			t.Fatal("refresh token of another client introspected active")
		}
		st, out, _ := e.postForm(t, "/oauth/introspect", url.Values{"token": {rt}}, "web", e.Secrets["web"])
		if st != 200 || out["active"] != true {
			t.Fatalf("own refresh token: %d %v", st, out)
		}
		// Garbage is inactive.
		for _, g := range []string{"x", "a.b.c", at + "x", strings.Repeat("a", 9000)} {
			if e.introspect(t, g)["active"] != false {
				t.Fatalf("garbage %q active", g[:min(len(g), 20)])
			}
		}
		// Another client cannot revoke web's tokens.
		st, _, _ = e.postForm(t, "/oauth/revoke", url.Values{"token": {at}}, "service", e.Secrets["service"])
		if st != 200 || e.introspect(t, at)["active"] != true {
			t.Fatal("a foreign client revoked the token")
		}
		// Revoking the access token.
		st, _, _ = e.postForm(t, "/oauth/revoke", url.Values{"token": {at}}, "web", e.Secrets["web"])
		if st != 200 || e.introspect(t, at)["active"] != false {
			t.Fatal("access token still active after revocation")
		}
		// Revoking the refresh token revokes the grant.
		st, _, _ = e.postForm(t, "/oauth/revoke", url.Values{"token": {rt}}, "web", e.Secrets["web"])
		if st != 200 {
			t.Fatal(st)
		}
		st, _, _ = e.postForm(t, "/oauth/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, "web", e.Secrets["web"])
		if st != 400 {
			t.Fatal("refresh after revocation succeeded")
		}
		// Unknown tokens: still 200.
		st, _, _ = e.postForm(t, "/oauth/revoke", url.Values{"token": {"nope"}}, "web", e.Secrets["web"])
		if st != 200 {
			t.Fatal(st)
		}
		_ = http.StatusOK
	})
}
