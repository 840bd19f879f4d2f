package ui

import (
	"flag"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

func newRenderer(t *testing.T) *Renderer {
	t.Helper()
	r, err := New()
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return r
}

// tag returns the start tag carrying id="<id>", or fails the test.
func tag(t *testing.T, body, id string) string {
	t.Helper()
	m := regexp.MustCompile(`<[a-z]+\b[^>]*\sid="`+regexp.QuoteMeta(id)+`"[^>]*>`).FindAllString(body, -1)
	if len(m) != 1 {
		t.Fatalf("found %d elements with id=%q, want 1 in:\n%s", len(m), id, body)
	}
	return m[0]
}

// hasAttrs fails unless tag contains every attribute, written exactly.
func hasAttrs(t *testing.T, tag string, attrs ...string) {
	t.Helper()
	for _, a := range attrs {
		if !strings.Contains(tag, " "+a) {
			t.Errorf("%s lacks %s", tag, a)
		}
	}
}

func TestPages(t *testing.T) {
	r := newRenderer(t)
	tests := []struct {
		name   string
		render func(w http.ResponseWriter)
		check  func(t *testing.T, body string)
	}{
		{"login", func(w http.ResponseWriter) {
			r.Login(w, http.StatusOK, LoginPage{Action: "/login", CSRF: "csrf-token", AuthRequestID: "ar-1", ClientName: "Acme"})
		}, func(t *testing.T, body string) {
			hasAttrs(t, tag(t, body, "login-form"), `method="post"`, `action="/login"`)
			hasAttrs(t, tag(t, body, "username"), `name="username"`, `type="text"`, `autocomplete="username"`, `required`, `autofocus`)
			hasAttrs(t, tag(t, body, "password"), `name="password"`, `type="password"`, `autocomplete="current-password"`, `required`)
			hasAttrs(t, tag(t, body, "submit"), `type="submit"`)
			mustContain(t, body, `<input type="hidden" name="csrf" value="csrf-token">`,
				`<input type="hidden" name="auth_request" value="ar-1">`, `Acme`)
			if strings.Contains(body, `id="error"`) {
				t.Error("error container shown without an error")
			}
		}},
		{"login/after-failure", func(w http.ResponseWriter) {
			r.Login(w, http.StatusUnauthorized, LoginPage{Action: "/login", Username: "alice", Error: "Wrong username or password."})
		}, func(t *testing.T, body string) {
			hasAttrs(t, tag(t, body, "error"), `role="alert"`)
			hasAttrs(t, tag(t, body, "username"), `value="alice"`, `aria-describedby="error"`)
			// With the username refilled, focus goes to the password.
			hasAttrs(t, tag(t, body, "password"), `autofocus`)
			if strings.Contains(tag(t, body, "username"), "autofocus") {
				t.Error("two autofocus fields")
			}
		}},
		{"consent", func(w http.ResponseWriter) {
			r.Consent(w, http.StatusOK, ConsentPage{Action: "/consent", CSRF: "c", AuthRequestID: "ar-2", ClientName: "Acme",
				Scopes: []Scope{{"openid", "Sign you in"}, {"email", "See your email address"}}, Audience: []string{"https://api.example"}})
		}, func(t *testing.T, body string) {
			hasAttrs(t, tag(t, body, "consent-form"), `method="post"`, `action="/consent"`)
			hasAttrs(t, tag(t, body, "allow"), `type="submit"`, `name="decision"`, `value="allow"`)
			hasAttrs(t, tag(t, body, "deny"), `type="submit"`, `name="decision"`, `value="deny"`)
			mustContain(t, body, `name="csrf" value="c"`, `name="auth_request" value="ar-2"`,
				"openid", "See your email address", "https://api.example")
		}},
		{"logout", func(w http.ResponseWriter) {
			r.Logout(w, http.StatusOK, LogoutPage{Action: "/logout", CSRF: "c", ClientName: "Acme", Hidden: []Hidden{
				{"post_logout_redirect_uri", "https://app.example/bye?x=1&y=2"}, {"state", "s1"}, {"client_id", "acme"}}})
		}, func(t *testing.T, body string) {
			hasAttrs(t, tag(t, body, "logout-form"), `method="post"`, `action="/logout"`)
			hasAttrs(t, tag(t, body, "logout"), `name="decision"`, `value="logout"`)
			hasAttrs(t, tag(t, body, "cancel"), `name="decision"`, `value="cancel"`)
			mustContain(t, body, "Sign out of Gatehouse?", `name="csrf" value="c"`,
				`name="post_logout_redirect_uri" value="https://app.example/bye?x=1&amp;y=2"`,
				`name="state" value="s1"`, `name="client_id" value="acme"`)
		}},
		{"message", func(w http.ResponseWriter) {
			r.Message(w, http.StatusOK, MessagePage{Title: "You are signed out", Message: "You can close this window."})
		}, func(t *testing.T, body string) {
			mustContain(t, body, "<h1>You are signed out</h1>", "You can close this window.", "<title>You are signed out · Gatehouse</title>")
		}},
		{"error", func(w http.ResponseWriter) {
			r.Error(w, http.StatusBadRequest, ErrorPage{Title: "Something went wrong", Message: "The request was invalid.", RequestID: "req-42"})
		}, func(t *testing.T, body string) {
			hasAttrs(t, tag(t, body, "error"), `role="alert"`)
			mustContain(t, body, "The request was invalid.", "req-42")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			tt.render(rec)
			if ct := rec.Header().Get("Content-Type"); ct != "text/html; charset=utf-8" {
				t.Errorf("Content-Type = %q", ct)
			}
			body := rec.Body.String()
			// Accessibility and layout common to every page.
			mustContain(t, body, `<html lang="en">`, `<meta name="viewport" content="width=device-width, initial-scale=1">`,
				`<main class="card">`, `<link rel="stylesheet" href="/static/gatehouse.css?v=`)
			if strings.Contains(strings.ToLower(body), "<script") {
				t.Error("page contains a script element")
			}
			labelsTied(t, body)
			tt.check(t, body)
		})
	}
}

func TestStatus(t *testing.T) {
	r := newRenderer(t)
	rec := httptest.NewRecorder()
	r.Login(rec, http.StatusUnauthorized, LoginPage{})
	if rec.Code != http.StatusUnauthorized {
		t.Fatalf("status = %d, want 401", rec.Code)
	}
}

// labelsTied checks that every visible input has a <label for> naming it.
func labelsTied(t *testing.T, body string) {
	t.Helper()
	for _, in := range regexp.MustCompile(`<input\b[^>]*>`).FindAllString(body, -1) {
		if strings.Contains(in, `type="hidden"`) {
			continue
		}
		id := regexp.MustCompile(`\sid="([^"]+)"`).FindStringSubmatch(in)
		if id == nil {
			t.Errorf("input without id: %s", in)
			continue
		}
		if !strings.Contains(body, `<label for="`+id[1]+`">`) {
			t.Errorf("input %q has no label", id[1])
		}
	}
}

func mustContain(t *testing.T, body string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(body, w) {
			t.Errorf("body lacks %q", w)
		}
	}
}

func TestOAHEscaping(t *testing.T) {
	r := newRenderer(t)
	const evil = `"><script>alert(1)</script><img src=x onerror=alert(1)>`
	pages := []struct {
		name   string
		render func(w http.ResponseWriter)
	}{
		{"OA-H/login", func(w http.ResponseWriter) {
			r.Login(w, 200, LoginPage{Action: evil, CSRF: evil, AuthRequestID: evil, ClientName: evil, Username: evil, Error: evil})
		}},
		{"OA-H/consent", func(w http.ResponseWriter) {
			r.Consent(w, 200, ConsentPage{Action: evil, CSRF: evil, AuthRequestID: evil, ClientName: evil,
				Scopes: []Scope{{evil, evil}}, Audience: []string{evil}})
		}},
		{"OA-H/logout", func(w http.ResponseWriter) {
			r.Logout(w, 200, LogoutPage{Action: evil, CSRF: evil, ClientName: evil, Hidden: []Hidden{{evil, evil}}})
		}},
		{"OA-H/message", func(w http.ResponseWriter) { r.Message(w, 200, MessagePage{Title: evil, Message: evil}) }},
		{"OA-H/error", func(w http.ResponseWriter) { r.Error(w, 400, ErrorPage{Title: evil, Message: evil, RequestID: evil}) }},
	}
	for _, p := range pages {
		t.Run(p.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			p.render(rec)
			body := rec.Body.String()
			for _, bad := range []string{"<script", "<img", `" onerror`, `onerror=alert(1)>`} {
				if strings.Contains(body, bad) {
					t.Errorf("unescaped %q in:\n%s", bad, body)
				}
			}
			if !strings.Contains(body, "&lt;script&gt;") && !strings.Contains(body, "%3cscript%3e") {
				t.Errorf("escaped payload missing from:\n%s", body)
			}
		})
	}
	t.Run("OA-H/javascript-action", func(t *testing.T) {
		rec := httptest.NewRecorder()
		r.Login(rec, 200, LoginPage{Action: "javascript:alert(1)"})
		if strings.Contains(rec.Body.String(), "javascript:") {
			t.Error("javascript: URL rendered as form action")
		}
	})
}

func TestOAHSecurityHeaders(t *testing.T) {
	r := newRenderer(t)
	h := SecurityHeaders(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		r.Login(w, http.StatusOK, LoginPage{})
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/login", nil))
	want := map[string]string{
		"Content-Security-Policy":    "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; frame-ancestors 'none'",
		"X-Frame-Options":            "DENY",
		"Referrer-Policy":            "no-referrer",
		"X-Content-Type-Options":     "nosniff",
		"Cache-Control":              "no-store",
		"Cross-Origin-Opener-Policy": "same-origin",
	}
	for k, v := range want {
		t.Run("OA-H/"+k, func(t *testing.T) {
			if got := rec.Header().Get(k); got != v {
				t.Errorf("%s = %q, want %q", k, got, v)
			}
		})
	}
	t.Run("OA-H/no-form-action", func(t *testing.T) {
		// form-action would break the redirect back to the client in Chromium.
		if strings.Contains(rec.Header().Get("Content-Security-Policy"), "form-action") {
			t.Error("CSP has form-action")
		}
	})
}

func TestStaticHandler(t *testing.T) {
	r := newRenderer(t)
	mux := http.NewServeMux()
	mux.Handle("/static/", SecurityHeaders(r.StaticHandler()))
	stripped := http.StripPrefix("/static/", r.StaticHandler())
	tests := []struct {
		name, method, path string
		h                  http.Handler
		want               int
	}{
		{"css", http.MethodGet, "/static/gatehouse.css", mux, http.StatusOK},
		{"css-versioned", http.MethodGet, "/static/gatehouse.css?v=abc", mux, http.StatusOK},
		{"head", http.MethodHead, "/static/gatehouse.css", mux, http.StatusOK},
		{"strip-prefix", http.MethodGet, "/static/gatehouse.css", stripped, http.StatusOK},
		{"post", http.MethodPost, "/static/gatehouse.css", mux, http.StatusMethodNotAllowed},
		{"other-file", http.MethodGet, "/static/ui.go", mux, http.StatusNotFound},
		{"directory", http.MethodGet, "/static/", mux, http.StatusNotFound},
		{"traversal", http.MethodGet, "/static/../templates/login.html", r.StaticHandler(), http.StatusNotFound},
		{"traversal-stripped", http.MethodGet, "/static/../gatehouse.css/../templates/login.html", stripped, http.StatusNotFound},
		{"template", http.MethodGet, "/static/templates/login.html", mux, http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			tt.h.ServeHTTP(rec, httptest.NewRequest(tt.method, tt.path, nil))
			if rec.Code != tt.want {
				t.Fatalf("%s %s = %d, want %d", tt.method, tt.path, rec.Code, tt.want)
			}
			if tt.want != http.StatusOK {
				return
			}
			if ct := rec.Header().Get("Content-Type"); ct != "text/css; charset=utf-8" {
				t.Errorf("Content-Type = %q", ct)
			}
			if cc := rec.Header().Get("Cache-Control"); !strings.Contains(cc, "max-age=31536000") {
				t.Errorf("Cache-Control = %q, want a long max-age", cc)
			}
			if tt.method == http.MethodGet && !strings.Contains(rec.Body.String(), ":focus") {
				t.Error("stylesheet body missing")
			}
		})
	}
}

func TestGolden(t *testing.T) {
	r := newRenderer(t)
	pages := map[string]func(w http.ResponseWriter){
		"login": func(w http.ResponseWriter) {
			r.Login(w, 200, LoginPage{Action: "/login", CSRF: "csrf-token", AuthRequestID: "ar-1", ClientName: "Acme Notes"})
		},
		"login-error": func(w http.ResponseWriter) {
			r.Login(w, 401, LoginPage{Action: "/login", CSRF: "csrf-token", AuthRequestID: "ar-1", ClientName: "Acme Notes",
				Username: "alice", Error: "Wrong username or password."})
		},
		"consent": func(w http.ResponseWriter) {
			r.Consent(w, 200, ConsentPage{Action: "/consent", CSRF: "csrf-token", AuthRequestID: "ar-1", ClientName: "Acme Notes",
				Scopes: []Scope{{"openid", "Sign you in"}, {"profile", "See your name"}}, Audience: []string{"https://notes.example"}})
		},
	}
	for name, render := range pages {
		t.Run(name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			render(rec)
			path := filepath.Join("testdata", name+".golden")
			if *update {
				if err := os.WriteFile(path, rec.Body.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if got := rec.Body.String(); got != string(want) {
				t.Errorf("%s differs from %s (run go test -update if intended):\n%s", name, path, got)
			}
		})
	}
}
