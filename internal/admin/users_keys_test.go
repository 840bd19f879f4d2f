package admin_test

import (
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/gatehouse/gatehouse/internal/admin"
)

func (e *env) createUser(body string) admin.UserResponse {
	e.t.Helper()
	w := e.do("POST", "/admin/v1/users", body)
	wantStatus(e.t, w, 201)
	return decodeInto[admin.UserResponse](e.t, w)
}

func TestUsers(t *testing.T) {
	e := newEnv(t)
	u := e.createUser(`{"username":"Alice.Smith","email":"alice@example.com","name":"Alice","password":"correct horse battery","roles":["admin"],"groups":["eng"],"tenant":"acme"}`)
	if u.Username != "alice.smith" || !u.HasPassword || u.ID == "" || u.Tenant != "acme" {
		t.Fatalf("created user = %+v", u)
	}
	stored := e.user(u.ID)
	if !strings.HasPrefix(stored.PasswordHash, "$argon2id$") {
		t.Fatalf("stored hash = %q", stored.PasswordHash)
	}
	for _, path := range []string{"/admin/v1/users", "/admin/v1/users/" + u.ID} {
		w := e.do("GET", path, "")
		wantStatus(t, w, 200)
		for _, leak := range []string{stored.PasswordHash, "$argon2id", "password_hash", "correct horse"} {
			if strings.Contains(w.Body.String(), leak) {
				t.Errorf("GET %s leaks %q", path, leak)
			}
		}
	}
	if strings.Contains(e.logs.String(), "correct horse") {
		t.Error("password reached the logs")
	}

	t.Run("SE-03/disable-ends-sessions", func(t *testing.T) {
		w := e.do("PATCH", "/admin/v1/users/"+u.ID, `{"disabled":true}`)
		wantStatus(t, w, 200)
		if !decodeInto[admin.UserResponse](t, w).Disabled || !e.user(u.ID).Disabled {
			t.Fatal("user not disabled")
		}
		if e.store.EndedFor(u.ID) != 1 {
			t.Errorf("sessions ended %d times, want 1", e.store.EndedFor(u.ID))
		}
		if e.user(u.ID).PasswordHash != stored.PasswordHash || e.user(u.ID).Email != stored.Email {
			t.Error("patch changed fields it did not name")
		}
		wantStatus(t, e.do("PATCH", "/admin/v1/users/"+u.ID, `{"disabled":false}`), 200)
		if e.user(u.ID).Disabled {
			t.Error("user not re-enabled")
		}
	})
	t.Run("OA-T/set-password-ends-sessions", func(t *testing.T) {
		before := e.store.EndedFor(u.ID)
		wantStatus(t, e.do("POST", "/admin/v1/users/"+u.ID+"/password", `{"password":"another long passphrase"}`), 204)
		if e.user(u.ID).PasswordHash == stored.PasswordHash {
			t.Error("password hash unchanged")
		}
		if e.store.EndedFor(u.ID) != before+1 {
			t.Error("sessions not ended on password change")
		}
	})
	t.Run("PW-01/policy", func(t *testing.T) {
		w := e.do("POST", "/admin/v1/users/"+u.ID+"/password", `{"password":"short"}`)
		wantStatus(t, w, 400)
		if !strings.Contains(decodeInto[admin.ErrorResponse](t, w).ErrorDescription, "at least 8") {
			t.Error(w.Body.String())
		}
	})
	t.Run("PW-01/length-cap", func(t *testing.T) {
		wantStatus(t, e.do("POST", "/admin/v1/users/"+u.ID+"/password", `{"password":"`+strings.Repeat("a", admin.MaxPassword+1)+`"}`), 400)
	})
	t.Run("empty-password", func(t *testing.T) {
		wantStatus(t, e.do("POST", "/admin/v1/users/"+u.ID+"/password", `{"password":""}`), 400)
		wantStatus(t, e.do("POST", "/admin/v1/users/"+u.ID+"/password", `{}`), 400)
	})
	t.Run("password-not-patchable", func(t *testing.T) {
		wantStatus(t, e.do("PATCH", "/admin/v1/users/"+u.ID, `{"password":"x-long-enough"}`), 400)
	})
	t.Run("duplicate-username", func(t *testing.T) {
		wantStatus(t, e.do("POST", "/admin/v1/users", `{"username":"ALICE.SMITH"}`), 409)
	})
	t.Run("password-optional", func(t *testing.T) {
		v := e.createUser(`{"username":"bob"}`)
		if v.HasPassword || e.user(v.ID).PasswordHash != "" {
			t.Error("user without password has a hash")
		}
	})
	t.Run("unknown", func(t *testing.T) {
		wantStatus(t, e.do("GET", "/admin/v1/users/nobody", ""), 404)
		wantStatus(t, e.do("PATCH", "/admin/v1/users/nobody", `{"disabled":true}`), 404)
		wantStatus(t, e.do("POST", "/admin/v1/users/nobody/password", `{"password":"long enough pw"}`), 404)
	})
	t.Run("delete", func(t *testing.T) {
		wantStatus(t, e.do("DELETE", "/admin/v1/users/"+u.ID, ""), 204)
		wantStatus(t, e.do("GET", "/admin/v1/users/"+u.ID, ""), 404)
	})
}

func TestUserValidation(t *testing.T) {
	tests := []struct {
		name, body, want string
	}{
		{"username-empty", `{"username":""}`, "username"},
		{"username-space", `{"username":"a b"}`, "username"},
		{"username-slash", `{"username":"../admin"}`, "username"},
		{"username-too-long", `{"username":"` + strings.Repeat("a", 65) + `"}`, "username"},
		{"username-unicode", `{"username":"ａdmin"}`, "username"},
		{"username-kelvin-sign-folds-to-ascii", `{"username":"\u212Aelvin"}`, "username"},
		{"username-dotless-i", `{"username":"adm\u0130n"}`, "username"},
		{"email-display-name", `{"username":"a","email":"Eve <eve@example.com>"}`, "email"},
		{"email-no-at", `{"username":"a","email":"eve"}`, "email"},
		{"name-control", `{"username":"a","name":"a\u0007"}`, "name"},
		{"role-space", `{"username":"a","roles":["super admin"]}`, "roles"},
		{"group-empty", `{"username":"a","groups":[""]}`, "groups"},
		{"tenant-bad", `{"username":"a","tenant":"a/b"}`, "tenant"},
		{"PW-01/short-password", `{"username":"a","password":"short"}`, "password"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			w := e.do("POST", "/admin/v1/users", tc.body)
			wantStatus(t, w, 400)
			if d := decodeInto[admin.ErrorResponse](t, w).ErrorDescription; !strings.Contains(d, tc.want) {
				t.Errorf("error_description %q lacks %q", d, tc.want)
			}
			if e.nUsers() != 0 {
				t.Error("invalid user stored")
			}
		})
	}
}

func TestKeys(t *testing.T) {
	e := newEnv(t)
	w := e.do("GET", "/admin/v1/keys", "")
	wantStatus(t, w, 200)
	if strings.TrimSpace(w.Body.String()) != `{"keys":[]}` {
		t.Errorf("empty list = %s", w.Body.String())
	}
	w = e.do("POST", "/admin/v1/keys/rotate", "")
	wantStatus(t, w, 200)
	k := decodeInto[admin.KeyInfo](t, w)
	if k.ID != "k1" || k.State != "active" {
		t.Fatalf("rotated = %+v", k)
	}
	for _, zero := range []string{"retired_at", "expires_at", "revoked_at"} {
		if strings.Contains(w.Body.String(), zero) {
			t.Errorf("zero time %s not omitted: %s", zero, w.Body.String())
		}
	}
	wantStatus(t, e.do("POST", "/admin/v1/keys/rotate", ""), 200)
	wantStatus(t, e.do("POST", "/admin/v1/keys/k1/revoke", ""), 204)
	w = e.do("GET", "/admin/v1/keys", "")
	l := decodeInto[admin.KeyList](t, w)
	if len(l.Keys) != 2 || l.Keys[0].State != "revoked" || l.Keys[0].RevokedAt.IsZero() {
		t.Errorf("keys = %+v", l.Keys)
	}
	t.Run("unknown-kid", func(t *testing.T) {
		wantStatus(t, e.do("POST", "/admin/v1/keys/nope/revoke", ""), 404)
	})
	t.Run("JWT-B04/kid-path-traversal", func(t *testing.T) {
		// The mux cleans the path and redirects; the kid never reaches Revoke.
		w := e.do("POST", "/admin/v1/keys/..%2F..%2Fetc/revoke", "")
		if w.Code == 204 {
			t.Fatal("traversal kid revoked something")
		}
	})
}

// TestOpenAPIMatchesRoutes checks that every route the handler serves is in
// the document, with the same methods, and nothing else.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	var doc struct {
		OpenAPI string                    `yaml:"openapi"`
		Paths   map[string]map[string]any `yaml:"paths"`
	}
	if err := yaml.Unmarshal(admin.OpenAPI(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.OpenAPI != "3.1.0" {
		t.Errorf("openapi = %q", doc.OpenAPI)
	}
	var inDoc, served []string
	for path, ops := range doc.Paths {
		for m, op := range ops {
			if m == "parameters" {
				continue
			}
			inDoc = append(inDoc, strings.ToUpper(m)+" "+path)
			if o, ok := op.(map[string]any); !ok || o["responses"] == nil {
				t.Errorf("%s %s has no responses", m, path)
			}
		}
	}
	served = append(admin.RouteList(), "GET "+admin.OpenAPIPath)
	slices.Sort(inDoc)
	slices.Sort(served)
	if !slices.Equal(inDoc, served) {
		t.Errorf("document and handler disagree:\n doc:    %v\n served: %v", inDoc, served)
	}
	// Every $ref resolves.
	var raw map[string]any
	if err := yaml.Unmarshal(admin.OpenAPI(), &raw); err != nil {
		t.Fatal(err)
	}
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if ref, ok := x.(string); ok && k == "$ref" && !resolves(raw, ref) {
					t.Errorf("dangling $ref %q", ref)
				}
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(raw)
	// Each served route must actually be routed (not 404/405) by the handler.
	e := newEnv(t)
	for _, rt := range admin.RouteList() {
		method, path, _ := strings.Cut(rt, " ")
		path = strings.NewReplacer("{id}", "x", "{kid}", "x").Replace(path)
		w := e.do(method, path, "")
		if w.Code == 405 || (w.Code == 404 && decodeInto[admin.ErrorResponse](t, w).ErrorDescription == "no such endpoint") {
			t.Errorf("%s %s not routed: %d", method, path, w.Code)
		}
	}
}

// resolves reports whether a local JSON pointer such as
// "#/components/schemas/Client" names a node of doc.
func resolves(doc map[string]any, ref string) bool {
	p, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return false
	}
	var cur any = doc
	for _, seg := range strings.Split(p, "/") {
		m, ok := cur.(map[string]any)
		if !ok {
			return false
		}
		if cur, ok = m[seg]; !ok {
			return false
		}
	}
	return true
}
