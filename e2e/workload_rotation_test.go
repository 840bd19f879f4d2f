package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/storage"
	"github.com/gatehouse/gatehouse/sdk/workload"
)

// rotationClients are orders' clients of payments: keep-alive, a new
// connection per request, and new connections resuming TLS sessions, two
// of each.
func rotationClients(t *testing.T, orders workload.Source) map[string][]*http.Client {
	out := map[string][]*http.Client{}
	for _, mode := range []string{keepAlive, freshConn, resumed} {
		for range 2 {
			out[mode] = append(out[mode], workloadHTTP(t, orders, paymentsID, mode))
		}
	}
	return out
}

// rotationWorld is payments (join token) serving orders (client
// credentials) on a CA with short lifetimes, under traffic.
type rotationWorld struct {
	w                *wlEnv
	payments, orders *workload.CASource
	url              string
	seen             *peerLog // what payments saw of orders
	tlsErrs          *logBuffer
}

func newRotationWorld(t *testing.T, driver, dsn string, s wlSetup) *rotationWorld {
	t.Helper()
	s.policy = []workload.Rule{ordersPaysRule()}
	w := newWorkloadEnv(t, driver, dsn, s)
	rw := &rotationWorld{w: w, seen: newPeerLog()}
	rw.payments = w.source(t, w.caURL(), w.joinToken(t, paymentsID), nil, time.Second)
	rw.orders = w.source(t, w.caURL(), "", w.workloadClient(t, ordersID), -1)
	waitPolicy(t, rw.payments)
	rw.url, rw.tlsErrs = serveWorkload(t, rw.payments, rw.payments, paymentsID, rw.seen)
	rw.url += paymentsPath
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("payments' TLS errors:\n%s", rw.tlsErrs.String())
			t.Logf("warnings and errors of the CA and the SDK:\n%s", warnings(w.Logs.String(), 60))
		}
	})
	return rw
}

// explain logs, when traffic failed, the app's and the SDK's log lines of
// the few seconds before the first failure that concern payments or the
// CA's authorities.
func (rw *rotationWorld) explain(t *testing.T, tr *traffic) {
	tr.mu.Lock()
	at := tr.firstAt
	tr.mu.Unlock()
	if at.IsZero() {
		return
	}
	var out []string
	for _, l := range strings.Split(rw.w.Logs.String(), "\n") {
		var rec struct {
			Time time.Time `json:"time"`
		}
		if json.Unmarshal([]byte(l), &rec) != nil || rec.Time.Before(at.Add(-5*time.Second)) || rec.Time.After(at.Add(time.Second)) {
			continue
		}
		if strings.Contains(l, "payments") || strings.Contains(l, "authorit") || strings.Contains(l, `"level":"WARN"`) || strings.Contains(l, `"level":"ERROR"`) {
			out = append(out, l)
		}
	}
	t.Logf("first failure at %s; log lines of the 5 s before:\n%s", at.UTC().Format(time.RFC3339Nano), strings.Join(out, "\n"))
}

// warnings returns the WARN and ERROR lines of logs, the last max of them.
func warnings(logs string, max int) string {
	var out []string
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, `"level":"WARN"`) || strings.Contains(l, `"level":"ERROR"`) ||
			strings.Contains(l, "level=WARN") || strings.Contains(l, "level=ERROR") {
			out = append(out, l)
		}
	}
	if len(out) > max {
		out = out[len(out)-max:]
	}
	return strings.Join(out, "\n")
}

// waitPolicy waits for src's first policy.
func waitPolicy(t *testing.T, src *workload.CASource) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for src.Policy() == nil {
		if time.Now().After(deadline) {
			t.Fatal("the workload never received its policy")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// serialsOf watches the SVIDs a source holds (distinct leaf serials).
func serialsOf(srcs ...*workload.CASource) (stop func() []int) {
	var mu sync.Mutex
	seen := make([]map[string]bool, len(srcs))
	for i := range seen {
		seen[i] = map[string]bool{}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			for i, s := range srcs {
				if sv, err := s.GetX509SVID(); err == nil {
					mu.Lock()
					seen[i][sv.Certificates[0].SerialNumber.Text(16)] = true
					mu.Unlock()
				}
			}
			select {
			case <-done:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	return func() []int {
		close(done)
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		n := make([]int, len(seen))
		for i := range seen {
			n[i] = len(seen[i])
		}
		return n
	}
}

// TestWorkloadRotationUnderTraffic: orders calls payments over mTLS for
// ~20 s from six goroutines (keep-alive, new connections, resumed
// sessions) while both SVIDs (svid_ttl 3s) renew and the intermediate
// rotates (its natural schedule plus RotateNow midway): no request fails,
// both workloads renew several times, several intermediates are seen in
// the peers' chains.
//
// The root subtest does the same across a natural root rotation: the
// prepared root is published (bundle old → old+new) before it is activated
// and signs. It needs a root_ttl far below the config's 1h minimum (see
// wlSetup.rootTTL). RotateNow(ctx, "root") is not used: it activates at
// once, skipping the publication period, so peers that have not refreshed
// the bundle yet rightly reject the new chains (documented on RotateNow).
func TestWorkloadRotationUnderTraffic(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Run("intermediate", func(t *testing.T) {
				driver, dsn := b.dsn(t)
				rw := newRotationWorld(t, driver, dsn, wlSetup{svidTTL: 3 * time.Second, interTTL: 8 * time.Second, refresh: time.Second})
				stopSerials := serialsOf(rw.payments, rw.orders)
				start := time.Now()
				tr := startTraffic(rw.url, ordersID, rotationClients(t, rw.orders))
				time.Sleep(10 * time.Second)
				if err := rw.w.App.CA.RotateNow(context.Background(), storage.AuthorityIntermediate); err != nil {
					t.Errorf("RotateNow(intermediate): %v", err)
				}
				time.Sleep(10 * time.Second)
				tr.halt()
				serials := stopSerials()
				rw.check(t, tr, serials, 2, 1)
				rw.explain(t, tr)
				checkRenewalRate(t, serials, time.Since(start), 3*time.Second)
			})
			t.Run("root", func(t *testing.T) {
				driver, dsn := b.dsn(t)
				rw := newRotationWorld(t, driver, dsn, wlSetup{svidTTL: 3 * time.Second, interTTL: 8 * time.Second,
					refresh: time.Second, rootTTL: 40 * time.Second})
				stopSerials := serialsOf(rw.payments, rw.orders)
				start := time.Now()
				tr := startTraffic(rw.url, ordersID, rotationClients(t, rw.orders))
				maxRoots := watchBundles(rw.payments, rw.orders)
				// Root 1 (40s) gets a prepared successor ~20s after it was
				// created (half-life), activated ~33s after it (5/6).
				deadline := time.Now().Add(90 * time.Second)
				for {
					_, _, r1, _ := rw.seen.counts()
					_, _, r2, _ := tr.serverSeenByMe.counts()
					if r1 >= 2 && r2 >= 2 {
						break
					}
					if time.Now().After(deadline) {
						t.Errorf("no root rotation seen in the peers' chains within 90s (payments saw %d roots, orders %d)", r1, r2)
						break
					}
					time.Sleep(200 * time.Millisecond)
				}
				time.Sleep(5 * time.Second) // traffic on the new root, the old one retiring
				tr.halt()
				roots := maxRoots()
				serials := stopSerials()
				rw.check(t, tr, serials, 2, 2)
				rw.explain(t, tr)
				checkRenewalRate(t, serials, time.Since(start), 3*time.Second)
				if roots[0] < 2 || roots[1] < 2 {
					t.Errorf("the workloads' bundles never held two roots (old+new): payments %d, orders %d", roots[0], roots[1])
				}
			})
		})
	}
}

// watchBundles records the most roots each source's bundle held.
func watchBundles(srcs ...*workload.CASource) (stop func() []int) {
	var mu sync.Mutex
	most := make([]int, len(srcs))
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			for i, s := range srcs {
				if b, err := s.GetX509BundleForTrustDomain(wlTD); err == nil {
					mu.Lock()
					most[i] = max(most[i], len(b.X509Authorities()))
					mu.Unlock()
				}
			}
			select {
			case <-done:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	return func() []int {
		close(done)
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		return append([]int(nil), most...)
	}
}

// check asserts no failed request, several renewals of both workloads,
// at least wantInters intermediates and wantRoots roots in the chains
// seen on both sides, and resumed sessions.
func (rw *rotationWorld) check(t *testing.T, tr *traffic, serials []int, wantInters, wantRoots int) {
	t.Helper()
	sent, failed := tr.sent.Load(), tr.failed.Load()
	t.Logf("%d requests (%d keep-alive, %d new connections, %d resumed ok), %d failed", sent,
		tr.successes(keepAlive), tr.successes(freshConn), tr.successes(resumed), failed)
	if failed != 0 {
		t.Errorf("%d of %d requests failed; the first:\n%s", failed, sent, tr.firstFailures())
	}
	for _, m := range []string{keepAlive, freshConn, resumed} {
		if tr.successes(m) < 20 {
			t.Errorf("only %d successful %s requests", tr.successes(m), m)
		}
	}
	t.Logf("SVIDs held: payments %d, orders %d", serials[0], serials[1])
	if serials[0] < 4 || serials[1] < 4 {
		t.Errorf("the workloads did not renew several times: payments held %d SVIDs, orders %d", serials[0], serials[1])
	}
	leaves, inters, roots, res := rw.seen.counts()
	t.Logf("payments saw %d orders leaves, %d intermediates, %d roots, %d resumed connections", leaves, inters, roots, res)
	if leaves < 3 || inters < wantInters || roots < wantRoots {
		t.Errorf("payments saw %d leaves, %d intermediates, %d roots of orders; want ≥3, ≥%d, ≥%d", leaves, inters, roots, wantInters, wantRoots)
	}
	if res == 0 {
		t.Error("no request came over a resumed TLS session")
	}
	leaves, inters, roots, _ = tr.serverSeenByMe.counts()
	t.Logf("orders saw %d payments leaves, %d intermediates, %d roots", leaves, inters, roots)
	if leaves < 3 || inters < wantInters || roots < wantRoots {
		t.Errorf("orders saw %d leaves, %d intermediates, %d roots of payments; want ≥3, ≥%d, ≥%d", leaves, inters, roots, wantInters, wantRoots)
	}
}

// checkRenewalRate fails when a workload renewed far more often than at
// half of its SVIDs' lifetime (ttl): more than once per quarter of it on
// average over elapsed, a renewal storm against the CA.
func checkRenewalRate(t *testing.T, serials []int, elapsed, ttl time.Duration) {
	t.Helper()
	limit := int(elapsed/(ttl/4)) + 2
	for i, name := range []string{"payments", "orders"} {
		if serials[i] > limit {
			t.Errorf("%s held %d SVIDs in %s with svid_ttl %s: it renews far more often than at half-life (at most %d expected)",
				name, serials[i], elapsed.Round(time.Second), ttl, limit)
		}
	}
}
