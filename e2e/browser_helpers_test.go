package e2e

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/gatehouse/gatehouse/internal/app"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/devdemo"
	"github.com/gatehouse/gatehouse/internal/password"
	"github.com/gatehouse/gatehouse/internal/storage"
)

// Browser test limits: one step (navigate, click and wait) and one test.
const (
	stepTimeout    = 10 * time.Second
	browserTimeout = 45 * time.Second
	demoClientID   = "demo"
)

// hit is one request the IdP answered, as the browser sent it.
type hit struct {
	Method, Path  string
	Status        int
	SecFetchSite  string
	Origin        string
	HadCSRFCookie bool
}

// hitLog records the requests the IdP answered, so tests can check what the
// browser really sent (Sec-Fetch-Site, cookies) and what came back.
type hitLog struct {
	mu   sync.Mutex
	hits []hit
}

func (l *hitLog) add(h hit) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.hits = append(l.hits, h)
}

// find returns the requests for method and path.
func (l *hitLog) find(method, path string) []hit {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []hit
	for _, h := range l.hits {
		if h.Method == method && h.Path == path {
			out = append(out, h)
		}
	}
	return out
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// record wraps h so that every answered request lands in l.
func (l *hitLog) record(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := r.Cookie("__Host-gatehouse-csrf")
		sr := &statusRecorder{ResponseWriter: w}
		h.ServeHTTP(sr, r)
		l.add(hit{Method: r.Method, Path: r.URL.Path, Status: sr.status, SecFetchSite: r.Header.Get("Sec-Fetch-Site"),
			Origin: r.Header.Get("Origin"), HadCSRFCookie: err == nil})
	})
}

// localEnv is a Gatehouse whose issuer is http://localhost:PORT, the one
// http origin where Chromium keeps the IdP's __Host- Secure cookies.
type localEnv struct {
	*Env
	Hits *hitLog
}

// newLocalEnv is newEnv with a localhost issuer and a hit log; wrap, when not
// nil, wraps the IdP handler (a test may strip headers with it).
func newLocalEnv(t *testing.T, driver, dsn string, wrap func(http.Handler) http.Handler) *localEnv {
	t.Helper()
	var handler atomic.Value
	hits := &hitLog{}
	srv := httptest.NewUnstartedServer(hits.record(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		handler.Load().(http.Handler).ServeHTTP(w, r)
	})))
	issuer := "http://localhost:" + portOf(srv.Listener.Addr().String())
	cfg := config.Default()
	cfg.Issuer = issuer
	cfg.Storage = config.StorageConfig{Driver: driver, DSN: dsn}
	cfg.Secrets.KeyEncryptionKey = randB64(32)
	cfg.Secrets.Pepper = randB64(32)
	cfg.Admin.Listen = ""
	cfg.IDP.Signing.Algorithm = "ES256"
	if _, err := cfg.Validate(); err != nil {
		t.Fatalf("config: %v", err)
	}
	logs := &logBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	hasher, err := password.NewInsecureHasherForTests(password.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32})
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
	e := &Env{t: t, App: a, Server: srv, Issuer: issuer, Clock: clk, Logs: logs, Secrets: map[string]string{}, Store: a.Store}
	e.seed()
	t.Cleanup(e.assertNoSecretsLogged)
	return &localEnv{Env: e, Hits: hits}
}

func portOf(addr string) string { return addr[strings.LastIndexByte(addr, ':')+1:] }

// forEachLocalBackend runs fn against a fresh localhost Gatehouse on every
// storage backend.
func forEachLocalBackend(t *testing.T, fn func(t *testing.T, e *localEnv)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			driver, dsn := b.dsn(t)
			fn(t, newLocalEnv(t, driver, dsn, nil))
		})
	}
}

func sqliteLocalEnv(t *testing.T, wrap func(http.Handler) http.Handler) *localEnv {
	return newLocalEnv(t, "sqlite", "file:"+filepath.Join(t.TempDir(), "g.db"), wrap)
}

// startDemo runs the devdemo relying party on its own loopback server
// (http://127.0.0.1:PORT, another site than the IdP) and registers it as
// the confidential third-party client "demo", so consent is asked.
func startDemo(t *testing.T, e *localEnv) string {
	t.Helper()
	var handler atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		handler.Load().(http.Handler).ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	base := srv.URL
	sec := "ghs_" + strings.NewReplacer("+", "-", "/", "_", "=", "").Replace(randB64(32))
	e.Secrets[demoClientID] = sec
	now := time.Now()
	if err := e.Store.CreateClient(context.Background(), storage.Client{ID: demoClientID, Name: "Demo App",
		SecretHash: e.App.Secrets.Sum(sec), RedirectURIs: []string{base + "/callback"}, PostLogoutRedirectURIs: []string{base + "/"},
		GrantTypes: []string{"authorization_code", "refresh_token"}, Scopes: []string{"openid", "profile", "email", "offline_access"},
		CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	demo := devdemo.New(devdemo.Config{Issuer: e.Issuer, ClientID: demoClientID, ClientSecret: sec, RedirectURL: base + "/callback"},
		slog.New(slog.NewJSONHandler(e.Logs, nil)).With("component", "demo"))
	handler.Store(demo.Handler())
	return base
}

// chromiumPath returns the Chromium binary: $GATEHOUSE_CHROMIUM or
// /usr/bin/chromium. Without one the test skips locally and fails in CI.
func chromiumPath(t *testing.T) string {
	t.Helper()
	p := os.Getenv("GATEHOUSE_CHROMIUM")
	if p == "" {
		p = "/usr/bin/chromium"
	}
	if _, err := os.Stat(p); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("Chromium not found at %s (set GATEHOUSE_CHROMIUM): %v", p, err)
		}
		t.Skipf("Chromium not found at %s (set GATEHOUSE_CHROMIUM): %v", p, err)
	}
	return p
}

// newBrowser starts a headless Chromium with a fresh profile and returns a
// context for its first tab. Everything is torn down when the test ends.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.WindowSize(1024, 800),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
	)
	base, cancelBase := context.WithTimeout(context.Background(), browserTimeout)
	actx, cancelAlloc := chromedp.NewExecAllocator(base, opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancelCtx()
		cancelAlloc()
		cancelBase()
	})
	run(t, ctx, "start browser")
	return ctx
}

// newTab opens another tab in the browser of ctx (same profile, so the same
// cookies); it closes when the test ends.
func newTab(t *testing.T, ctx context.Context) context.Context {
	t.Helper()
	tab, cancel := chromedp.NewContext(ctx)
	t.Cleanup(cancel)
	run(t, tab, "open tab")
	return tab
}

// run runs actions within stepTimeout and fails the test on error.
func run(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action) {
	t.Helper()
	if err := tryRun(ctx, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func tryRun(ctx context.Context, actions ...chromedp.Action) error {
	sctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	err := chromedp.Run(sctx, actions...)
	if errors.Is(err, context.DeadlineExceeded) {
		return errors.New("timed out after " + stepTimeout.String())
	}
	return err
}

// text returns the text content of the element matching sel.
func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	var s string
	run(t, ctx, "read "+sel, chromedp.Text(sel, &s, chromedp.ByQuery, chromedp.NodeVisible))
	return strings.TrimSpace(s)
}

// location returns the URL the tab shows.
func location(t *testing.T, ctx context.Context) string {
	t.Helper()
	var u string
	run(t, ctx, "read location", chromedp.Location(&u))
	return u
}

// eval evaluates a JavaScript expression in the tab (the test's own script;
// Gatehouse's pages carry none) into out.
func eval(t *testing.T, ctx context.Context, expr string, out any) {
	t.Helper()
	run(t, ctx, "evaluate "+expr, chromedp.Evaluate(expr, out))
}

// screenshot saves a full-page PNG as name into t.TempDir(), and into
// $GATEHOUSE_SCREENSHOT_DIR when it is set, for a human to look at.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	var png []byte
	run(t, ctx, "screenshot "+name, chromedp.FullScreenshot(&png, 100))
	dirs := []string{t.TempDir()}
	if d := os.Getenv("GATEHOUSE_SCREENSHOT_DIR"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		dirs = append(dirs, d)
	}
	for _, d := range dirs {
		if err := os.WriteFile(filepath.Join(d, name), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// documentStatus watches the tab and returns a function giving the HTTP
// status of the last top-level document response whose URL contains path.
func documentStatus(ctx context.Context, path string) func() int64 {
	var mu sync.Mutex
	var status int64
	chromedp.ListenTarget(ctx, func(ev any) {
		if e, ok := ev.(*network.EventResponseReceived); ok && e.Type == network.ResourceTypeDocument &&
			strings.Contains(e.Response.URL, path) {
			mu.Lock()
			status = e.Response.Status
			mu.Unlock()
		}
	})
	return func() int64 {
		mu.Lock()
		defer mu.Unlock()
		return status
	}
}
