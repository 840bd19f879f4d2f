package e2e

import (
	"errors"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/sdk/authz"
)

// TestAuthzFailClosed stops the authorization service under a running
// world: orders (through sdk/authz) and the gateway's delegate rule refuse
// with a reason instead of deciding alone, and a service that hangs is
// treated the same once the client's timeout passes.
func TestAuthzFailClosed(t *testing.T) {
	az := newAuthzEnv(t, "sqlite", "file:"+filepath.Join(t.TempDir(), "gatehouse.db"), azSetup{})
	w := startAzWorld(t, az)
	alice, bob := w.alice.login(t, "alice"), w.alice.login(t, "bob")
	w.waitPrincipals(t, alice)

	// While the service runs: answers come from it.
	if r := call(t, "GET", w.ordersURL+"/orders/o-1002", alice, ""); r.status != http.StatusOK {
		t.Fatalf("alice reads her order while the service runs: %d %.200s", r.status, r.raw)
	}
	r := call(t, "DELETE", w.gw.URL+"/orders/o-1001", bob, "")
	if r.status != http.StatusForbidden || str(r.body["error_description"]) == authz.UnavailableReason {
		t.Fatalf("bob deleting alice's order while the service runs: %d %.200s", r.status, r.raw)
	}

	az.authz.Close() // the service is gone: connections refused

	cases := []struct {
		name, method, base, path string
		status                   int
		reason                   string // "": not checked
	}{
		{"AZ-fail-closed/orders-read-is-not-found", "GET", w.ordersURL, "/orders/o-1001", http.StatusNotFound, ""},
		{"AZ-fail-closed/orders-list-refused-with-reason", "GET", w.ordersURL, "/orders", http.StatusForbidden, authz.UnavailableReason},
		{"AZ-fail-closed/gateway-delegate-refuses", "DELETE", w.gw.URL, "/orders/o-1001", http.StatusForbidden, authz.UnavailableReason},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := w.ordersLog.count()
			r := call(t, c.method, c.base+c.path, alice, "")
			if r.status != c.status {
				t.Fatalf("%s %s: %d, want %d: %.300s", c.method, c.path, r.status, c.status, r.raw)
			}
			if c.reason != "" && str(r.body["error_description"]) != c.reason {
				t.Errorf("error_description %q, want %q", r.body["error_description"], c.reason)
			}
			if c.base == w.gw.URL {
				if r.body["error"] != "access_denied" {
					t.Errorf("error %v", r.body["error"])
				}
				if n := w.ordersLog.count() - before; n != 0 {
					t.Errorf("orders was called %d times", n)
				}
			}
		})
	}

	t.Run("AZ-fail-closed/hanging-service-times-out-to-deny", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		go func() { // accept and never answer
			var held []net.Conn
			defer func() {
				for _, c := range held {
					c.Close()
				}
			}()
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				held = append(held, c)
			}
		}()
		c, err := authz.New(authz.Config{URL: "http://" + ln.Addr().String(), HTTPClient: az.opsHTTP(t),
			Timeout: 200 * time.Millisecond, CacheTTL: -1})
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		d := c.Authorize(t.Context(), authz.Request{Principal: authz.Principal{Token: alice}, Action: "read",
			Resource: authz.Resource{Type: "order", ID: "o-1001"}})
		if d.Allow || !errors.Is(d.Err, authz.ErrUnavailable) || !strings.Contains(d.Reason, "unavailable") {
			t.Fatalf("a hanging service: %+v", d)
		}
		if took := time.Since(start); took > 3*time.Second {
			t.Errorf("the deny took %s with a 200ms timeout", took)
		}
	})
}
