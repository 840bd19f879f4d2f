package devdemo

import (
	"bytes"
	"html/template"
	"net/http"
	"time"
)

// securityHeaders sets the headers every response carries (OA-H): no script,
// no framing, no referrer, no caching of pages that show tokens.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

const layout = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Gatehouse demo app</title>
<style>
body{font-family:system-ui,sans-serif;max-width:48rem;margin:2rem auto;padding:0 1rem;color:#222}
dt{font-weight:600}dd{margin:0 0 .5rem 1rem;font-family:monospace}
pre{background:#f4f4f4;padding:.75rem;overflow:auto}
form{display:inline-block;margin-right:.5rem}
.error{color:#a00}.ok{color:#070}
</style>
</head>
<body>
<h1>Gatehouse demo app</h1>
{{block "content" .}}{{end}}
</body>
</html>
`

const homeContent = `{{define "content"}}
{{- if .Error}}<p class="error" id="error">{{.Error}}</p>{{end}}
{{- if not .SignedIn}}
<p>A relying party for trying out the Gatehouse IdP at <code>{{.Issuer}}</code>.</p>
<p><a id="signin" href="/login">Sign in with Gatehouse</a></p>
{{- else}}
<p>Signed in.</p>
{{- if .Refreshed}}<p class="ok" id="refreshed">Tokens refreshed.</p>{{end}}
<h2>ID token claims</h2>
<dl>
<dt>sub</dt><dd id="claim-sub">{{.Claims.Sub}}</dd>
<dt>preferred_username</dt><dd id="claim-preferred_username">{{.Claims.PreferredUsername}}</dd>
<dt>email</dt><dd id="claim-email">{{.Claims.Email}}</dd>
<dt>name</dt><dd id="claim-name">{{.Claims.Name}}</dd>
</dl>
<h2>Tokens</h2>
<dl>
<dt>scope</dt><dd id="scope">{{.Scope}}</dd>
<dt>access token expires</dt><dd id="expiry">{{.Expiry}}</dd>
<dt>access token</dt><dd id="access-token">{{.AccessToken}}</dd>
<dt>refresh token</dt><dd id="refresh-token">{{.RefreshToken}}</dd>
<dt>ID token</dt><dd id="id-token">{{.IDToken}}</dd>
</dl>
<form method="post" action="/refresh"><input type="hidden" name="csrf" value="{{.CSRF}}"><button id="refresh" type="submit">Refresh tokens</button></form>
<form method="post" action="/userinfo"><input type="hidden" name="csrf" value="{{.CSRF}}"><button id="call-userinfo" type="submit">Call userinfo</button></form>
<form method="post" action="/logout"><input type="hidden" name="csrf" value="{{.CSRF}}"><button id="signout" type="submit">Sign out</button></form>
{{- if .Userinfo}}
<h2>userinfo</h2>
<pre id="userinfo">{{.Userinfo}}</pre>
{{- end}}
{{- end}}
{{end}}`

const errorContent = `{{define "content"}}
<p class="error" id="error">{{.Message}}</p>
<p><a href="/">Back to the demo app</a></p>
{{end}}`

type pages struct {
	home, err *template.Template
}

func newPages() *pages {
	base := template.Must(template.New("layout").Parse(layout))
	return &pages{
		home: template.Must(template.Must(base.Clone()).Parse(homeContent)),
		err:  template.Must(template.Must(base.Clone()).Parse(errorContent)),
	}
}

// homeData is what the home page shows. Token fields are already truncated.
type homeData struct {
	Issuer                             string
	SignedIn                           bool
	Error                              string
	Refreshed                          bool
	Claims                             idClaims
	Scope, Expiry                      string
	AccessToken, RefreshToken, IDToken string
	CSRF                               string
	Userinfo                           string
}

func (a *App) render(w http.ResponseWriter, status int, t *template.Template, data any) {
	var buf bytes.Buffer
	if err := t.Execute(&buf, data); err != nil {
		a.log.Error("devdemo: render page", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// fail shows an error page. msg is public and escaped by the template.
func (a *App) fail(w http.ResponseWriter, status int, msg string) {
	a.render(w, status, a.pages.err, struct{ Message string }{msg})
}

// truncate shows the first 16 bytes of a token followed by an ellipsis.
// Tokens are ASCII, so cutting bytes never splits a character that matters;
// the template escapes whatever is left.
func truncate(tok string) string {
	const n = 16
	if tok == "" {
		return "(none)"
	}
	if len(tok) <= n {
		return tok[:len(tok)/2] + "…"
	}
	return tok[:n] + "…"
}

func formatExpiry(t time.Time, now time.Time) string {
	if t.IsZero() {
		return "(not stated)"
	}
	return t.UTC().Format(time.RFC3339) + " (in " + t.Sub(now).Round(time.Second).String() + ")"
}
