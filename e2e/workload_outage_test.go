package e2e

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/sdk/workload"
)

// TestWorkloadCADownAndRecovery puts a TCP proxy in front of the CA: while
// it refuses connections (and has cut the open ones) orders' calls to
// payments keep succeeding until the SVIDs (svid_ttl 3s) expire, then
// fail; GetX509SVID then wraps ErrExpired and says when the SVID expired
// and what happens next. Once the CA is back, the sources with client
// credentials bootstrap again by themselves and the calls succeed again;
// a source that only had a join token stays expired and says that a new
// join token is needed.
func TestWorkloadCADownAndRecovery(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			driver, dsn := b.dsn(t)
			w := newWorkloadEnv(t, driver, dsn, wlSetup{svidTTL: 3 * time.Second, interTTL: 30 * time.Second,
				refresh: time.Second, policy: []workload.Rule{ordersPaysRule()}})
			proxy := newTCPProxy(t, w.caAddr)
			viaProxy := "https://" + proxy.ln.Addr().String()
			payments := w.source(t, viaProxy, "", w.workloadClient(t, paymentsID), time.Second)
			orders := w.source(t, viaProxy, "", w.workloadClient(t, ordersID), -1)
			billing := w.source(t, viaProxy, w.joinToken(t, billingID), nil, -1) // join token only
			waitPolicy(t, payments)
			base, tlsErrs := serveWorkload(t, payments, payments, paymentsID, nil)
			t.Cleanup(func() {
				if t.Failed() {
					t.Logf("payments' TLS errors:\n%s", tlsErrs.String())
				}
			})
			client := workloadHTTP(t, orders, paymentsID, freshConn) // a handshake per call
			callOK := func() error {
				st, body, _, err := wlCall(client, base+paymentsPath)
				if err != nil {
					return err
				}
				if st != http.StatusOK || body != "ok "+ordersID.String() {
					return fmt.Errorf("status %d: %.200s", st, body)
				}
				return nil
			}
			if err := callOK(); err != nil {
				t.Fatalf("orders → payments with the CA up: %v", err)
			}

			// Cut the CA while every SVID has time left (they renew at half-life).
			srcs := map[string]*workload.CASource{"payments": payments, "orders": orders, "billing": billing}
			waitFor(t, 30*time.Second, "every SVID has ≥1.2s left", func() bool {
				for _, s := range srcs {
					sv, err := s.GetX509SVID()
					if err != nil || time.Until(sv.Certificates[0].NotAfter) < 1200*time.Millisecond {
						return false
					}
				}
				return true
			})
			proxy.setUp(false)
			if err := callOK(); err != nil {
				t.Errorf("a call right after the CA went down failed while the SVIDs are valid: %v", err)
			}
			// A renewal in flight at the cut may still install a new SVID:
			// wait until every SVID's NotAfter is the same across two reads
			// 300ms apart (no renewal can succeed after the cut).
			readExpiry := func() map[string]time.Time {
				m := map[string]time.Time{}
				for name, s := range srcs {
					sv, err := s.GetX509SVID()
					if err != nil {
						t.Fatalf("%s: no SVID right after the CA went down: %v", name, err)
					}
					m[name] = sv.Certificates[0].NotAfter
				}
				return m
			}
			expiry := readExpiry()
			waitFor(t, 10*time.Second, "the SVIDs' NotAfter settled after the cut", func() bool {
				time.Sleep(300 * time.Millisecond)
				next, same := readExpiry(), true
				for name, na := range next {
					same = same && na.Equal(expiry[name])
				}
				expiry = next
				return same
			})
			var first, last time.Time
			for _, na := range expiry {
				if first.IsZero() || na.Before(first) {
					first = na
				}
				if na.After(last) {
					last = na
				}
			}
			// Calls keep succeeding while both SVIDs are valid (only calls
			// that ended well before the first expiry count).
			okCalls := 0
			for {
				err := callOK()
				if time.Until(first) < 250*time.Millisecond {
					break
				}
				if err != nil {
					t.Errorf("a call with the CA down but valid SVIDs failed: %v", err)
					break
				}
				okCalls++
				time.Sleep(100 * time.Millisecond)
			}
			t.Logf("%d calls succeeded with the CA down, before the first SVID expired", okCalls)
			time.Sleep(time.Until(last) + 200*time.Millisecond)
			if err := callOK(); err == nil {
				t.Error("a call succeeded after both SVIDs expired with the CA down")
			}
			for name, s := range srcs {
				_, err := s.GetX509SVID()
				if !errors.Is(err, workload.ErrExpired) {
					t.Errorf("%s: GetX509SVID after expiry: %v, want an error wrapping ErrExpired", name, err)
					continue
				}
				msg := err.Error()
				if at := expiry[name].UTC().Format(time.RFC3339); !strings.Contains(msg, at) {
					t.Errorf("%s: the error does not name the expiry %s: %s", name, at, msg)
				}
				want := "bootstrapping again"
				if name == "billing" {
					want = "a new join token is needed"
				}
				if !strings.Contains(msg, want) {
					t.Errorf("%s: the error does not say %q: %s", name, want, msg)
				}
			}

			// The CA comes back: the client-credentials sources recover
			// by themselves (their backoff is at most a few seconds here).
			proxy.setUp(true)
			waitFor(t, 90*time.Second, "payments and orders hold valid SVIDs again", func() bool {
				_, e1 := payments.GetX509SVID()
				_, e2 := orders.GetX509SVID()
				return e1 == nil && e2 == nil
			})
			waitFor(t, 30*time.Second, "orders → payments succeeds again", func() bool { return callOK() == nil })
			for i := range 5 {
				if err := callOK(); err != nil {
					t.Errorf("call %d after the recovery: %v", i, err)
				}
			}
			if _, err := billing.GetX509SVID(); !errors.Is(err, workload.ErrExpired) ||
				!strings.Contains(err.Error(), "a new join token is needed") {
				t.Errorf("the join-token-only source after the CA came back: %v, want expired, needing a new join token", err)
			}
		})
	}
}

// waitFor polls cond every 50ms until it holds, failing the test after
// within.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting until %s", within, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
