package e2e

import (
	"context"
	"errors"
	"fmt"
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

	"github.com/gatehouse/gatehouse/internal/devdemo"
	"github.com/gatehouse/gatehouse/internal/storage"
)

// Browser test limits: one step (navigate, click and wait) and one test.
const (
	stepTimeout    = 10 * time.Second
	browserTimeout = 90 * time.Second
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

// all returns a copy of the log.
func (l *hitLog) all() []hit {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]hit(nil), l.hits...)
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
	hits := &hitLog{}
	e := newEnvWith(t, driver, dsn, nil, envOptions{localhost: true, outer: hits.record, inner: wrap})
	return &localEnv{Env: e, Hits: hits}
}

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
	// The first Do binds the browser's life to its context, so it gets the
	// whole-browser cap, never a step timeout.
	base, cancelBase := context.WithTimeout(context.Background(), browserTimeout)
	actx, cancelAlloc := chromedp.NewExecAllocator(base, opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancelCtx()
		cancelAlloc()
		cancelBase()
	})
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	return ctx
}

// newTab opens a tab in a new browser context of the browser of ctx: its own
// cookie jar, like a fresh incognito window. It closes when the test ends.
func newTab(t *testing.T, ctx context.Context) context.Context {
	t.Helper()
	tab, cancel := chromedp.NewContext(ctx, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	if err := chromedp.Do(tab); err != nil {
		t.Fatalf("open tab: %v", err)
	}
	return tab
}

// run runs steps within stepTimeout and fails the test on error.
func run(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if _, err := get1(ctx, chromedp.Steps(steps...)); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// get1 runs one action within stepTimeout and returns its value.
func get1[T any](ctx context.Context, a chromedp.Action[T]) (T, error) {
	sctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	v, err := chromedp.Run(sctx, a)
	if errors.Is(err, context.DeadlineExceeded) {
		err = fmt.Errorf("timed out after %v: %w", stepTimeout, err)
	}
	return v, err
}

// must runs one action within stepTimeout and fails the test on error.
func must[T any](t *testing.T, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	v, err := get1(ctx, a)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

// text returns the trimmed text of the visible element matching the CSS
// selector sel.
func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	return strings.TrimSpace(must(t, ctx, "read "+sel, chromedp.Text(chromedp.CSS(sel), chromedp.NodeVisible)))
}

// location returns the URL the tab shows.
func location(t *testing.T, ctx context.Context) string {
	t.Helper()
	return must(t, ctx, "read location", chromedp.Location())
}

// js evaluates a JavaScript expression in the tab (the test's own script;
// Gatehouse's pages carry none).
func js[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	return must(t, ctx, "evaluate "+expr, chromedp.Evaluate[T](expr))
}

// screenshot saves a full-page PNG as name into t.TempDir(), and into
// $GATEHOUSE_SCREENSHOT_DIR when it is set, for a human to look at.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png := must(t, ctx, "screenshot "+name, chromedp.FullScreenshot(100))
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

// navResponse runs steps that cause a top-level navigation (a click on a
// submit button) within stepTimeout and returns the response of the document
// that loaded: its final status and URL after redirects.
func navResponse(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) *network.Response {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	resp, err := chromedp.RunResponse(sctx, steps...)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return resp
}

// waitTrue polls a JavaScript predicate in the tab until it holds, failing
// the test after stepTimeout with what the page then says about it (show).
func waitTrue(t *testing.T, ctx context.Context, predicate, show string) {
	t.Helper()
	if _, err := get1(ctx, chromedp.Poll[chromedp.Void](predicate, chromedp.WithPollingTimeout(stepTimeout-time.Second))); err != nil {
		got, _ := get1(ctx, chromedp.Evaluate[string]("String("+show+")"))
		t.Fatalf("waiting for %s: %v (%s = %q)", predicate, err, show, got)
	}
}

// frameTarget waits for the iframe target (an out-of-process frame) whose URL
// is u and returns a context attached to it.
func frameTarget(t *testing.T, ctx context.Context, u string) context.Context {
	t.Helper()
	deadline := time.Now().Add(stepTimeout)
	for {
		infos, err := chromedp.Targets(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, info := range infos {
			if info.Type == "iframe" && info.URL == u {
				fctx, cancel := chromedp.NewContext(ctx, chromedp.WithTargetID(info.TargetID))
				t.Cleanup(cancel)
				return fctx
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no iframe target for %s", u)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
