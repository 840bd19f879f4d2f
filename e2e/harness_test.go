package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"html"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/app"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/password"
	"github.com/gatehouse/gatehouse/internal/storage"
	"github.com/gatehouse/gatehouse/internal/testutil/pgtest"
)

// Test fixtures.
const (
	webRedirect    = "https://client.example.com/cb"
	nativeRedirect = "http://127.0.0.1/cb"
	alicePassword  = "correct-horse-battery"
	apiAudience    = "https://api.example.com"
)

// clock is a settable test clock (real time plus an offset).
type clock struct{ offset atomic.Int64 }

func (c *clock) Now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *clock) Advance(d time.Duration) { c.offset.Add(int64(d)) }

// logBuffer collects every log line so tests can assert no secret leaks.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// Env is one running Gatehouse.
type Env struct {
	t       *testing.T
	App     *app.App
	Server  *httptest.Server
	Issuer  string
	Clock   *clock
	Logs    *logBuffer
	Secrets map[string]string // client id -> secret
	Store   storage.Store
	Config  config.Config
}

type backend struct {
	name string
	dsn  func(t *testing.T) (driver, dsn string)
}

var backends = []backend{
	{"sqlite", func(t *testing.T) (string, string) {
		return "sqlite", "file:" + filepath.Join(t.TempDir(), "gatehouse.db")
	}},
	{"postgres", func(t *testing.T) (string, string) { return "postgres", pgtest.SchemaDSN(t) }},
}

// forEachBackend runs fn against a fresh Gatehouse on every storage backend.
func forEachBackend(t *testing.T, fn func(t *testing.T, e *Env)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			driver, dsn := b.dsn(t)
			fn(t, newEnv(t, driver, dsn, nil))
		})
	}
}

func randB64(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

// newEnv starts Gatehouse on driver/dsn with test fixtures; tweak may adjust
// the configuration.
func newEnv(t *testing.T, driver, dsn string, tweak func(*config.Config)) *Env {
	t.Helper()
	return newEnvWith(t, driver, dsn, tweak, envOptions{})
}

// envOptions vary how a test Gatehouse is served.
type envOptions struct {
	localhost bool                            // issuer http://localhost:PORT instead of 127.0.0.1
	outer     func(http.Handler) http.Handler // wraps the whole server (e.g. a request log)
	inner     func(http.Handler) http.Handler // wraps the IdP handler (e.g. strips headers)
}

func newEnvWith(t *testing.T, driver, dsn string, tweak func(*config.Config), o envOptions) *Env {
	t.Helper()
	var handler atomic.Value
	var h http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		handler.Load().(http.Handler).ServeHTTP(w, r)
	})
	if o.outer != nil {
		h = o.outer(h)
	}
	srv := httptest.NewUnstartedServer(h)
	issuer := "http://" + srv.Listener.Addr().String()
	if o.localhost {
		issuer = "http://localhost:" + strconv.Itoa(srv.Listener.Addr().(*net.TCPAddr).Port)
	}
	cfg := config.Default()
	cfg.Issuer = issuer
	cfg.Storage = config.StorageConfig{Driver: driver, DSN: dsn}
	cfg.Secrets.KeyEncryptionKey = randB64(32)
	cfg.Secrets.Pepper = randB64(32)
	cfg.Admin.Listen = ""
	cfg.IDP.Signing.Algorithm = "ES256"
	if tweak != nil {
		tweak(&cfg)
	}
	if _, err := cfg.Validate(); err != nil {
		t.Fatalf("config: %v", err)
	}
	e := startApp(t, srv, &handler, cfg, o.inner)
	e.seed()
	return e
}

// startApp runs one Gatehouse replica with cfg behind srv.
func startApp(t *testing.T, srv *httptest.Server, handler *atomic.Value, cfg config.Config, wrap func(http.Handler) http.Handler) *Env {
	t.Helper()
	logs := &logBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	hasher, err := password.NewInsecureHasherForTests(password.TestParams)
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{}
	a, err := app.New(t.Context(), cfg, log, app.Options{Now: clk.Now, Passwords: hasher})
	if err != nil {
		t.Fatalf("app: %v", err)
	}
	h := a.IDP.Handler()
	if wrap != nil {
		h = wrap(h)
	}
	handler.Store(h)
	srv.Start()
	t.Cleanup(func() {
		srv.Close()
		a.Close()
	})
	e := &Env{t: t, App: a, Server: srv, Issuer: cfg.Issuer, Clock: clk, Logs: logs, Secrets: map[string]string{}, Store: a.Store, Config: cfg}
	t.Cleanup(e.assertNoSecretsLogged)
	return e
}

// replica starts a second Gatehouse on the same storage and secrets as e,
// behind its own listener but with the same issuer, as replicas behind a
// load balancer are.
func (e *Env) replica(t *testing.T) *Env {
	t.Helper()
	var handler atomic.Value
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		handler.Load().(http.Handler).ServeHTTP(w, r)
	}))
	cfg := e.Config
	r := startApp(t, srv, &handler, cfg, nil)
	r.Secrets = e.Secrets
	return r
}

func (e *Env) seed() {
	e.t.Helper()
	ctx := context.Background()
	now := time.Now()
	for _, u := range []struct {
		id, name string
		disabled bool
	}{{"usr_alice", "alice", false}, {"usr_bob", "bob", false}, {"usr_dora", "dora", true}} {
		h, err := e.App.Passwords.Hash(alicePassword)
		if err != nil {
			e.t.Fatal(err)
		}
		if err := e.Store.CreateUser(ctx, storage.User{ID: u.id, Username: u.name, Name: strings.ToUpper(u.name[:1]) + u.name[1:],
			Email: u.name + "@example.com", EmailVerified: true, PasswordHash: h, Roles: []string{"reader"},
			Groups: []string{"staff"}, Tenant: "acme", Disabled: u.disabled, CreatedAt: now, UpdatedAt: now}); err != nil {
			e.t.Fatal(err)
		}
	}
	clients := []storage.Client{
		{ID: "web", Name: "Web App", RedirectURIs: []string{webRedirect}, PostLogoutRedirectURIs: []string{"https://client.example.com/bye"},
			GrantTypes: []string{"authorization_code", "refresh_token"},
			Scopes:     []string{"openid", "profile", "email", "offline_access", "orders:read"}, Audiences: []string{apiAudience}},
		{ID: "firstparty", Name: "First Party", FirstParty: true, RedirectURIs: []string{webRedirect},
			PostLogoutRedirectURIs: []string{"https://client.example.com/bye"},
			GrantTypes:             []string{"authorization_code", "refresh_token"}, Scopes: []string{"openid", "profile", "email", "offline_access"}},
		{ID: "native", Name: "Native", Public: true, FirstParty: true, RedirectURIs: []string{nativeRedirect},
			GrantTypes: []string{"authorization_code", "refresh_token"}, Scopes: []string{"openid", "offline_access"}},
		{ID: "service", Name: "Service", GrantTypes: []string{"client_credentials"}, Scopes: []string{"orders:read", "orders:write"},
			Audiences: []string{apiAudience, "https://other.example.com"}},
		{ID: "api", Name: "Resource server", GrantTypes: []string{"client_credentials"}},
	}
	for _, c := range clients {
		if !c.Public {
			s := "ghs_" + randB64(32)
			s = strings.NewReplacer("+", "-", "/", "_", "=", "").Replace(s)
			e.Secrets[c.ID] = s
			c.SecretHash = e.App.Secrets.Sum(s)
		}
		c.CreatedAt, c.UpdatedAt = now, now
		if err := e.Store.CreateClient(ctx, c); err != nil {
			e.t.Fatal(err)
		}
	}
}

// remember records a secret value that must never appear in logs. It is
// safe for concurrent use (load tests mint tokens from many goroutines).
var (
	leakChecks   sync.Map // *Env -> *[]string
	leakChecksMu sync.Mutex
)

func (e *Env) remember(vals ...string) {
	v, _ := leakChecks.LoadOrStore(e, &[]string{})
	p := v.(*[]string)
	leakChecksMu.Lock()
	*p = append(*p, vals...)
	leakChecksMu.Unlock()
}

func (e *Env) assertNoSecretsLogged() {
	logs := e.Logs.String()
	check := []string{alicePassword}
	for _, s := range e.Secrets {
		check = append(check, s)
	}
	if v, ok := leakChecks.Load(e); ok {
		leakChecksMu.Lock()
		check = append(check, *v.(*[]string)...)
		leakChecksMu.Unlock()
	}
	for _, s := range check {
		if len(s) >= 8 && strings.Contains(logs, s) {
			e.t.Errorf("a secret or token appears in the logs")
		}
	}
	leakChecks.Delete(e)
}

// browser is a cookie-keeping HTTP client that follows redirects only on the
// IdP and stops at the first redirect to anywhere else (the client).
func (e *Env) browser() *http.Client {
	jar, _ := cookiejar.New(nil)
	iss, _ := url.Parse(e.Issuer)
	return &http.Client{Jar: jar, Timeout: 10 * time.Second, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if req.URL.Host != iss.Host {
			return http.ErrUseLastResponse
		}
		return nil
	}}
}

// noRedirect is a client that never follows redirects.
func noRedirect(c *http.Client) *http.Client {
	cc := *c
	cc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &cc
}

var inputRE = regexp.MustCompile(`<input[^>]*>`)
var attrRE = regexp.MustCompile(`([a-zA-Z_-]+)="([^"]*)"`)

// hidden returns the value of the named input in an HTML page.
func hidden(page, name string) string {
	for _, tag := range inputRE.FindAllString(page, -1) {
		attrs := map[string]string{}
		for _, m := range attrRE.FindAllStringSubmatch(tag, -1) {
			attrs[m[1]] = html.UnescapeString(m[2])
		}
		if attrs["name"] == name {
			return attrs["value"]
		}
	}
	return ""
}

func readBody(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// pkce returns a verifier and its S256 challenge.
func pkce() (string, string) {
	v := strings.TrimRight(base64.RawURLEncoding.EncodeToString([]byte(randB64(40))), "=")[:64]
	s := sha256.Sum256([]byte(v))
	return v, base64.RawURLEncoding.EncodeToString(s[:])
}

// authParams are the usual parameters of an authorization request.
func authParams(clientID, redirect, challenge string, extra ...string) url.Values {
	q := url.Values{"client_id": {clientID}, "redirect_uri": {redirect}, "response_type": {"code"},
		"scope": {"openid profile email offline_access"}, "state": {"st-" + randB64(6)}, "nonce": {"n-" + randB64(6)},
		"code_challenge": {challenge}, "code_challenge_method": {"S256"}}
	for i := 0; i+1 < len(extra); i += 2 {
		if extra[i+1] == "" {
			q.Del(extra[i])
			continue
		}
		q.Set(extra[i], extra[i+1])
	}
	return q
}

// authorize drives the pages like a browser: GET /authorize, log in when
// asked, consent when asked, and returns the redirect to the client.
func (e *Env) authorize(t *testing.T, b *http.Client, q url.Values, username, pw string) *url.URL {
	t.Helper()
	resp, err := b.Get(e.Issuer + "/authorize?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 4; i++ {
		if loc := resp.Header.Get("Location"); loc != "" && resp.StatusCode >= 300 && resp.StatusCode < 400 {
			resp.Body.Close()
			u, err := url.Parse(loc)
			if err != nil {
				t.Fatal(err)
			}
			return u
		}
		page := readBody(t, resp)
		switch {
		case strings.Contains(page, `id="login-form"`):
			resp, err = b.PostForm(e.Issuer+"/login", url.Values{"csrf": {hidden(page, "csrf")},
				"auth_request": {hidden(page, "auth_request")}, "username": {username}, "password": {pw}})
		case strings.Contains(page, `id="allow"`):
			resp, err = b.PostForm(e.Issuer+"/consent", url.Values{"csrf": {hidden(page, "csrf")},
				"auth_request": {hidden(page, "auth_request")}, "decision": {"allow"}})
		default:
			t.Fatalf("unexpected page (status %d): %.400s", resp.StatusCode, page)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	t.Fatal("too many pages")
	return nil
}

// postForm POSTs a form with optional basic auth and decodes the JSON answer.
func (e *Env) postForm(t *testing.T, path string, form url.Values, user, pass string) (int, map[string]any, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.Issuer+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if user != "" {
		req.SetBasicAuth(url.QueryEscape(user), url.QueryEscape(pass))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body := readBody(t, resp)
	out := map[string]any{}
	if body != "" {
		if err := json.Unmarshal([]byte(body), &out); err != nil {
			t.Fatalf("%s: not JSON (%d): %.300s", path, resp.StatusCode, body)
		}
	}
	return resp.StatusCode, out, resp.Header
}

// codeFlow logs alice in to client web and redeems the code; it returns the
// token response.
func (e *Env) codeFlow(t *testing.T, clientID string) map[string]any {
	t.Helper()
	v, ch := pkce()
	redirect := webRedirect
	if clientID == "native" {
		redirect = nativeRedirect
	}
	q := authParams(clientID, redirect, ch)
	loc := e.authorize(t, e.browser(), q, "alice", alicePassword)
	code := loc.Query().Get("code")
	if code == "" {
		t.Fatalf("no code in %s", loc.Redacted())
	}
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirect}, "code_verifier": {v}}
	user, pass := clientID, e.Secrets[clientID]
	if pass == "" {
		form.Set("client_id", clientID)
		user = ""
	}
	status, tok, _ := e.postForm(t, "/oauth/token", form, user, pass)
	if status != 200 {
		t.Fatalf("code exchange: %d %v", status, tok)
	}
	e.remember(code, str(tok["access_token"]), str(tok["refresh_token"]), str(tok["id_token"]))
	return tok
}

func str(v any) string { s, _ := v.(string); return s }

func (e *Env) introspect(t *testing.T, token string) map[string]any {
	t.Helper()
	status, out, _ := e.postForm(t, "/oauth/introspect", url.Values{"token": {token}}, "api", e.Secrets["api"])
	if status != 200 {
		t.Fatalf("introspect: %d %v", status, out)
	}
	return out
}
