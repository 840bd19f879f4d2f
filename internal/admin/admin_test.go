package admin_test

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/admin"
	"github.com/gatehouse/gatehouse/internal/admin/admintest"
	"github.com/gatehouse/gatehouse/internal/secret"
	"github.com/gatehouse/gatehouse/internal/storage"
	"github.com/gatehouse/gatehouse/internal/testutil/syncbuf"
)

type env struct {
	t       *testing.T
	h       http.Handler
	store   *admintest.Store
	keys    *admintest.KeyAdmin
	secrets *secret.Keyed
	logs    *syncbuf.Buffer
}

func newEnv(t *testing.T) *env {
	t.Helper()
	f := admintest.NewFakes(t)
	e := &env{t: t, store: f.Store, keys: f.Keys, secrets: f.Secrets, logs: &syncbuf.Buffer{}}
	var err error
	e.h, err = admin.NewHandler(f.Deps(slog.New(slog.NewTextHandler(e.logs, nil))))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *env) client(id string) storage.Client { c, _ := e.store.Client(id); return c }
func (e *env) user(id string) storage.User     { u, _ := e.store.User(id); return u }
func (e *env) nClients() int                   { n, _ := e.store.Len(); return n }
func (e *env) nUsers() int                     { _, n := e.store.Len(); return n }

// do sends an authenticated request; a non-empty body is sent as JSON.
func (e *env) do(method, path, body string) *httptest.ResponseRecorder {
	e.t.Helper()
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	r.Header.Set("Authorization", "Bearer "+admintest.Token)
	if body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	return w
}

func decodeInto[T any](t *testing.T, w *httptest.ResponseRecorder) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil {
		t.Fatalf("decode %s: %v", w.Body.String(), err)
	}
	return v
}

func wantStatus(t *testing.T, w *httptest.ResponseRecorder, status int) {
	t.Helper()
	if w.Code != status {
		t.Fatalf("status = %d, want %d; body %s", w.Code, status, w.Body.String())
	}
}

func TestNewHandlerRequiresDeps(t *testing.T) {
	full := admintest.NewFakes(t).Deps(nil)
	sum := full.TokenSHA256
	if _, err := admin.NewHandler(full); err != nil {
		t.Fatalf("full deps: %v", err)
	}
	tests := map[string]func(d *admin.Deps){
		"no-clients":   func(d *admin.Deps) { d.Clients = nil },
		"no-secrets":   func(d *admin.Deps) { d.Secrets = nil },
		"no-policy":    func(d *admin.Deps) { d.Policy = nil },
		"no-token":     func(d *admin.Deps) { d.TokenSHA256 = nil },
		"short-token":  func(d *admin.Deps) { d.TokenSHA256 = sum[:16] },
		"no-hasher":    func(d *admin.Deps) { d.Passwords = nil },
		"no-keyadmin":  func(d *admin.Deps) { d.Keys = nil },
		"no-userstore": func(d *admin.Deps) { d.Users = nil },
	}
	for name, mutate := range tests {
		t.Run(name, func(t *testing.T) {
			d := full
			mutate(&d)
			if _, err := admin.NewHandler(d); err == nil {
				t.Fatal("admin.NewHandler accepted incomplete deps")
			}
		})
	}
}

func TestAuthentication(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name   string
		path   string
		auth   []string
		status int
		code   string
	}{
		{"missing", "/admin/v1/clients", nil, 401, "unauthorized"},
		{"wrong-token", "/admin/v1/clients", []string{"Bearer wrong"}, 401, "unauthorized"},
		{"token-prefix", "/admin/v1/clients", []string{"Bearer " + admintest.Token[:10]}, 401, "unauthorized"},
		{"token-with-suffix", "/admin/v1/clients", []string{"Bearer " + admintest.Token + "x"}, 401, "unauthorized"},
		{"basic-scheme", "/admin/v1/clients", []string{"Basic " + admintest.Token}, 401, "unauthorized"},
		{"no-scheme", "/admin/v1/clients", []string{admintest.Token}, 401, "unauthorized"},
		{"empty-bearer", "/admin/v1/clients", []string{"Bearer "}, 401, "unauthorized"},
		{"two-tokens-one-header", "/admin/v1/clients", []string{"Bearer " + admintest.Token + ", Bearer x"}, 401, "unauthorized"},
		{"GW-04/two-authorization-headers", "/admin/v1/clients", []string{"Bearer " + admintest.Token, "Bearer " + admintest.Token}, 400, "invalid_request"},
		{"GW-04/token-in-query", "/admin/v1/clients?access_token=" + admintest.Token, []string{"Bearer " + admintest.Token}, 400, "invalid_request"},
		{"GW-04/token-in-query-no-header", "/admin/v1/clients?token=" + admintest.Token, nil, 400, "invalid_request"},
		{"GW-04/token-in-query-case", "/admin/v1/clients?Access_Token=x", []string{"Bearer " + admintest.Token}, 400, "invalid_request"},
		{"GW-04/any-query-refused", "/admin/v1/clients?limit=10", []string{"Bearer " + admintest.Token}, 400, "invalid_request"},
		{"GW-04/token-as-query-value", "/admin/v1/clients?x=" + admintest.Token, nil, 400, "invalid_request"},
		{"unknown-path-unauthenticated", "/admin/v1/secret-things", nil, 401, "unauthorized"},
		{"lower-case-scheme", "/admin/v1/clients", []string{"bearer " + admintest.Token}, 200, ""},
		{"valid", "/admin/v1/clients", []string{"Bearer " + admintest.Token}, 200, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", tc.path, nil)
			for _, a := range tc.auth {
				r.Header.Add("Authorization", a)
			}
			w := httptest.NewRecorder()
			e.h.ServeHTTP(w, r)
			wantStatus(t, w, tc.status)
			if tc.code != "" {
				if got := decodeInto[admin.ErrorResponse](t, w).Error; got != tc.code {
					t.Errorf("error = %q, want %q", got, tc.code)
				}
			}
			if tc.status == 401 && !strings.HasPrefix(w.Header().Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("WWW-Authenticate = %q", w.Header().Get("WWW-Authenticate"))
			}
			if w.Header().Get("Cache-Control") != "no-store" {
				t.Error("missing Cache-Control: no-store")
			}
		})
	}
	if strings.Contains(e.logs.String(), admintest.Token) {
		t.Error("admin token reached the logs")
	}
}

func TestRouting(t *testing.T) {
	e := newEnv(t)
	t.Run("openapi-without-auth", func(t *testing.T) {
		w := httptest.NewRecorder()
		e.h.ServeHTTP(w, httptest.NewRequest("GET", admin.OpenAPIPath, nil))
		wantStatus(t, w, 200)
		if !strings.HasPrefix(w.Body.String(), "openapi: 3.1") {
			t.Errorf("body starts %q", w.Body.String()[:20])
		}
	})
	t.Run("unknown-path", func(t *testing.T) {
		w := e.do("GET", "/admin/v1/nothing", "")
		wantStatus(t, w, 404)
		if decodeInto[admin.ErrorResponse](t, w).Error != "not_found" {
			t.Error(w.Body.String())
		}
	})
	t.Run("wrong-method", func(t *testing.T) {
		w := e.do("PUT", "/admin/v1/clients", "")
		wantStatus(t, w, 405)
		if got := w.Header().Get("Allow"); got != "GET, POST" {
			t.Errorf("Allow = %q", got)
		}
	})
	t.Run("no-state-change-via-get", func(t *testing.T) {
		w := e.do("GET", "/admin/v1/keys/rotate", "")
		wantStatus(t, w, 405)
	})
}

// createClient posts body and returns the response.
func (e *env) createClient(body string) admin.ClientResponse {
	e.t.Helper()
	w := e.do("POST", "/admin/v1/clients", body)
	wantStatus(e.t, w, 201)
	return decodeInto[admin.ClientResponse](e.t, w)
}

func TestClientSecretShownOnce(t *testing.T) {
	e := newEnv(t)
	c := e.createClient(`{"id":"web","name":"Web","redirect_uris":["https://app.example.com/cb"],"scopes":["openid","profile"]}`)
	if !strings.HasPrefix(c.ClientSecret, "ghs_") || len(c.ClientSecret) != 4+43 {
		t.Fatalf("client_secret = %q, want ghs_ + 43 base64url chars", c.ClientSecret)
	}
	stored := e.client("web")
	if !e.secrets.Verify(c.ClientSecret, stored.SecretHash) {
		t.Fatal("stored hash does not verify the returned secret")
	}
	if stored.SecretHint != c.ClientSecret[:8] || c.SecretHint != stored.SecretHint {
		t.Errorf("hint = %q / %q, want %q", stored.SecretHint, c.SecretHint, c.ClientSecret[:8])
	}
	if got := c.GrantTypes; strings.Join(got, ",") != "authorization_code,refresh_token" {
		t.Errorf("default grant types = %v", got)
	}

	leaks := []string{
		c.ClientSecret,
		base64.StdEncoding.EncodeToString(stored.SecretHash),
		base64.RawURLEncoding.EncodeToString(stored.SecretHash),
		hex.EncodeToString(stored.SecretHash),
		"client_secret", "secret_hash", "SecretHash",
	}
	for _, path := range []string{"/admin/v1/clients", "/admin/v1/clients/web"} {
		w := e.do("GET", path, "")
		wantStatus(t, w, 200)
		for _, l := range leaks {
			if strings.Contains(w.Body.String(), l) {
				t.Errorf("GET %s leaks %q: %s", path, l, w.Body.String())
			}
		}
	}

	w := e.do("POST", "/admin/v1/clients/web/secret", "")
	wantStatus(t, w, 200)
	rot := decodeInto[admin.ClientResponse](t, w)
	stored = e.client("web")
	if rot.ClientSecret == "" || rot.ClientSecret == c.ClientSecret {
		t.Fatalf("rotated secret = %q", rot.ClientSecret)
	}
	if !e.secrets.Verify(rot.ClientSecret, stored.SecretHash) {
		t.Error("new secret does not verify")
	}
	if e.secrets.Verify(c.ClientSecret, stored.SecretHash) {
		t.Error("old secret still verifies after rotation")
	}
	for _, s := range []string{c.ClientSecret, rot.ClientSecret} {
		if strings.Contains(e.logs.String(), s) {
			t.Error("client secret reached the logs")
		}
	}

	pub := e.createClient(`{"name":"SPA","public":true,"redirect_uris":["https://spa.example.com/cb"]}`)
	if pub.ClientSecret != "" || pub.SecretHint != "" || len(e.client(pub.ID).SecretHash) != 0 {
		t.Errorf("public client got a secret: %+v", pub)
	}
	if raw, _ := base64.RawURLEncoding.DecodeString(pub.ID); len(raw) != 16 {
		t.Errorf("generated id %q is not 16 random bytes", pub.ID)
	}
	w = e.do("POST", "/admin/v1/clients/"+pub.ID+"/secret", "")
	wantStatus(t, w, 400)
}

func TestClientValidation(t *testing.T) {
	const okRedirect = `"redirect_uris":["https://app.example.com/cb"]`
	tests := []struct {
		name string
		body string
		want []string // substrings of error_description; empty = accepted
	}{
		{"OA-R/fragment", `{"name":"a","redirect_uris":["https://app.example.com/cb#f"]}`, []string{"fragment"}},
		{"OA-R/empty-fragment", `{"name":"a","redirect_uris":["https://app.example.com/cb#"]}`, []string{"fragment"}},
		{"OA-R/wildcard-host", `{"name":"a","redirect_uris":["https://*.example.com/cb"]}`, []string{"wildcard"}},
		{"OA-R/wildcard-path", `{"name":"a","redirect_uris":["https://app.example.com/*"]}`, []string{"wildcard"}},
		{"OA-R/relative", `{"name":"a","redirect_uris":["/cb"]}`, []string{"absolute"}},
		{"OA-R/scheme-relative", `{"name":"a","redirect_uris":["//evil.com/cb"]}`, []string{"absolute"}},
		{"OA-R/http-non-loopback", `{"name":"a","redirect_uris":["http://app.example.com/cb"]}`, []string{"https"}},
		{"OA-R/http-loopback-lookalike", `{"name":"a","redirect_uris":["http://127.0.0.1.evil.com/cb"]}`, []string{"https"}},
		{"OA-R/javascript", `{"name":"a","redirect_uris":["javascript:alert(1)"]}`, []string{"private-use"}},
		{"OA-R/data", `{"name":"a","redirect_uris":["data:text/html,x"]}`, []string{"private-use"}},
		{"OA-R/file", `{"name":"a","redirect_uris":["file:///etc/passwd"]}`, []string{"private-use"}},
		{"OA-R/userinfo", `{"name":"a","redirect_uris":["https://app.example.com@evil.com/cb"]}`, []string{"user information"}},
		{"OA-R/dot-segments", `{"name":"a","redirect_uris":["https://app.example.com/cb/../evil"]}`, []string{"dot segments"}},
		{"OA-R/encoded-dot-segments", `{"name":"a","redirect_uris":["https://app.example.com/cb/%2e%2e/evil"]}`, []string{"dot segments"}},
		{"OA-R/encoded-slash", `{"name":"a","redirect_uris":["https://app.example.com/cb%2Fevil"]}`, []string{"encoded slashes"}},
		{"OA-R/encoded-backslash", `{"name":"a","redirect_uris":["https://app.example.com/cb%5cevil"]}`, []string{"encoded slashes"}},
		{"OA-R/mixed-case-encoded-dots", `{"name":"a","redirect_uris":["https://app.example.com/%2E./evil"]}`, []string{"dot segments"}},
		{"OA-R/private-scheme-dot-segments", `{"name":"a","public":true,"redirect_uris":["com.example.app:/cb/../x"]}`, []string{"dot segments"}},
		{"OA-R/upper-case-scheme", `{"name":"a","redirect_uris":["HTTPS://app.example.com/cb"]}`, []string{"lower-case scheme"}},
		{"OA-R/upper-case-host", `{"name":"a","redirect_uris":["https://App.example.com/cb"]}`, []string{"lower-case host"}},
		{"OA-R/whitespace", `{"name":"a","redirect_uris":["https://app.example.com/c b"]}`, []string{"whitespace"}},
		{"OA-R/https-opaque", `{"name":"a","redirect_uris":["https:app.example.com"]}`, []string{"host"}},
		{"OA-R/private-scheme-with-host", `{"name":"a","redirect_uris":["com.example.app://cb"]}`, []string{"no authority"}},
		{"OA-R/post-logout-fragment", `{"name":"a",` + okRedirect + `,"post_logout_redirect_uris":["https://app.example.com/#x"]}`, []string{"post_logout_redirect_uris", "fragment"}},
		{"OA-G/implicit", `{"name":"a",` + okRedirect + `,"grant_types":["implicit"]}`, []string{`"implicit" is not supported`}},
		{"OA-G/password", `{"name":"a",` + okRedirect + `,"grant_types":["password"]}`, []string{`"password" is not supported`}},
		{"OA-G/token", `{"name":"a",` + okRedirect + `,"grant_types":["token"]}`, []string{"not supported"}},
		{"OA-G/unknown-grant", `{"name":"a",` + okRedirect + `,"grant_types":["urn:x"]}`, []string{"unknown"}},
		{"public-client-credentials", `{"name":"a","public":true,"grant_types":["client_credentials"]}`, []string{"public clients cannot use client_credentials"}},
		{"OA-exchange/public-client", `{"name":"a","public":true,"grant_types":["urn:ietf:params:oauth:grant-type:token-exchange"],"audiences":["https://orders.internal"]}`, []string{"public clients cannot use token exchange"}},
		{"OA-exchange/public-client-with-code", `{"name":"a","public":true,` + okRedirect + `,"grant_types":["authorization_code","urn:ietf:params:oauth:grant-type:token-exchange"]}`, []string{"public clients cannot use token exchange"}},
		{"OA-exchange/grant-case-variant", `{"name":"a","grant_types":["URN:IETF:PARAMS:OAUTH:GRANT-TYPE:TOKEN-EXCHANGE"]}`, []string{"unknown"}},
		{"OA-exchange/grant-lookalike", `{"name":"a","grant_types":["urn:ietf:params:oauth:grant-type:token-exchange "]}`, []string{"unknown"}},
		{"code-needs-redirect", `{"name":"a","grant_types":["authorization_code"]}`, []string{"requires at least one redirect URI"}},
		{"refresh-needs-code", `{"name":"a","grant_types":["client_credentials","refresh_token"]}`, []string{"refresh_token requires authorization_code"}},
		{"scope-with-space", `{"name":"a",` + okRedirect + `,"scopes":["a b"]}`, []string{"scopes"}},
		{"scope-with-quote", `{"name":"a",` + okRedirect + `,"scopes":["a\"b"]}`, []string{"scopes"}},
		{"scope-with-backslash", `{"name":"a",` + okRedirect + `,"scopes":["a\\b"]}`, []string{"scopes"}},
		{"scope-non-ascii", `{"name":"a",` + okRedirect + `,"scopes":["é"]}`, []string{"scopes"}},
		{"scope-empty", `{"name":"a",` + okRedirect + `,"scopes":[""]}`, []string{"scopes"}},
		{"audience-control", `{"name":"a",` + okRedirect + `,"audiences":["a\u0000"]}`, []string{"audiences"}},
		{"bad-id", `{"id":"a/b","name":"a",` + okRedirect + `}`, []string{"id:"}},
		{"id-too-long", `{"id":"` + strings.Repeat("a", 129) + `","name":"a",` + okRedirect + `}`, []string{"id:"}},
		{"missing-name", `{` + okRedirect + `}`, []string{"name:"}},
		{"bad-ttl", `{"name":"a",` + okRedirect + `,"access_token_ttl":"soon"}`, []string{"access_token_ttl"}},
		{"negative-ttl", `{"name":"a",` + okRedirect + `,"refresh_max_ttl":"-1h"}`, []string{"refresh_max_ttl: must be positive"}},
		{"huge-ttl", `{"name":"a",` + okRedirect + `,"access_token_ttl":"48h"}`, []string{"access_token_ttl: must not exceed"}},
		{"idle-over-max", `{"name":"a",` + okRedirect + `,"refresh_idle_ttl":"48h","refresh_max_ttl":"24h"}`, []string{"refresh_idle_ttl: must not exceed refresh_max_ttl"}},
		{"every-problem-listed", `{"name":"","redirect_uris":["https://x.example/#a","http://x.example/"],"grant_types":["password","authorization_code"],"scopes":["a b"]}`,
			[]string{"name:", "fragment", "must use https", `"password" is not supported`, "scopes"}},
		{"ok/https", `{"name":"a",` + okRedirect + `}`, nil},
		{"ok/loopback-ipv4", `{"name":"a","redirect_uris":["http://127.0.0.1:8080/cb"]}`, nil},
		{"ok/loopback-ipv6", `{"name":"a","redirect_uris":["http://[::1]/cb"]}`, nil},
		{"ok/localhost", `{"name":"a","redirect_uris":["http://localhost:3000/cb"]}`, nil},
		{"ok/private-use-scheme", `{"name":"a","public":true,"redirect_uris":["com.example.app:/oauth2redirect"]}`, nil},
		{"ok/client-credentials-only", `{"name":"a","grant_types":["client_credentials"],"audiences":["https://api.example.com"],"access_token_ttl":"5m"}`, nil},
		{"ok/token-exchange", `{"name":"a","grant_types":["urn:ietf:params:oauth:grant-type:token-exchange"],"scopes":["orders:read"],"audiences":["https://orders.internal"],"access_token_ttl":"2m"}`, nil},
		{"ok/token-exchange-and-client-credentials", `{"name":"a","grant_types":["client_credentials","urn:ietf:params:oauth:grant-type:token-exchange"],"audiences":["https://orders.internal"]}`, nil},
		{"ok/ttls", `{"name":"a",` + okRedirect + `,"refresh_idle_ttl":"24h","refresh_max_ttl":"720h"}`, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			w := e.do("POST", "/admin/v1/clients", tc.body)
			if len(tc.want) == 0 {
				wantStatus(t, w, 201)
				return
			}
			wantStatus(t, w, 400)
			er := decodeInto[admin.ErrorResponse](t, w)
			if er.Error != "invalid_request" {
				t.Errorf("error = %q", er.Error)
			}
			for _, s := range tc.want {
				if !strings.Contains(er.ErrorDescription, s) {
					t.Errorf("error_description %q lacks %q", er.ErrorDescription, s)
				}
			}
			if e.nClients() != 0 {
				t.Error("invalid client was stored")
			}
		})
	}
}

func TestClientUpdateDelete(t *testing.T) {
	e := newEnv(t)
	e.createClient(`{"id":"web","name":"Web","redirect_uris":["https://app.example.com/cb"]}`)

	w := e.do("PATCH", "/admin/v1/clients/web", `{"name":"Web 2","scopes":["openid"],"access_token_ttl":"10m"}`)
	wantStatus(t, w, 200)
	c := decodeInto[admin.ClientResponse](t, w)
	if c.Name != "Web 2" || c.AccessTokenTTL != "10m0s" || len(c.RedirectURIs) != 1 || c.ClientSecret != "" {
		t.Errorf("patched client = %+v", c)
	}
	if len(e.client("web").SecretHash) == 0 {
		t.Error("patch dropped the secret hash")
	}

	t.Run("OA-R/patch-validated", func(t *testing.T) {
		w := e.do("PATCH", "/admin/v1/clients/web", `{"redirect_uris":["https://app.example.com/*"]}`)
		wantStatus(t, w, 400)
		if e.client("web").RedirectURIs[0] != "https://app.example.com/cb" {
			t.Error("invalid patch was stored")
		}
	})
	t.Run("OA-exchange/patch-public-client", func(t *testing.T) {
		e.createClient(`{"id":"spa","name":"SPA","public":true,"redirect_uris":["https://app.example.com/cb"]}`)
		w := e.do("PATCH", "/admin/v1/clients/spa", `{"grant_types":["authorization_code","urn:ietf:params:oauth:grant-type:token-exchange"]}`)
		wantStatus(t, w, 400)
		if !strings.Contains(w.Body.String(), "public clients cannot use token exchange") {
			t.Errorf("body %s", w.Body.String())
		}
		if slices.Contains(e.client("spa").GrantTypes, admin.GrantTokenExchange) {
			t.Error("invalid patch was stored")
		}
	})
	t.Run("public-is-immutable", func(t *testing.T) {
		wantStatus(t, e.do("PATCH", "/admin/v1/clients/web", `{"public":true}`), 400)
	})
	t.Run("patch-unknown", func(t *testing.T) {
		wantStatus(t, e.do("PATCH", "/admin/v1/clients/nope", `{"name":"x"}`), 404)
	})
	t.Run("conflict", func(t *testing.T) {
		w := e.do("POST", "/admin/v1/clients", `{"id":"web","name":"Again","public":true,"redirect_uris":["https://a.example/cb"]}`)
		wantStatus(t, w, 409)
		if decodeInto[admin.ErrorResponse](t, w).Error != "conflict" {
			t.Error(w.Body.String())
		}
	})
	t.Run("get-invalid-id", func(t *testing.T) {
		wantStatus(t, e.do("GET", "/admin/v1/clients/"+strings.Repeat("x", 200), ""), 404)
	})

	wantStatus(t, e.do("DELETE", "/admin/v1/clients/web", ""), 204)
	if len(e.store.DeletedClients()) != 1 {
		t.Error("store DeleteClient not called")
	}
	wantStatus(t, e.do("GET", "/admin/v1/clients/web", ""), 404)
	wantStatus(t, e.do("DELETE", "/admin/v1/clients/web", ""), 404)
}

func TestStrictJSON(t *testing.T) {
	tests := []struct {
		name   string
		body   string
		ctype  string
		status int
	}{
		{"unknown-field", `{"name":"a","public":true,"redirect_uris":["https://a.example/cb"],"secret":"x"}`, "application/json", 400},
		{"JWT-E02/duplicate-member", `{"name":"a","name":"b","public":true,"redirect_uris":["https://a.example/cb"]}`, "application/json", 400},
		{"JWT-E02/case-variant-duplicate", `{"name":"a","Name":"b","public":true,"redirect_uris":["https://a.example/cb"]}`, "application/json", 400},
		{"JWT-E02/case-variant-member", `{"NAME":"a","public":true,"redirect_uris":["https://a.example/cb"]}`, "application/json", 400},
		{"trailing-garbage", `{"name":"a","public":true,"redirect_uris":["https://a.example/cb"]}{}`, "application/json", 400},
		{"array-body", `[{"name":"a"}]`, "application/json", 400},
		{"empty-body", ``, "application/json", 400},
		{"wrong-type", `{"name":5}`, "application/json", 400},
		{"deep-nesting", `{"name":` + strings.Repeat("[", 50) + strings.Repeat("]", 50) + `}`, "application/json", 400},
		{"form-content-type", `name=a`, "application/x-www-form-urlencoded", 415},
		{"text-plain", `{"name":"a"}`, "text/plain", 415},
		{"too-large", `{"name":"` + strings.Repeat("a", admin.MaxBody) + `"}`, "application/json", 413},
		{"json-with-charset", `{"name":"a","public":true,"redirect_uris":["https://a.example/cb"]}`, "application/json; charset=utf-8", 201},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			r := httptest.NewRequest("POST", "/admin/v1/clients", strings.NewReader(tc.body))
			r.Header.Set("Authorization", "Bearer "+admintest.Token)
			r.Header.Set("Content-Type", tc.ctype)
			w := httptest.NewRecorder()
			e.h.ServeHTTP(w, r)
			wantStatus(t, w, tc.status)
		})
	}
}

func TestStoreErrors(t *testing.T) {
	tests := []struct {
		name   string
		err    error
		status int
		code   string
	}{
		{"RL-04/unavailable", fmt.Errorf("dial tcp 10.0.0.5:5432: %w", storage.ErrUnavailable), 503, "temporarily_unavailable"},
		{"internal", errors.New("pq: relation secret_table does not exist"), 500, "server_error"},
	}
	requests := []struct{ method, path, body string }{
		{"GET", "/admin/v1/clients", ""},
		{"GET", "/admin/v1/users/u1", ""},
		{"POST", "/admin/v1/clients", `{"name":"a","public":true,"redirect_uris":["https://a.example/cb"]}`},
		{"PATCH", "/admin/v1/users/u1", `{"disabled":true}`},
		{"DELETE", "/admin/v1/clients/c1", ""},
		{"GET", "/admin/v1/keys", ""},
		{"POST", "/admin/v1/keys/rotate", ""},
	}
	for _, tc := range tests {
		for _, rq := range requests {
			t.Run(tc.name+"/"+rq.method+rq.path, func(t *testing.T) {
				e := newEnv(t)
				e.store.SetFail(tc.err)
				e.keys.SetFail(tc.err)
				w := e.do(rq.method, rq.path, rq.body)
				wantStatus(t, w, tc.status)
				if got := decodeInto[admin.ErrorResponse](t, w).Error; got != tc.code {
					t.Errorf("error = %q, want %q", got, tc.code)
				}
				if ra := w.Header().Get("Retry-After"); (tc.status == 503) != (ra == "5") {
					t.Errorf("Retry-After = %q", ra)
				}
				if strings.Contains(w.Body.String(), "10.0.0.5") || strings.Contains(w.Body.String(), "secret_table") {
					t.Errorf("cause leaked: %s", w.Body.String())
				}
				if !strings.Contains(e.logs.String(), tc.err.Error()) {
					t.Errorf("cause not logged: %s", e.logs.String())
				}
			})
		}
	}
}
