package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/app"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/password"
)

// policyConfig is an all-in-one `gatehouse serve` file (IdP, admin API,
// CA) with the ca.policy lines rules.
func policyConfig(idp, admin, ca, dbPath, kek, pepper, adminHash, rules string) string {
	return fmt.Sprintf(`issuer: http://%s
log:
  level: info
  format: json
storage:
  driver: sqlite
  dsn: file:%s
secrets:
  key_encryption_key: %s
  pepper: %s
idp:
  listen: %s
  signing:
    algorithm: ES256
admin:
  listen: %s
  token_sha256: %s
gateway:
  reload_interval: 100ms
ca:
  listen: %s
  trust_domain: gatehouse.local
  policy:
%s`, idp, dbPath, kek, pepper, idp, admin, adminHash, ca, rules)
}

// Policy versions of the hot-reload test.
const (
	allowOrders = `    - name: orders-pays
      effect: allow
      from: [spiffe://gatehouse.local/orders]
      to: [spiffe://gatehouse.local/payments]
      paths: [/payments, /payments/*]
      methods: [POST]
`
	allowBillingOnly = `    - name: billing-pays
      effect: allow
      from: [spiffe://gatehouse.local/billing]
      to: [spiffe://gatehouse.local/payments]
`
	invalidPolicy = `    - name: broken
      effect: maybe
      from: [spiffe://gatehouse.local/orders]
      to: [spiffe://gatehouse.local/payments]
`
)

// TestWorkloadPolicyHotReload runs what `gatehouse serve --config` runs
// (LoadFile, app.New, WatchConfig, Run) with the CA and rewrites ca.policy:
// once the allow rule is gone, payments (PolicyRefresh 200ms) refuses
// orders both on the open keep-alive connection (Middleware: 403) and on
// new connections (connection authorizer: handshake refused); with the
// rule back both are allowed again, and an invalid policy leaves the
// running one in place.
func TestWorkloadPolicyHotReload(t *testing.T) {
	idpAddr, adminAddr, caAddr := freePort(t), freePort(t), freePort(t)
	adminToken := "adm_" + hex.EncodeToString([]byte(randB64(24)))
	sum := sha256.Sum256([]byte(adminToken))
	kek, pepper := randB64(32), randB64(32)
	dir := t.TempDir()
	path := filepath.Join(dir, "gatehouse.yaml")
	version := func(rules string) string {
		return policyConfig(idpAddr, adminAddr, caAddr, filepath.Join(dir, "g.db"), kek, pepper, hex.EncodeToString(sum[:]), rules)
	}
	writeAtomically(t, path, version(allowOrders))

	cfg, _, err := config.LoadFile(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	logs := &logBuffer{}
	hasher, err := password.NewInsecureHasherForTests(password.TestParams)
	if err != nil {
		t.Fatal(err)
	}
	a, err := app.New(t.Context(), cfg, slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		app.Options{Passwords: hasher})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var running sync.WaitGroup
	running.Add(2)
	go func() { defer running.Done(); a.WatchConfig(ctx, path, nil) }()
	runErr := make(chan error, 1)
	go func() { defer running.Done(); runErr <- a.Run(ctx, nil) }()
	e := &Env{t: t, App: a, Issuer: cfg.Issuer, Clock: &clock{}, Logs: logs, Secrets: map[string]string{}, Store: a.Store, Config: cfg}
	e.remember(adminToken)
	t.Cleanup(func() {
		cancel()
		running.Wait()
		a.Close()
		if err := <-runErr; err != nil {
			t.Errorf("Run: %v", err)
		}
		e.assertNoSecretsLogged()
		if t.Failed() {
			t.Logf("gatehouse serve log:\n%s", logs.String())
		}
	})
	for _, addr := range []string{idpAddr, adminAddr, caAddr} {
		waitListening(t, addr, 20*time.Second, logs.String)
	}
	e.waitAuthzReady(t)
	w := &wlEnv{Env: e, caAddr: caAddr, adminURL: "http://" + adminAddr, adminToken: adminToken}

	payments := w.source(t, w.caURL(), w.joinToken(t, paymentsID), nil, 200*time.Millisecond)
	orders := w.source(t, w.caURL(), w.joinToken(t, ordersID), nil, -1)
	waitPolicy(t, payments)
	base, tlsErrs := serveWorkload(t, payments, payments, paymentsID, nil)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("payments' TLS errors:\n%s", tlsErrs.String())
		}
	})
	kept := workloadHTTP(t, orders, paymentsID, keepAlive)
	fresh := workloadHTTP(t, orders, paymentsID, freshConn)
	// outcome is "allowed", "denied by the middleware" (403 access_denied)
	// or "refused at the handshake" (the connection authorizer).
	outcome := func(c *http.Client) string {
		st, body, _, err := wlCall(c, base+paymentsPath)
		switch {
		case err != nil && strings.Contains(err.Error(), "tls"):
			return "refused at the handshake"
		case err != nil:
			return "error: " + err.Error()
		case st == http.StatusOK && body == "ok "+ordersID.String():
			return "allowed"
		case st == http.StatusForbidden && strings.Contains(body, `"access_denied"`):
			return "denied by the middleware"
		}
		return fmt.Sprintf("unexpected %d %.200s", st, body)
	}
	// expect polls until the kept connection and new connections give
	// their outcomes. The kept connection is used every 50ms, so it stays
	// the same connection throughout.
	expect := func(what, keptWant, freshWant string) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			k, f := outcome(kept), outcome(fresh)
			if k == keptWant && f == freshWant {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: the kept connection is %q (want %q), new connections %q (want %q)", what, k, keptWant, f, freshWant)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	expect("initial policy", "allowed", "allowed")
	v1 := a.CAPolicy().Version()

	writeAtomically(t, path, version(allowBillingOnly))
	expect("allow rule removed", "denied by the middleware", "refused at the handshake")
	if v2 := a.CAPolicy().Version(); v2 == v1 {
		t.Errorf("the running policy version did not change (%s)", v1)
	}
	// The kept connection was opened under the old policy: only the
	// middleware stands between it and the handler, and it holds.
	for range 5 {
		if got := outcome(kept); got != "denied by the middleware" {
			t.Errorf("the kept connection after the reload: %s", got)
		}
	}

	writeAtomically(t, path, version(allowOrders))
	expect("allow rule back", "allowed", "allowed")
	if v3 := a.CAPolicy().Version(); v3 != v1 {
		t.Errorf("the policy version with the rule back is %s, want %s (same rules)", v3, v1)
	}

	writeAtomically(t, path, version(invalidPolicy))
	waitFor(t, 20*time.Second, "the invalid policy is reported", func() bool {
		return strings.Contains(logs.String(), "reload rejected") || strings.Contains(logs.String(), "policy rejected")
	})
	time.Sleep(time.Second) // several policy refreshes
	if got := a.CAPolicy().Version(); got != v1 {
		t.Errorf("an invalid policy replaced the running one: %s", got)
	}
	for _, c := range []*http.Client{kept, fresh} {
		if got := outcome(c); got != "allowed" {
			t.Errorf("after an invalid policy file: %s, want the running policy to stay", got)
		}
	}
}
