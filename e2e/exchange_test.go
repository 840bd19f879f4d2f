package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/gatehouse/gatehouse/internal/storage"
)

// Token exchange (RFC 8693) fixtures.
const (
	exchangeGrant    = "urn:ietf:params:oauth:grant-type:token-exchange"
	accessTokenType  = "urn:ietf:params:oauth:token-type:access_token"
	internalAudience = "https://orders.internal"
	billingAudience  = "https://billing.internal"
	// defaultExchangeTTL is idp.Config.ExchangeTokenTTL's default.
	defaultExchangeTTL = 5 * time.Minute
)

// seedExchangeClients registers the clients of the token-exchange tests
// directly in storage (bypassing admin validation, so that a public client
// with the grant can exist and be refused at the token endpoint):
//   - spa: public, code flow, audience apiAudience, orders and profile scopes;
//   - gateway: confidential, token exchange only, two internal audiences;
//   - gateway-long: like gateway with a 1 h access-token TTL;
//   - public-exchanger: public, registered for token exchange;
//   - nogrant: confidential, client credentials only.
func (e *Env) seedExchangeClients(t *testing.T) {
	t.Helper()
	now := time.Now()
	clients := []storage.Client{
		{ID: "spa", Name: "SPA", Public: true, FirstParty: true, RedirectURIs: []string{nativeRedirect},
			GrantTypes: []string{"authorization_code", "refresh_token"},
			Scopes:     []string{"openid", "offline_access", "profile", "orders:read", "orders:write"}, Audiences: []string{apiAudience}},
		{ID: "gateway", Name: "Gateway", GrantTypes: []string{exchangeGrant},
			Scopes: []string{"orders:read", "billing:read"}, Audiences: []string{internalAudience, billingAudience}},
		{ID: "gateway-long", Name: "Gateway (long TTL)", GrantTypes: []string{exchangeGrant}, AccessTokenTTL: time.Hour,
			Scopes: []string{"orders:read"}, Audiences: []string{internalAudience}},
		{ID: "public-exchanger", Name: "Public exchanger", Public: true, GrantTypes: []string{exchangeGrant},
			Scopes: []string{"orders:read"}, Audiences: []string{internalAudience}},
		{ID: "nogrant", Name: "No grant", GrantTypes: []string{"client_credentials"},
			Scopes: []string{"orders:read"}, Audiences: []string{internalAudience}},
	}
	for _, c := range clients {
		if !c.Public {
			s := strings.NewReplacer("+", "-", "/", "_", "=", "").Replace("ghs_" + randB64(32))
			e.Secrets[c.ID] = s
			c.SecretHash = e.App.Secrets.Sum(s)
		}
		c.CreatedAt, c.UpdatedAt = now, now
		if err := e.Store.CreateClient(context.Background(), c); err != nil {
			t.Fatal(err)
		}
	}
}

// spaLogin logs alice in to the public client spa (audience apiAudience)
// and returns the token response.
func (e *Env) spaLogin(t *testing.T) map[string]any {
	t.Helper()
	v, ch := pkce()
	q := authParams("spa", nativeRedirect, ch, "scope", "openid offline_access profile orders:read orders:write", "audience", apiAudience)
	loc := e.authorize(t, e.browser(), q, "alice", alicePassword)
	code := loc.Query().Get("code")
	if code == "" {
		t.Fatalf("no code in %s", loc.Redacted())
	}
	status, tok, _ := e.postForm(t, "/oauth/token", url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"redirect_uri": {nativeRedirect}, "code_verifier": {v}, "client_id": {"spa"}}, "", "")
	if status != 200 || str(tok["access_token"]) == "" || str(tok["refresh_token"]) == "" || str(tok["id_token"]) == "" {
		t.Fatalf("code exchange: %d %v", status, tok)
	}
	e.remember(code, str(tok["access_token"]), str(tok["refresh_token"]), str(tok["id_token"]))
	return tok
}

// exchangeForm is a valid token-exchange request for subject to audience;
// kv pairs override parameters ("" deletes one).
func exchangeForm(subject, audience string, kv ...string) url.Values {
	f := url.Values{"grant_type": {exchangeGrant}, "subject_token": {subject},
		"subject_token_type": {accessTokenType}, "audience": {audience}}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			f.Del(kv[i])
			continue
		}
		f.Set(kv[i], kv[i+1])
	}
	return f
}

// exchangeAs posts a token exchange authenticated as clientID.
func (e *Env) exchangeAs(t *testing.T, clientID string, form url.Values) (int, map[string]any) {
	t.Helper()
	status, out, hdr := e.postForm(t, "/oauth/token", form, clientID, e.Secrets[clientID])
	if hdr.Get("Cache-Control") != "no-store" {
		t.Errorf("token response without Cache-Control: no-store")
	}
	e.remember(str(out["access_token"]))
	return status, out
}

// mustExchange exchanges and fails the test unless a token is issued.
func (e *Env) mustExchange(t *testing.T, clientID string, form url.Values) (string, map[string]any) {
	t.Helper()
	status, out := e.exchangeAs(t, clientID, form)
	if status != 200 {
		t.Fatalf("exchange as %s: %d %v", clientID, status, out)
	}
	if out["issued_token_type"] != accessTokenType || out["token_type"] != "Bearer" ||
		out["refresh_token"] != nil || out["id_token"] != nil {
		t.Fatalf("exchange response: %v", out)
	}
	return str(out["access_token"]), out
}

func num(v any) int64 { f, _ := v.(float64); return int64(f) }

func TestTokenExchange(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *Env) {
		e.seedExchangeClients(t)
		subj := e.spaLogin(t)
		at := str(subj["access_token"])
		_, sp := decodeJWT(t, at)

		// Discovery advertises the grant.
		var disc map[string]any
		resp, body := get(t, http.DefaultClient, e.Issuer+"/.well-known/openid-configuration")
		_ = json.Unmarshal([]byte(body), &disc)
		if gts, _ := disc["grant_types_supported"].([]any); resp.StatusCode != 200 || !slices.Contains(gts, any(exchangeGrant)) {
			t.Fatalf("discovery grant_types_supported: %v", disc["grant_types_supported"])
		}

		// Happy path: the gateway swaps alice's token for one for the
		// internal orders API.
		before := e.Clock.Now()
		xt, out := e.mustExchange(t, "gateway", exchangeForm(at, internalAudience))
		if out["scope"] != "orders:read" || num(out["expires_in"]) <= 0 || num(out["expires_in"]) > int64(defaultExchangeTTL/time.Second) {
			t.Fatalf("exchange response: %v", out)
		}
		hdr, xp := decodeJWT(t, xt)
		if hdr["typ"] != "at+jwt" || hdr["kid"] == nil || hdr["kid"] == "" {
			t.Fatalf("header %v", hdr)
		}
		aud, _ := xp["aud"].([]any)
		act, _ := xp["act"].(map[string]any)
		if xp["iss"] != e.Issuer || xp["sub"] != "usr_alice" || xp["sub"] != sp["sub"] || len(aud) != 1 || aud[0] != internalAudience ||
			xp["scope"] != "orders:read" || xp["client_id"] != "spa" || len(act) != 1 || act["sub"] != "gateway" {
			t.Fatalf("exchanged claims: %v", xp)
		}
		if xp["jti"] == sp["jti"] || xp["jti"] == "" || xp["gid"] != sp["gid"] || sp["gid"] == nil {
			t.Fatalf("jti/gid: subject %v exchanged %v", sp, xp)
		}
		for _, k := range []string{"tenant", "roles", "groups", "auth_time", "acr", "amr"} {
			a, _ := json.Marshal(sp[k])
			b, _ := json.Marshal(xp[k])
			if string(a) != string(b) {
				t.Errorf("claim %s: subject %s, exchanged %s", k, a, b)
			}
		}
		if sp["tenant"] != "acme" {
			t.Errorf("fixture: subject token has no tenant: %v", sp)
		}
		if exp := num(xp["exp"]); exp > num(sp["exp"]) || exp > before.Add(defaultExchangeTTL).Unix()+2 || exp < before.Unix()+60 {
			t.Fatalf("exp %d: subject exp %d, now %d", exp, num(sp["exp"]), before.Unix())
		}
		in := e.introspect(t, xt)
		inAud, _ := in["aud"].([]any)
		inAct, _ := in["act"].(map[string]any)
		if in["active"] != true || in["sub"] != "usr_alice" || in["client_id"] != "spa" || in["scope"] != "orders:read" ||
			len(inAud) != 1 || inAud[0] != internalAudience || inAct["sub"] != "gateway" || num(in["exp"]) != num(xp["exp"]) {
			t.Fatalf("introspection of the exchanged token: %v", in)
		}

		// An explicit narrower scope and the second audience.
		_, out = e.mustExchange(t, "gateway", exchangeForm(at, billingAudience, "scope", "orders:read", "requested_token_type", accessTokenType))
		if out["scope"] != "orders:read" {
			t.Fatalf("explicit scope: %v", out)
		}

		// A client whose TTL exceeds the subject's remaining life gets a
		// token that ends with the subject token.
		lt, out := e.mustExchange(t, "gateway-long", exchangeForm(at, internalAudience))
		_, lp := decodeJWT(t, lt)
		if num(lp["exp"]) != num(sp["exp"]) || num(out["expires_in"]) > num(sp["exp"])-before.Unix() {
			t.Fatalf("long TTL: exp %d, subject exp %d, expires_in %d", num(lp["exp"]), num(sp["exp"]), num(out["expires_in"]))
		}

		// Exchanging an exchanged token nests the actors.
		ct, _ := e.mustExchange(t, "gateway-long", exchangeForm(xt, internalAudience))
		_, cp := decodeJWT(t, ct)
		cact, _ := cp["act"].(map[string]any)
		prev, _ := cact["act"].(map[string]any)
		if cact["sub"] != "gateway-long" || prev["sub"] != "gateway" || cp["client_id"] != "spa" || num(cp["exp"]) > num(xp["exp"]) {
			t.Fatalf("chained exchange: %v", cp)
		}

		// A client-credentials token (service chains) stays a client token.
		svc := e.serviceToken(t)
		_, svp := decodeJWT(t, svc)
		st2, _ := e.mustExchange(t, "gateway", exchangeForm(svc, internalAudience))
		_, s2 := decodeJWT(t, st2)
		s2act, _ := s2["act"].(map[string]any)
		if s2["sub"] != "service" || s2["client_id"] != "service" || s2["gid"] != nil || s2["scope"] != "orders:read" ||
			s2act["sub"] != "gateway" || num(s2["exp"]) > num(svp["exp"]) {
			t.Fatalf("client-credentials subject: %v", s2)
		}
		if in := e.introspect(t, st2); in["active"] != true || in["sub"] != "service" {
			t.Fatalf("introspection: %v", in)
		}

		exchangeAttacks(t, e, subj)
		exchangeRevocation(t, e, xt)
		exchangeExpiry(t, e, lt)
	})
}

// exchangeAttacks runs the attacker table against subject tokens of subj.
func exchangeAttacks(t *testing.T, e *Env, subj map[string]any) {
	at, idt, rt := str(subj["access_token"]), str(subj["id_token"]), str(subj["refresh_token"])
	hdr, claims := decodeJWT(t, at)
	kid, _ := hdr["kid"].(string)
	otherKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	with := func(k string, v any) map[string]any {
		c := map[string]any{}
		for kk, vv := range claims {
			c[kk] = vv
		}
		c[k] = v
		return c
	}
	ourSign := func(typ string, c map[string]any) string {
		tok, err := e.App.Keys.Sign(typ, c)
		if err != nil {
			t.Fatal(err)
		}
		e.remember(tok)
		return tok
	}
	parts := strings.Split(at, ".")
	widened, _ := json.Marshal(with("scope", "openid orders:read orders:write admin"))
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString(widened) + "." + parts[2]
	noneHdr := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"at+jwt","kid":"` + kid + `"}`))
	gw := func(kv ...string) url.Values { return exchangeForm(at, internalAudience, kv...) }
	repeatedAud := gw()
	repeatedAud["audience"] = []string{internalAudience, billingAudience}

	tests := []struct {
		name, client, secret string // secret "" uses the registered one; "-" sends none
		form                 url.Values
		status               int
		want                 string
	}{
		{"OA-exchange/public-client", "public-exchanger", "-", gw("client_id", "public-exchanger"), 400, "unauthorized_client"},
		{"OA-exchange/public-client-without-grant", "native", "-", gw("client_id", "native"), 400, "unauthorized_client"},
		{"OA-exchange/client-without-grant", "nogrant", "", gw(), 400, "unauthorized_client"},
		{"OA-exchange/subject-client-without-grant", "web", "", gw(), 400, "unauthorized_client"},
		{"OA-exchange/wrong-client-secret", "gateway", "ghs_wrong", gw(), 401, "invalid_client"},
		{"OA-exchange/no-client-secret", "gateway", "-", gw("client_id", "gateway"), 401, "invalid_client"},
		{"OA-exchange/missing-subject-token", "gateway", "", gw("subject_token", ""), 400, "invalid_request"},
		{"OA-exchange/missing-subject-token-type", "gateway", "", gw("subject_token_type", ""), 400, "invalid_request"},
		{"OA-exchange/wrong-subject-token-type", "gateway", "", gw("subject_token_type", "urn:ietf:params:oauth:token-type:id_token"), 400, "invalid_request"},
		{"OA-exchange/jwt-subject-token-type", "gateway", "", gw("subject_token_type", "urn:ietf:params:oauth:token-type:jwt"), 400, "invalid_request"},
		{"OA-exchange/unknown-subject-token-type", "gateway", "", gw("subject_token_type", "urn:x"), 400, "invalid_request"},
		{"OA-exchange/id-token-as-subject", "gateway", "", gw("subject_token", idt), 400, "invalid_request"},
		{"OA-exchange/id-token-typed-as-id-token", "gateway", "", gw("subject_token", idt, "subject_token_type", "urn:ietf:params:oauth:token-type:id_token"), 400, "invalid_request"},
		{"OA-exchange/refresh-token-as-subject", "gateway", "", gw("subject_token", rt), 400, "invalid_request"},
		{"OA-exchange/garbage-subject", "gateway", "", gw("subject_token", "a.b.c"), 400, "invalid_request"},
		{"OA-exchange/foreign-key", "gateway", "", gw("subject_token", forge(t, otherKey, kid, "at+jwt", claims)), 400, "invalid_request"},
		{"OA-exchange/unknown-kid", "gateway", "", gw("subject_token", forge(t, otherKey, "evil", "at+jwt", claims)), 400, "invalid_request"},
		{"OA-exchange/tampered", "gateway", "", gw("subject_token", tampered), 400, "invalid_request"},
		{"OA-exchange/alg-none", "gateway", "", gw("subject_token", noneHdr+"."+parts[1]+"."), 400, "invalid_request"},
		{"OA-exchange/foreign-issuer", "gateway", "", gw("subject_token", ourSign("at+jwt", with("iss", "https://evil.example.com"))), 400, "invalid_request"},
		{"OA-exchange/typ-jwt", "gateway", "", gw("subject_token", ourSign("JWT", claims)), 400, "invalid_request"},
		{"OA-exchange/no-exp", "gateway", "", gw("subject_token", ourSign("at+jwt", with("exp", nil))), 400, "invalid_request"},
		{"OA-exchange/audience-not-registered", "gateway", "", gw("audience", apiAudience), 400, "invalid_target"},
		{"OA-exchange/audience-of-other-client", "gateway-long", "", gw("audience", billingAudience), 400, "invalid_target"},
		{"OA-exchange/missing-audience", "gateway", "", gw("audience", ""), 400, "invalid_request"},
		{"OA-exchange/two-audiences", "gateway", "", gw("audience", internalAudience+" "+billingAudience), 400, "invalid_target"},
		{"OA-exchange/two-audience-params", "gateway", "", repeatedAud, 400, "invalid_request"},
		{"OA-exchange/scope-widening", "gateway", "", gw("scope", "billing:read"), 400, "invalid_scope"},
		{"OA-exchange/scope-not-for-client", "gateway", "", gw("scope", "orders:write"), 400, "invalid_scope"},
		{"OA-exchange/scope-unknown", "gateway", "", gw("scope", "orders:read admin"), 400, "invalid_scope"},
		{"OA-exchange/scope-openid", "gateway", "", gw("scope", "openid"), 400, "invalid_scope"},
		{"OA-exchange/scope-empty-intersection", "gateway", "", gw("subject_token", ourSign("at+jwt", with("scope", "openid profile"))), 400, "invalid_scope"},
		{"OA-exchange/actor-token", "gateway", "", gw("actor_token", at, "actor_token_type", accessTokenType), 400, "invalid_request"},
		{"OA-exchange/resource", "gateway", "", gw("resource", internalAudience), 400, "invalid_target"},
		{"OA-exchange/requested-refresh-token", "gateway", "", gw("requested_token_type", "urn:ietf:params:oauth:token-type:refresh_token"), 400, "invalid_request"},
		{"OA-exchange/requested-id-token", "gateway", "", gw("requested_token_type", "urn:ietf:params:oauth:token-type:id_token"), 400, "invalid_request"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			user, pass := tc.client, tc.secret
			switch pass {
			case "":
				pass = e.Secrets[tc.client]
			case "-":
				user, pass = "", ""
			}
			status, out, _ := e.postForm(t, "/oauth/token", tc.form, user, pass)
			if status != tc.status || out["error"] != tc.want || out["access_token"] != nil {
				t.Fatalf("got %d %v, want %d %s", status, out, tc.status, tc.want)
			}
			desc := str(out["error_description"])
			for _, k := range []string{"subject_token", "actor_token"} {
				for _, seg := range strings.Split(tc.form.Get(k), ".") {
					if len(seg) >= 16 && strings.Contains(desc, seg) {
						t.Fatalf("error description echoes a token: %q", desc)
					}
				}
			}
		})
	}
}

// exchangeRevocation: revoking the user's grant makes the exchanged token
// inactive and the subject unusable; revoking one access token (by jti)
// makes that token unusable as a subject; the gateway may revoke what it got.
func exchangeRevocation(t *testing.T, e *Env, xt string) {
	t.Run("OA-exchange/revoked-subject", func(t *testing.T) {
		subj := e.spaLogin(t)
		at, rt := str(subj["access_token"]), str(subj["refresh_token"])
		x, _ := e.mustExchange(t, "gateway", exchangeForm(at, internalAudience))
		if e.introspect(t, x)["active"] != true {
			t.Fatal("exchanged token inactive before revocation")
		}
		st, out, _ := e.postForm(t, "/oauth/revoke", url.Values{"token": {rt}, "client_id": {"spa"}}, "", "")
		if st != 200 {
			t.Fatalf("revoke: %d %v", st, out)
		}
		if e.introspect(t, x)["active"] != false {
			t.Fatal("exchanged token still active after the user's grant was revoked")
		}
		if st, out := e.exchangeAs(t, "gateway", exchangeForm(at, internalAudience)); st != 400 || out["error"] != "invalid_request" {
			t.Fatalf("exchange of a revoked subject: %d %v", st, out)
		}
	})
	t.Run("OA-exchange/revoked-subject-jti", func(t *testing.T) {
		at := str(e.spaLogin(t)["access_token"])
		if st, _, _ := e.postForm(t, "/oauth/revoke", url.Values{"token": {at}, "client_id": {"spa"}}, "", ""); st != 200 {
			t.Fatal(st)
		}
		if st, out := e.exchangeAs(t, "gateway", exchangeForm(at, internalAudience)); st != 400 || out["error"] != "invalid_request" {
			t.Fatalf("exchange of a revoked access token: %d %v", st, out)
		}
	})
	t.Run("OA-exchange/actor-revokes", func(t *testing.T) {
		// Another client cannot revoke it; the actor can.
		if st, _, _ := e.postForm(t, "/oauth/revoke", url.Values{"token": {xt}}, "service", e.Secrets["service"]); st != 200 || e.introspect(t, xt)["active"] != true {
			t.Fatal("a foreign client revoked the exchanged token")
		}
		if st, _, _ := e.postForm(t, "/oauth/revoke", url.Values{"token": {xt}}, "gateway", e.Secrets["gateway"]); st != 200 || e.introspect(t, xt)["active"] != false {
			t.Fatal("the actor could not revoke the exchanged token")
		}
	})
}

// exchangeExpiry: an exchanged token dies with its subject, and an expired
// subject cannot be exchanged. It advances the clock, so it runs last.
func exchangeExpiry(t *testing.T, e *Env, capped string) {
	t.Run("OA-exchange/expired-subject", func(t *testing.T) {
		at := str(e.spaLogin(t)["access_token"])
		_, p := decodeJWT(t, at)
		e.Clock.Advance(time.Unix(num(p["exp"])+2, 0).Sub(e.Clock.Now()))
		if st, out := e.exchangeAs(t, "gateway", exchangeForm(at, internalAudience)); st != 400 || out["error"] != "invalid_request" {
			t.Fatalf("exchange of an expired subject: %d %v", st, out)
		}
		if e.introspect(t, capped)["active"] != false {
			t.Fatal("an exchanged token outlived its subject token")
		}
	})
}

// forge signs claims with a key that is not the IdP's.
func forge(t *testing.T, key *ecdsa.PrivateKey, kid, typ string, claims map[string]any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType(jose.ContentType(typ)).WithHeader("kid", kid)
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(claims)
	obj, err := s.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}
