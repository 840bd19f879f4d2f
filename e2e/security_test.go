package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/password"
	"github.com/gatehouse/gatehouse/internal/storage"
)

func sqliteEnv(t *testing.T, tweak func(*config.Config)) *Env {
	return newEnv(t, "sqlite", "file:"+filepath.Join(t.TempDir(), "g.db"), tweak)
}

// get fetches a URL without following redirects.
func get(t *testing.T, c *http.Client, u string) (*http.Response, string) {
	t.Helper()
	resp, err := noRedirect(c).Get(u)
	if err != nil {
		t.Fatal(err)
	}
	return resp, readBody(t, resp)
}

// TestRedirectURIAttacks: bad redirect URIs get an error page on the IdP,
// never a redirect (OA-R).
func TestRedirectURIAttacks(t *testing.T) {
	e := sqliteEnv(t, nil)
	_, ch := pkce()
	bad := []string{"https://client.example.com/cb/", "https://client.example.com/cb?x=1", "https://client.example.com/cb#f",
		"https://client.example.com/cb/../evil", "https://client.example.com/%2e%2e/cb", "https://client.example.com/cb%252e",
		"HTTPS://client.example.com/cb", "https://CLIENT.EXAMPLE.COM/cb", "https://client.example.com.evil.com/cb",
		"https://client.example.com@evil.com/cb", "//evil.com", "javascript:alert(1)", "data:text/html,hi",
		"http://client.example.com/cb", ""}
	for _, r := range bad {
		t.Run("OA-R/"+r, func(t *testing.T) {
			resp, body := get(t, http.DefaultClient, e.Issuer+"/authorize?"+authParams("web", r, ch).Encode())
			if resp.StatusCode != 400 || resp.Header.Get("Location") != "" {
				t.Fatalf("status %d location %q", resp.StatusCode, resp.Header.Get("Location"))
			}
			if strings.Contains(body, "evil") || strings.Contains(body, "javascript:") {
				t.Fatal("error page reflects the redirect URI")
			}
		})
	}
	t.Run("OA-R/unknown-client", func(t *testing.T) {
		resp, _ := get(t, http.DefaultClient, e.Issuer+"/authorize?"+authParams("nobody", webRedirect, ch).Encode())
		if resp.StatusCode != 400 || resp.Header.Get("Location") != "" {
			t.Fatalf("status %d", resp.StatusCode)
		}
	})
	t.Run("OA-R/loopback-port-may-vary", func(t *testing.T) {
		resp, _ := get(t, http.DefaultClient, e.Issuer+"/authorize?"+authParams("native", "http://127.0.0.1:61234/cb", ch, "scope", "openid").Encode())
		if resp.StatusCode != 302 || !strings.Contains(resp.Header.Get("Location"), "/login?") {
			t.Fatalf("status %d %s", resp.StatusCode, resp.Header.Get("Location"))
		}
		resp, _ = get(t, http.DefaultClient, e.Issuer+"/authorize?"+authParams("native", "http://localhost:61234/cb", ch, "scope", "openid").Encode())
		if resp.StatusCode != 400 {
			t.Fatal("localhost accepted for a 127.0.0.1 registration")
		}
	})
	t.Run("OA-R/consent-denial-redirects-only-to-registered", func(t *testing.T) {
		b := e.browser()
		resp, err := b.Get(e.Issuer + "/authorize?" + authParams("web", webRedirect, ch).Encode())
		if err != nil {
			t.Fatal(err)
		}
		page := readBody(t, resp)
		resp, err = b.PostForm(e.Issuer+"/login", url.Values{"csrf": {hidden(page, "csrf")}, "auth_request": {hidden(page, "auth_request")},
			"username": {"alice"}, "password": {alicePassword}})
		if err != nil {
			t.Fatal(err)
		}
		page = readBody(t, resp)
		resp, err = noRedirect(b).PostForm(e.Issuer+"/consent", url.Values{"csrf": {hidden(page, "csrf")},
			"auth_request": {hidden(page, "auth_request")}, "decision": {"deny"}, "redirect_uri": {"https://evil.com/"}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		loc, _ := url.Parse(resp.Header.Get("Location"))
		if resp.StatusCode != 303 || !strings.HasPrefix(loc.String(), webRedirect+"?") || loc.Query().Get("error") != "access_denied" || loc.Query().Get("iss") != e.Issuer {
			t.Fatalf("deny: %d %s", resp.StatusCode, loc)
		}
	})
}

// TestPKCE: S256 only, required, verifier format checked, no downgrade (OA-P).
func TestPKCE(t *testing.T) {
	e := sqliteEnv(t, nil)
	v, ch := pkce()
	for name, q := range map[string]url.Values{
		"OA-P/missing-challenge": authParams("web", webRedirect, "", "code_challenge", ""),
		"OA-P/plain":             authParams("web", webRedirect, ch, "code_challenge_method", "plain"),
		"OA-P/missing-method":    authParams("web", webRedirect, ch, "code_challenge_method", ""),
		"OA-P/short-challenge":   authParams("web", webRedirect, "abc"),
	} {
		t.Run(name, func(t *testing.T) {
			resp, _ := get(t, http.DefaultClient, e.Issuer+"/authorize?"+q.Encode())
			loc, _ := url.Parse(resp.Header.Get("Location"))
			if resp.StatusCode != 302 || loc.Query().Get("error") != "invalid_request" || loc.Query().Get("iss") != e.Issuer {
				t.Fatalf("%d %s", resp.StatusCode, loc)
			}
		})
	}
	redeem := func(t *testing.T, verifier string) int {
		loc := e.authorize(t, e.browser(), authParams("web", webRedirect, ch), "alice", alicePassword)
		e.remember(loc.Query().Get("code"))
		form := url.Values{"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")}, "redirect_uri": {webRedirect}}
		if verifier != "-" {
			form.Set("code_verifier", verifier)
		}
		st, out, _ := e.postForm(t, "/oauth/token", form, "web", e.Secrets["web"])
		e.remember(str(out["access_token"]), str(out["refresh_token"]), str(out["id_token"]))
		return st
	}
	for name, verifier := range map[string]string{
		"OA-P/no-verifier":           "-",
		"OA-P/wrong-verifier":        strings.Repeat("a", 64),
		"OA-P/short-verifier":        v[:42],
		"OA-P/long-verifier":         strings.Repeat("a", 129),
		"OA-P/bad-chars":             v[:50] + "!",
		"OA-P/challenge-as-verifier": ch,
	} {
		t.Run(name, func(t *testing.T) {
			if st := redeem(t, verifier); st != 400 {
				t.Fatalf("status %d", st)
			}
		})
	}
	t.Run("OA-P/correct-verifier", func(t *testing.T) {
		if st := redeem(t, v); st != 200 {
			t.Fatalf("status %d", st)
		}
	})
}

// TestAuthorizationResponseIss: iss on success and error, state byte for
// byte (OA-M), advertised in discovery.
func TestAuthorizationResponseIss(t *testing.T) {
	e := sqliteEnv(t, nil)
	_, ch := pkce()
	state := strings.Repeat(`a&b=c d%20"<>'#?/\+é`, 100)[:2048]
	loc := e.authorize(t, e.browser(), authParams("firstparty", webRedirect, ch, "state", state), "alice", alicePassword)
	if loc.Query().Get("state") != state || loc.Query().Get("iss") != e.Issuer {
		t.Fatal("OA-M/state-roundtrip: state or iss altered")
	}
	e.remember(loc.Query().Get("code"))
	resp, _ := get(t, http.DefaultClient, e.Issuer+"/authorize?"+authParams("web", webRedirect, ch, "scope", "openid admin", "state", state).Encode())
	errLoc, _ := url.Parse(resp.Header.Get("Location"))
	if errLoc.Query().Get("error") != "invalid_scope" || errLoc.Query().Get("iss") != e.Issuer || errLoc.Query().Get("state") != state {
		t.Fatalf("OA-M/error-carries-iss: %v", errLoc.Query())
	}
	var d map[string]any
	resp, body := get(t, http.DefaultClient, e.Issuer+"/.well-known/openid-configuration")
	_ = json.Unmarshal([]byte(body), &d)
	if d["authorization_response_iss_parameter_supported"] != true {
		t.Fatal("OA-M: iss support not advertised")
	}
	// OA-G: implicit and password are neither supported nor advertised.
	for _, k := range []string{"response_types_supported", "grant_types_supported"} {
		for _, v := range d[k].([]any) {
			if v == "token" || v == "id_token token" || v == "password" || v == "implicit" {
				t.Errorf("OA-G: %s advertises %v", k, v)
			}
		}
	}
	if m := d["code_challenge_methods_supported"].([]any); len(m) != 1 || m[0] != "S256" {
		t.Errorf("OA-P: challenge methods %v", m)
	}
	_ = resp
}

// TestTokenEndpointAttacks: client authentication and grant rules (OA-A, OA-G).
func TestTokenEndpointAttacks(t *testing.T) {
	e := sqliteEnv(t, nil)
	cc := url.Values{"grant_type": {"client_credentials"}}
	t.Run("OA-A/secret-in-query", func(t *testing.T) {
		req, _ := http.NewRequest("POST", e.Issuer+"/oauth/token?client_id=service&client_secret="+url.QueryEscape(e.Secrets["service"]), strings.NewReader(cc.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 400 || resp.Header.Get("Cache-Control") != "no-store" {
			t.Fatalf("%d %q", resp.StatusCode, resp.Header.Get("Cache-Control"))
		}
	})
	t.Run("OA-A/two-methods", func(t *testing.T) {
		f := url.Values{"grant_type": {"client_credentials"}, "client_id": {"service"}, "client_secret": {e.Secrets["service"]}}
		st, out, _ := e.postForm(t, "/oauth/token", f, "service", e.Secrets["service"])
		if st != 400 && st != 401 {
			t.Fatalf("%d %v", st, out)
		}
	})
	t.Run("OA-A/wrong-secret", func(t *testing.T) {
		st, out, _ := e.postForm(t, "/oauth/token", cc, "service", e.Secrets["service"]+"x")
		if st != 401 || out["error"] != "invalid_client" {
			t.Fatalf("%d %v", st, out)
		}
	})
	t.Run("OA-A/unknown-client-same-answer", func(t *testing.T) {
		st, out, _ := e.postForm(t, "/oauth/token", cc, "ghost", "whatever")
		if st != 401 || out["error"] != "invalid_client" {
			t.Fatalf("%d %v", st, out)
		}
	})
	t.Run("OA-A/public-client-with-secret", func(t *testing.T) {
		st, _, _ := e.postForm(t, "/oauth/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x"}}, "native", "guess")
		if st != 401 {
			t.Fatalf("%d", st)
		}
	})
	t.Run("OA-A/confidential-must-authenticate-to-revoke", func(t *testing.T) {
		st, _, _ := e.postForm(t, "/oauth/revoke", url.Values{"token": {"x"}, "client_id": {"web"}}, "", "")
		if st != 401 {
			t.Fatalf("%d", st)
		}
	})
	t.Run("OA-A/get-refused", func(t *testing.T) {
		resp, err := http.Get(e.Issuer + "/oauth/token")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 405 {
			t.Fatalf("%d", resp.StatusCode)
		}
	})
	t.Run("OA-A/repeated-parameter", func(t *testing.T) {
		req, _ := http.NewRequest("POST", e.Issuer+"/oauth/token", strings.NewReader("grant_type=client_credentials&scope=orders:read&scope=orders:write"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth("service", e.Secrets["service"])
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 400 {
			t.Fatalf("%d", resp.StatusCode)
		}
	})
	t.Run("OA-G/password-grant", func(t *testing.T) {
		st, out, _ := e.postForm(t, "/oauth/token", url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {alicePassword}}, "web", e.Secrets["web"])
		if st != 400 || out["error"] != "unsupported_grant_type" {
			t.Fatalf("%d %v", st, out)
		}
	})
	t.Run("OA-G/unregistered-grant", func(t *testing.T) {
		st, out, _ := e.postForm(t, "/oauth/token", cc, "web", e.Secrets["web"])
		if st != 400 || out["error"] != "unauthorized_client" {
			t.Fatalf("%d %v", st, out)
		}
	})
	t.Run("OA-G/implicit", func(t *testing.T) {
		_, ch := pkce()
		resp, _ := get(t, http.DefaultClient, e.Issuer+"/authorize?"+authParams("web", webRedirect, ch, "response_type", "token").Encode())
		loc, _ := url.Parse(resp.Header.Get("Location"))
		if loc.Query().Get("error") != "unsupported_response_type" || strings.Contains(loc.Fragment, "access_token") {
			t.Fatalf("%v", loc)
		}
	})
	t.Run("OA-C/code-bound-to-client-and-redirect", func(t *testing.T) {
		v, ch := pkce()
		loc := e.authorize(t, e.browser(), authParams("web", webRedirect, ch), "alice", alicePassword)
		code := loc.Query().Get("code")
		e.remember(code)
		st, _, _ := e.postForm(t, "/oauth/token", url.Values{"grant_type": {"authorization_code"}, "code": {code},
			"redirect_uri": {webRedirect + "/x"}, "code_verifier": {v}}, "web", e.Secrets["web"])
		if st != 400 {
			t.Fatal("wrong redirect_uri accepted")
		}
		// The failed attempt consumed the code.
		st, _, _ = e.postForm(t, "/oauth/token", url.Values{"grant_type": {"authorization_code"}, "code": {code},
			"redirect_uri": {webRedirect}, "code_verifier": {v}}, "web", e.Secrets["web"])
		if st != 400 {
			t.Fatal("code usable after a failed redemption")
		}
	})
	t.Run("OA-C/expired-code", func(t *testing.T) {
		v, ch := pkce()
		loc := e.authorize(t, e.browser(), authParams("web", webRedirect, ch), "alice", alicePassword)
		e.remember(loc.Query().Get("code"))
		e.Clock.Advance(61 * time.Second)
		defer e.Clock.Advance(-61 * time.Second)
		st, _, _ := e.postForm(t, "/oauth/token", url.Values{"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")},
			"redirect_uri": {webRedirect}, "code_verifier": {v}}, "web", e.Secrets["web"])
		if st != 400 {
			t.Fatal("expired code accepted")
		}
	})
	t.Run("OA-T/refresh-bound-to-client", func(t *testing.T) {
		tok := e.codeFlow(t, "web")
		st, _, _ := e.postForm(t, "/oauth/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {str(tok["refresh_token"])}}, "firstparty", e.Secrets["firstparty"])
		if st != 400 {
			t.Fatal("refresh token accepted from another client")
		}
		st, out, _ := e.postForm(t, "/oauth/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {str(tok["refresh_token"])},
			"scope": {"openid orders:read"}}, "web", e.Secrets["web"])
		if st != 400 || out["error"] != "invalid_scope" {
			t.Fatalf("OA-T/no-widening: %d %v", st, out)
		}
	})
}

// TestJWKS: tokens carry kid; the JWKS has no private members and is cacheable (JWT-G01).
func TestJWKS(t *testing.T) {
	for _, alg := range []string{"RS256", "ES256", "EdDSA"} {
		t.Run("JWT-G01/"+alg, func(t *testing.T) {
			e := sqliteEnv(t, func(c *config.Config) { c.IDP.Signing.Algorithm = alg })
			resp, body := get(t, http.DefaultClient, e.Issuer+"/.well-known/jwks.json")
			if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Cache-Control"), "max-age=") {
				t.Fatalf("%d %q", resp.StatusCode, resp.Header.Get("Cache-Control"))
			}
			var set struct{ Keys []map[string]any }
			if err := json.Unmarshal([]byte(body), &set); err != nil || len(set.Keys) == 0 {
				t.Fatalf("jwks: %v %s", err, body)
			}
			for _, k := range set.Keys {
				for _, priv := range []string{"d", "p", "q", "dp", "dq", "qi", "k"} {
					if _, ok := k[priv]; ok {
						t.Fatalf("JWKS publishes private member %q", priv)
					}
				}
				if k["kid"] == "" || k["alg"] != alg {
					t.Fatalf("key %v", k)
				}
			}
			st, tok, _ := e.postForm(t, "/oauth/token", url.Values{"grant_type": {"client_credentials"}}, "service", e.Secrets["service"])
			if st != 200 {
				t.Fatal(st)
			}
			e.remember(str(tok["access_token"]))
			h, _ := decodeJWT(t, str(tok["access_token"]))
			if h["kid"] != set.Keys[len(set.Keys)-1]["kid"] && h["kid"] != set.Keys[0]["kid"] {
				t.Fatal("token kid not in JWKS")
			}
			if h["alg"] != alg {
				t.Fatalf("alg %v", h["alg"])
			}
		})
	}
}

// TestNoCORS: no endpoint answers with CORS headers (OA-H).
func TestNoCORS(t *testing.T) {
	e := sqliteEnv(t, nil)
	for _, p := range []string{"/authorize", "/oauth/token", "/.well-known/openid-configuration"} {
		req, _ := http.NewRequest(http.MethodOptions, e.Issuer+p, nil)
		req.Header.Set("Origin", "https://evil.example")
		req.Header.Set("Access-Control-Request-Method", "POST")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("OA-H/no-cors: %s allows %q", p, resp.Header.Get("Access-Control-Allow-Origin"))
		}
	}
}

// TestClientAuthThrottling: failed client authentications are throttled per
// source address on the token endpoint, temporarily (BF-01).
func TestClientAuthThrottling(t *testing.T) {
	e := sqliteEnv(t, func(c *config.Config) { c.IDP.Throttle.IPMaxFailures = 3 })
	cc := url.Values{"grant_type": {"client_credentials"}}
	for i := 0; i < 3; i++ {
		if st, _, _ := e.postForm(t, "/oauth/token", cc, "service", "wrong"); st != 401 {
			t.Fatalf("attempt %d: %d", i, st)
		}
	}
	st, _, h := e.postForm(t, "/oauth/token", cc, "service", e.Secrets["service"])
	if st != http.StatusTooManyRequests || h.Get("Retry-After") == "" || h.Get("Cache-Control") != "no-store" {
		t.Fatalf("BF-01/token-endpoint: %d %v", st, h)
	}
	e.Clock.Advance(16 * time.Minute)
	if st, out, _ := e.postForm(t, "/oauth/token", cc, "service", e.Secrets["service"]); st != 200 {
		t.Fatalf("BF-01/not-for-good: still blocked after the window: %d %v", st, out)
	} else {
		e.remember(str(out["access_token"]))
	}
}

// TestRefreshLifetimes: idle and absolute refresh-token lifetimes (OA-T).
func TestRefreshLifetimes(t *testing.T) {
	e := sqliteEnv(t, func(c *config.Config) {
		c.IDP.RefreshTokenIdleTTL = config.Duration(2 * time.Hour)
		c.IDP.RefreshTokenMaxTTL = config.Duration(5 * time.Hour)
	})
	refresh := func(rt string) (int, string) {
		st, out, _ := e.postForm(t, "/oauth/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, "web", e.Secrets["web"])
		e.remember(str(out["access_token"]), str(out["refresh_token"]), str(out["id_token"]))
		return st, str(out["refresh_token"])
	}
	t.Run("OA-T/idle", func(t *testing.T) {
		rt := str(e.codeFlow(t, "web")["refresh_token"])
		e.Clock.Advance(2*time.Hour + time.Minute)
		if st, _ := refresh(rt); st != 400 {
			t.Fatal("idle refresh token accepted")
		}
	})
	t.Run("OA-T/absolute", func(t *testing.T) {
		rt := str(e.codeFlow(t, "web")["refresh_token"])
		for i := 0; i < 4; i++ { // used every 90 min: idle never hits, absolute (5 h) does
			e.Clock.Advance(90 * time.Minute)
			st, next := refresh(rt)
			if i < 3 && st != 200 {
				t.Fatalf("step %d: %d", i, st)
			}
			if i == 3 && st != 400 {
				t.Fatal("refresh token family outlived its absolute lifetime")
			}
			rt = next
		}
	})
}

// TestPasswordRehashOnLogin: a hash with outdated parameters is upgraded at
// the next successful login (PW-01).
func TestPasswordRehashOnLogin(t *testing.T) {
	e := sqliteEnv(t, nil)
	weak, err := password.NewInsecureHasherForTests(password.Params{Memory: 32, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32})
	if err != nil {
		t.Fatal(err)
	}
	h, _ := weak.Hash(alicePassword)
	ctx := context.Background()
	if err := e.Store.UpdateUser(ctx, "usr_bob", func(u storage.User) (storage.User, error) { u.PasswordHash = h; return u, nil }); err != nil {
		t.Fatal(err)
	}
	_, ch := pkce()
	loc := e.authorize(t, e.browser(), authParams("firstparty", webRedirect, ch), "bob", alicePassword)
	e.remember(loc.Query().Get("code"))
	u, _ := e.Store.GetUser(ctx, "usr_bob")
	if u.PasswordHash == h || !strings.Contains(u.PasswordHash, "m=64,") {
		t.Fatalf("PW-01/rehash: hash not upgraded: %.40s", u.PasswordHash)
	}
	if loc.Query().Get("code") == "" {
		t.Fatal("login failed")
	}
}

// TestEmergencyKeyRevocation: revoking the signing key removes it from the
// JWKS at once and makes its tokens inactive, even those whose verification
// was cached; a replacement key signs from then on.
func TestEmergencyKeyRevocation(t *testing.T) {
	e := sqliteEnv(t, nil)
	st, tok, _ := e.postForm(t, "/oauth/token", url.Values{"grant_type": {"client_credentials"}}, "service", e.Secrets["service"])
	if st != 200 {
		t.Fatal(st)
	}
	at := str(tok["access_token"])
	e.remember(at)
	if e.introspect(t, at)["active"] != true {
		t.Fatal("inactive before revocation")
	}
	h, _ := decodeJWT(t, at)
	kid := h["kid"].(string)
	if err := e.App.Keys.Revoke(context.Background(), kid); err != nil {
		t.Fatal(err)
	}
	if jwksKids(t, e.Issuer)[kid] {
		t.Fatal("revoked key still published")
	}
	if e.introspect(t, at)["active"] != false {
		t.Fatal("token of a revoked key still active (cached verification)")
	}
	st, tok, _ = e.postForm(t, "/oauth/token", url.Values{"grant_type": {"client_credentials"}}, "service", e.Secrets["service"])
	if st != 200 {
		t.Fatal(st)
	}
	e.remember(str(tok["access_token"]))
	if h2, _ := decodeJWT(t, str(tok["access_token"])); h2["kid"] == kid || e.introspect(t, str(tok["access_token"]))["active"] != true {
		t.Fatal("no working replacement key")
	}
}

// TestConsentDoubleSubmit: a second Allow for a finished request is a clean
// 400 page, and issues no second code.
func TestConsentDoubleSubmit(t *testing.T) {
	e := sqliteEnv(t, nil)
	b := e.browser()
	page := e.loginPage(t, b, "web")
	resp := e.postLogin(t, b, page, "alice", alicePassword, nil)
	resp.Body.Close()
	resp, err := b.Get(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	consent := readBody(t, resp)
	form := url.Values{"csrf": {hidden(consent, "csrf")}, "auth_request": {hidden(consent, "auth_request")}, "decision": {"allow"}}
	first, err := noRedirect(b).PostForm(e.Issuer+"/consent", form)
	if err != nil {
		t.Fatal(err)
	}
	first.Body.Close()
	loc, _ := url.Parse(first.Header.Get("Location"))
	e.remember(loc.Query().Get("code"))
	second, err := noRedirect(b).PostForm(e.Issuer+"/consent", form)
	if err != nil {
		t.Fatal(err)
	}
	second.Body.Close()
	if first.StatusCode != 303 || second.StatusCode != 400 {
		t.Fatalf("first %d, second %d", first.StatusCode, second.StatusCode)
	}
}

// TestUserinfoBearer: userinfo refuses tokens in the query string and
// answers 401 with a Bearer challenge for bad tokens (RFC 6750).
func TestUserinfoBearer(t *testing.T) {
	e := sqliteEnv(t, nil)
	tok := e.codeFlow(t, "web")
	resp, _ := get(t, http.DefaultClient, e.Issuer+"/userinfo?access_token="+url.QueryEscape(str(tok["access_token"])))
	if resp.StatusCode != 400 {
		t.Fatalf("token in query accepted: %d", resp.StatusCode)
	}
	for name, hdr := range map[string]string{"garbage": "Bearer abc.def.ghi", "JWT-D01/id-token-as-access-token": "Bearer " + str(tok["id_token"])} {
		t.Run(name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", e.Issuer+"/userinfo", nil)
			req.Header.Set("Authorization", hdr)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 401 || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
				t.Fatalf("%d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
			}
		})
	}
	t.Run("JWT-C04/client-credentials-token-is-not-a-user", func(t *testing.T) {
		st, cc, _ := e.postForm(t, "/oauth/token", url.Values{"grant_type": {"client_credentials"}}, "service", e.Secrets["service"])
		if st != 200 {
			t.Fatal(st)
		}
		e.remember(str(cc["access_token"]))
		req, _ := http.NewRequest("GET", e.Issuer+"/userinfo", nil)
		req.Header.Set("Authorization", "Bearer "+str(cc["access_token"]))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 401 {
			t.Fatalf("client token accepted as a user at userinfo: %d", resp.StatusCode)
		}
	})
}
