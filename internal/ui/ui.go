// Package ui renders Gatehouse's server-side pages: sign-in, consent,
// sign-out, messages and errors.
//
// Pages are html/template files embedded in the binary, parsed once by New,
// and styled by one embedded stylesheet; there is no JavaScript. Every value
// a page shows is escaped by html/template, so client names, usernames and
// error text coming from a request can never inject markup (checklist OA-H).
// SecurityHeaders adds the headers every page needs: a strict CSP, frame
// denial, no referrer and no caching.
//
// Forms post the field names the handlers read: csrf and auth_request on
// every form; username and password on sign-in; decision=allow|deny on
// consent; decision=logout|cancel on sign-out.
package ui

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"strconv"
	"time"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static/gatehouse.css
var stylesheet []byte

// StylesheetPath is where StaticHandler serves the stylesheet.
const StylesheetPath = "/static/gatehouse.css"

// Page data. Every string is escaped when rendered.
type (
	// LoginPage is the sign-in form.
	LoginPage struct {
		Action        string // form target, e.g. "/login"
		CSRF          string
		AuthRequestID string
		ClientName    string // shown as "to continue to <ClientName>"
		Username      string // refilled after a failed attempt
		Error         string // shown in #error, e.g. "Wrong username or password."
	}

	// ConsentPage asks the user to allow a client the scopes it requested.
	ConsentPage struct {
		Action, CSRF, AuthRequestID, ClientName string
		Scopes                                  []Scope
		Audience                                []string
	}

	// Scope is one requested scope with a human description.
	Scope struct{ Name, Description string }

	// LogoutPage asks the user to confirm signing out.
	LogoutPage struct {
		Action, CSRF string
		ClientName   string
		Hidden       []Hidden // carried through, e.g. post_logout_redirect_uri, state, client_id
	}

	// Hidden is a hidden form input.
	Hidden struct{ Name, Value string }

	// MessagePage shows a short notice, e.g. "You are signed out".
	MessagePage struct{ Title, Message string }

	// ErrorPage shows an error; RequestID lets support find the logs.
	ErrorPage struct {
		Title, Message string
		RequestID      string
	}
)

// Renderer renders the embedded pages. It is safe for concurrent use.
type Renderer struct {
	pages map[string]*template.Template
	etag  string
}

// New parses the embedded templates.
func New() (*Renderer, error) {
	// One template set per page: layout.html plus the page's file.
	pageNames := []string{"login", "consent", "logout", "message", "error"}
	sum := sha256.Sum256(stylesheet)
	version := hex.EncodeToString(sum[:6])
	funcs := template.FuncMap{
		// The version makes a long cache lifetime safe across releases.
		"stylesheet": func() string { return StylesheetPath + "?v=" + version },
	}
	r := &Renderer{
		pages: make(map[string]*template.Template, len(pageNames)),
		etag:  `"` + version + `"`,
	}
	for _, name := range pageNames {
		t, err := template.New(name).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("ui: parse %s: %w", name, err)
		}
		r.pages[name] = t
	}
	return r, nil
}

// Login renders the sign-in page.
func (r *Renderer) Login(w http.ResponseWriter, status int, p LoginPage) {
	r.render(w, status, "login", p)
}

// Consent renders the consent page.
func (r *Renderer) Consent(w http.ResponseWriter, status int, p ConsentPage) {
	r.render(w, status, "consent", p)
}

// Logout renders the sign-out confirmation page.
func (r *Renderer) Logout(w http.ResponseWriter, status int, p LogoutPage) {
	r.render(w, status, "logout", p)
}

// Message renders a notice page.
func (r *Renderer) Message(w http.ResponseWriter, status int, p MessagePage) {
	r.render(w, status, "message", p)
}

// Error renders an error page.
func (r *Renderer) Error(w http.ResponseWriter, status int, p ErrorPage) {
	r.render(w, status, "error", p)
}

// render executes a page into a buffer first, so a template failure yields
// a clean 500 instead of half a page under the wrong status.
func (r *Renderer) render(w http.ResponseWriter, status int, name string, data any) {
	var buf bytes.Buffer
	if err := r.pages[name].ExecuteTemplate(&buf, "layout", data); err != nil {
		slog.Default().Error("ui: render page", "page", name, "err", err)
		http.Error(w, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// SecurityHeaders sets the headers every Gatehouse page needs (OA-H) and
// calls next. The CSP has no form-action directive on purpose: Chromium
// applies form-action to the redirect that follows a form post, which would
// block the redirect back to the client.
func SecurityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; frame-ancestors 'none'")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Cache-Control", "no-store")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		next.ServeHTTP(w, req)
	})
}

// StaticHandler serves the stylesheet at StylesheetPath; mount it as
// mux.Handle("/static/", r.StaticHandler()) (http.StripPrefix("/static/", ...)
// works too). Anything else under /static/ is a 404. Pages link the
// stylesheet with a content version, so it may be cached for a year.
func (r *Renderer) StaticHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		switch req.URL.Path {
		case StylesheetPath, "gatehouse.css", "/gatehouse.css": // with or without http.StripPrefix
		default:
			http.NotFound(w, req)
			return
		}
		if req.Method != http.MethodGet && req.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, http.StatusText(http.StatusMethodNotAllowed), http.StatusMethodNotAllowed)
			return
		}
		h := w.Header()
		h.Set("Content-Type", "text/css; charset=utf-8")
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
		h.Set("ETag", r.etag)
		http.ServeContent(w, req, "gatehouse.css", time.Time{}, bytes.NewReader(stylesheet))
	})
}
