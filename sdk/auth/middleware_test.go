package auth

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// fakeAuthenticator accepts exactly one token.
type fakeAuthenticator struct {
	token  string
	claims *Claims
	err    error // returned for every other token
}

func (f fakeAuthenticator) Authenticate(_ context.Context, tok string) (*Claims, error) {
	if tok == f.token {
		return f.claims, nil
	}
	return nil, f.err
}

func TestMiddlewareRFC6750(t *testing.T) {
	alice := &Claims{Subject: "usr_alice", ClientID: "web", Scopes: []string{"orders:read"}, Roles: []string{"user"}, Tenant: "acme"}
	a := fakeAuthenticator{token: "good", claims: alice, err: ErrInvalidToken}
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, found := ClaimsFromContext(r.Context())
		if !found || c.Subject != "usr_alice" {
			t.Error("claims missing from context")
		}
		w.WriteHeader(http.StatusNoContent)
	})
	cases := []struct {
		name      string
		auth      Authenticator
		rule      Rule
		headers   []string
		status    int
		challenge string // substring of WWW-Authenticate; "-" for none
		code      string
	}{
		{"valid", a, RequireScopes("orders:read"), []string{"Bearer good"}, 204, "-", ""},
		{"scheme-case-insensitive", a, AnyAuthenticated(), []string{"bEaReR good"}, 204, "-", ""},
		{"no-token", a, AnyAuthenticated(), nil, 401, `Bearer realm="api"`, "unauthorized"},
		{"basic-scheme", a, AnyAuthenticated(), []string{"Basic dXNlcjpwdw=="}, 401, `Bearer realm="api"`, "unauthorized"},
		{"invalid-token", a, AnyAuthenticated(), []string{"Bearer bad"}, 401, `error="invalid_token"`, "invalid_token"},
		{"repeated-header", a, AnyAuthenticated(), []string{"Bearer good", "Bearer good"}, 400, `error="invalid_request"`, "invalid_request"},
		{"two-spaces", a, AnyAuthenticated(), []string{"Bearer  good"}, 400, `error="invalid_request"`, "invalid_request"},
		{"quote-injection", a, AnyAuthenticated(), []string{`Bearer good", error="x`}, 400, `error="invalid_request"`, "invalid_request"},
		{"missing-scope", a, RequireScopes("orders:write"), []string{"Bearer good"}, 403, `error="insufficient_scope", scope="orders:write"`, "insufficient_scope"},
		{"missing-role", a, RequireAnyRole("admin"), []string{"Bearer good"}, 403, "-", "forbidden"},
		{"wrong-tenant", a, RequireTenant("globex"), []string{"Bearer good"}, 403, "-", "forbidden"},
		{"right-tenant", a, RequireTenant("acme"), []string{"Bearer good"}, 204, "-", ""},
		{"unavailable", fakeAuthenticator{err: ErrUnavailable}, AnyAuthenticated(), []string{"Bearer x"}, 503, "-", "temporarily_unavailable"},
		{"all-of-nothing-refuses", a, All(), []string{"Bearer good"}, 403, "-", "forbidden"},
		{"any-of", a, AnyOf(RequireAnyRole("admin"), RequireScopes("orders:read")), []string{"Bearer good"}, 204, "-", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := Protect(c.auth, c.rule, ok)
			r := httptest.NewRequest("GET", "/orders?access_token=good", nil)
			for _, v := range c.headers {
				r.Header.Add("Authorization", v)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != c.status {
				t.Fatalf("status %d, want %d (%s)", w.Code, c.status, w.Body)
			}
			got := w.Header().Get("WWW-Authenticate")
			if c.challenge == "-" && got != "" || c.challenge != "-" && !strings.Contains(got, c.challenge) {
				t.Fatalf("WWW-Authenticate %q, want %q", got, c.challenge)
			}
			if c.code != "" {
				var body map[string]string
				if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || body["error"] != c.code {
					t.Fatalf("body %s, want error %q", w.Body, c.code)
				}
				if strings.Contains(w.Body.String(), "good") || strings.Contains(got, "good") {
					t.Fatal("token echoed")
				}
			}
		})
	}
	t.Run("query-token-ignored", func(t *testing.T) {
		w := httptest.NewRecorder()
		Protect(a, AnyAuthenticated(), ok).ServeHTTP(w, httptest.NewRequest("GET", "/?access_token=good", nil))
		if w.Code != 401 {
			t.Fatalf("status %d", w.Code)
		}
	})
}

func TestRequireWithoutClaimsRefuses(t *testing.T) {
	w := httptest.NewRecorder()
	Require(AnyAuthenticated(), http.HandlerFunc(func(http.ResponseWriter, *http.Request) { t.Fatal("reached") })).
		ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
	if w.Code != 401 {
		t.Fatalf("status %d", w.Code)
	}
}

func TestMiddlewareRequiresArguments(t *testing.T) {
	for name, f := range map[string]func(){
		"nil-authenticator": func() { Middleware(nil, AnyAuthenticated()) },
		"nil-rule":          func() { Middleware(fakeAuthenticator{}, nil) },
		"require-nil-rule":  func() { Require(nil, http.NotFoundHandler()) },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatal("no panic")
				}
			}()
			f()
		})
	}
}

// TestClientCredentialsTokenIsNotAUser: a client-credentials token whose
// client id happens to equal a user id is never an end user (JWT-C04).
func TestClientCredentialsTokenIsNotAUser(t *testing.T) {
	c := &Claims{Subject: "usr_alice", ClientID: "usr_alice"}
	if c.EndUser() {
		t.Fatal("client token treated as a user")
	}
	if err := RequireEndUser().Check(c); !errors.Is(err, ErrForbidden) {
		t.Fatalf("RequireEndUser = %v", err)
	}
}

func FuzzBearerToken(f *testing.F) {
	for _, s := range []string{"Bearer abc", "bearer a.b.c", "Bearer ", "Basic x", "Bearer a==", "Bearer =a", "Bearer a b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		h := http.Header{}
		h.Set("Authorization", v)
		tok, err := BearerToken(h)
		if err == nil && (tok == "" || strings.ContainsAny(tok, " \t\r\n\",\\")) {
			t.Fatalf("accepted %q", tok)
		}
	})
}
