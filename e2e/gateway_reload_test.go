package e2e

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/app"
	"github.com/gatehouse/gatehouse/internal/config"
)

// reloadConfig is a gateway-only `gatehouse serve` configuration: a stable
// anonymous route, a JWT route verified against the in-process IdP, and
// extra, the route that differs between versions (raw YAML lines).
func reloadConfig(issuer, listen, upstream, extra string) string {
	return fmt.Sprintf(`issuer: %s
idp:
  listen: ""
admin:
  listen: ""
log:
  level: info
  format: json
gateway:
  listen: %s
  reload_interval: 100ms
  access_log: false
  routes:
    - name: stable
      path_prefix: /stable
      upstreams: [%s]
      token: strip
      auth: {mode: anonymous}
    - name: orders
      path_prefix: /orders
      upstreams: [%s]
      token: strip
      auth: {mode: jwt, audience: %s, scopes_all: [orders:read]}
%s`, issuer, listen, upstream, upstream, apiAudience, extra)
}

func extraRoute(name, upstream string) string {
	return fmt.Sprintf(`    - name: %s
      path_prefix: /%s
      upstreams: [%s]
      token: strip
      auth: {mode: anonymous}
`, name, name, upstream)
}

// writeAtomically replaces path as editors and config-map updates do.
func writeAtomically(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// TestServeHotReloadUnderTraffic runs what `gatehouse serve` runs (LoadFile,
// app.New, WatchConfig, Run) with a gateway-only configuration and rewrites its file under continuous traffic: no request
// fails, added routes answer and removed ones 404 within a few reload
// intervals, and an invalid file is logged and leaves the routes in place.
func TestServeHotReloadUnderTraffic(t *testing.T) {
	e := sqliteEnv(t, nil)
	token := e.scopedToken(t, "orders:read")
	up := okUpstream(t)
	listen := freePort(t)
	base := "http://" + listen
	dir := t.TempDir()
	path := filepath.Join(dir, "gatehouse.yaml")
	versionA := reloadConfig(e.Issuer, listen, up, extraRoute("only-a", up))
	versionB := reloadConfig(e.Issuer, listen, up, extraRoute("only-b", up))
	writeAtomically(t, path, versionA)

	// The serve command's path, in process: load the file, build the app,
	// watch the file, run. (Re-executing this test binary as `gatehouse
	// serve` is not possible: serve refuses the GATEHOUSE_E2E_* marker
	// variable TestMain uses as an unknown configuration variable.)
	env := []string{}
	cfg, _, err := config.LoadFile(path, env)
	if err != nil {
		t.Fatal(err)
	}
	logs := &logBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	a, err := app.New(t.Context(), cfg, log, app.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var running sync.WaitGroup
	running.Add(2)
	go func() { defer running.Done(); a.WatchConfig(ctx, path, env) }()
	runErr := make(chan error, 1)
	go func() { defer running.Done(); runErr <- a.Run(ctx, nil) }()
	t.Cleanup(func() {
		cancel()
		running.Wait()
		a.Close()
		if err := <-runErr; err != nil {
			t.Errorf("Run: %v", err)
		}
		if strings.Contains(logs.String(), token) {
			t.Error("the token appears in the logs")
		}
		if t.Failed() {
			t.Logf("gatehouse serve log:\n%s", logs.String())
		}
	})
	waitListening(t, listen, 20*time.Second, logs.String)

	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	t.Cleanup(client.CloseIdleConnections)
	status := func(p, tok string) (int, error) {
		req, _ := http.NewRequest(http.MethodGet, base+p, nil)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	// waitFor polls until every path answers its status. A reload takes two
	// 100 ms ticks; 10 s leaves a loaded CI machine (with the 8 senders
	// below) room, and a reload that never happens still fails.
	waitFor := func(what string, want map[string]int) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			ok := true
			for p, st := range want {
				if got, err := status(p, ""); err != nil || got != st {
					ok = false
				}
			}
			if ok {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: routes did not become %v", what, want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	// The JWT route is ready once the gateway has the IdP's keys.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if st, err := status("/orders/1", token); err == nil && st == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the JWT route never answered 200")
		}
		time.Sleep(50 * time.Millisecond)
	}
	waitFor("version A", map[string]int{"/only-a/x": 200, "/only-b/x": 404})

	var stop atomic.Bool
	var sent, failed atomic.Int64
	var firstFailure atomic.Value
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				p, tok := "/stable/x", ""
				if i%2 == 1 {
					p, tok = "/orders/1", token
				}
				st, err := status(p, tok)
				sent.Add(1)
				if err != nil || st != 200 {
					failed.Add(1)
					firstFailure.CompareAndSwap(nil, fmt.Sprintf("%s: %d %v", p, st, err))
				}
			}
		}()
	}

	start := time.Now()
	rewrites := 0
	for i := 0; rewrites < 12 || time.Since(start) < 3*time.Second; i++ {
		if i%2 == 0 {
			writeAtomically(t, path, versionB)
			waitFor(fmt.Sprintf("rewrite %d (B)", i), map[string]int{"/only-a/x": 404, "/only-b/x": 200})
		} else {
			writeAtomically(t, path, versionA)
			waitFor(fmt.Sprintf("rewrite %d (A)", i), map[string]int{"/only-a/x": 200, "/only-b/x": 404})
		}
		rewrites++
		if i == 4 {
			t.Run("invalid-files-keep-routes", func(t *testing.T) {
				// Version B is running. Neither an unknown key nor a bad
				// upstream URL replaces it.
				for n, bad := range []string{
					reloadConfig(e.Issuer, listen, up, extraRoute("only-c", up)) + "    unknown_key: true\n",
					reloadConfig(e.Issuer, listen, up, extraRoute("only-c", "ftp://127.0.0.1:1")),
				} {
					before := strings.Count(logs.String(), "configuration reload rejected")
					writeAtomically(t, path, bad)
					deadline := time.Now().Add(10 * time.Second)
					for strings.Count(logs.String(), "configuration reload rejected") == before {
						if time.Now().After(deadline) {
							t.Fatalf("invalid file %d: no rejection logged", n)
						}
						time.Sleep(20 * time.Millisecond)
					}
					for p, want := range map[string]int{"/only-a/x": 404, "/only-b/x": 200, "/only-c/x": 404, "/stable/x": 200} {
						if got, err := status(p, ""); err != nil || got != want {
							t.Fatalf("invalid file %d: %s answers %d (%v), want %d", n, p, got, err, want)
						}
					}
				}
			})
		}
	}
	stop.Store(true)
	wg.Wait()
	t.Logf("%d rewrites in %s; %d requests, %d failed", rewrites, time.Since(start), sent.Load(), failed.Load())
	if failed.Load() != 0 {
		t.Fatalf("%d of %d requests failed during reloads; first: %v", failed.Load(), sent.Load(), firstFailure.Load())
	}
	if sent.Load() < 100 {
		t.Fatalf("only %d requests were sent", sent.Load())
	}
	if !strings.Contains(logs.String(), "gateway routes reloaded") {
		t.Error("no reload was logged")
	}
}
