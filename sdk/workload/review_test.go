package workload_test

import (
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/gatehouse/gatehouse/sdk/workload"
)

// TestMT03DenyOnGETCoversHEAD: net/http's ServeMux serves HEAD with the
// handler registered for GET, so a deny rule on GET must refuse HEAD too;
// otherwise HEAD /admin runs the GET handler a deny rule was written for.
func TestMT03DenyOnGETCoversHEAD(t *testing.T) {
	p := mustPolicy(t,
		workload.Rule{Name: "shop-all", Effect: "allow", From: []string{shopID.String()}, To: []string{ordersID.String()}},
		workload.Rule{Name: "no-admin-read", Effect: "deny", From: []string{shopID.String()}, To: []string{ordersID.String()},
			Paths: []string{"/admin"}, Methods: []string{"GET"}},
		workload.Rule{Name: "head-only", Effect: "allow", From: []string{paymentsID.String()}, To: []string{ordersID.String()},
			Paths: []string{"/status"}, Methods: []string{"GET"}},
	)
	for _, tc := range []struct {
		name, method, path string
		caller             string
		allow              bool
	}{
		{"MT-03/deny-get", "GET", "/admin", "shop", false},
		{"MT-03/deny-get-covers-head", "HEAD", "/admin", "shop", false},
		{"MT-03/other-method-still-allowed", "POST", "/admin", "shop", true},
		{"MT-03/head-elsewhere-allowed", "HEAD", "/orders", "shop", true},
		// An allow on GET does not widen to HEAD (fail closed).
		{"MT-03/allow-get-not-head", "HEAD", "/status", "payments", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			caller := shopID
			if tc.caller == "payments" {
				caller = paymentsID
			}
			if d := p.Decide(caller, ordersID, tc.method, tc.path); d.Allow != tc.allow {
				t.Fatalf("%s %s: %+v, want allow=%v", tc.method, tc.path, d, tc.allow)
			}
		})
	}
}

// TestMT03DenyPrefixCoversItsRoot: "/admin/*" does not match "/admin/"
// itself (documented, and right for allow rules), but net/http's subtree
// pattern "/admin/" serves exactly that path: a deny rule written as
// ["/admin", "/admin/*"] must refuse "/admin/" too.
func TestMT03DenyPrefixCoversItsRoot(t *testing.T) {
	p := mustPolicy(t,
		workload.Rule{Name: "shop-all", Effect: "allow", From: []string{shopID.String()}, To: []string{ordersID.String()}},
		workload.Rule{Name: "no-admin", Effect: "deny", From: []string{shopID.String()}, To: []string{ordersID.String()},
			Paths: []string{"/admin", "/admin/*"}},
		workload.Rule{Name: "pay-sub", Effect: "allow", From: []string{paymentsID.String()}, To: []string{ordersID.String()},
			Paths: []string{"/orders/*"}},
	)
	for _, tc := range []struct {
		name, path, caller string
		allow              bool
	}{
		{"MT-03/deny-exact", "/admin", "shop", false},
		{"MT-03/deny-sub", "/admin/users", "shop", false},
		{"MT-03/deny-prefix-root", "/admin/", "shop", false},
		{"MT-03/deny-not-sibling", "/admin-x", "shop", true},
		// Allow rules keep the documented meaning: "/orders/" alone is not allowed.
		{"MT-03/allow-prefix-root-stays-closed", "/orders/", "payments", false},
		{"MT-03/allow-prefix-sub", "/orders/1", "payments", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			caller := shopID
			if tc.caller == "payments" {
				caller = paymentsID
			}
			if d := p.Decide(caller, ordersID, "GET", tc.path); d.Allow != tc.allow {
				t.Fatalf("GET %s: %+v, want allow=%v", tc.path, d, tc.allow)
			}
		})
	}
}

// TestMT03MiddlewareServeMuxDeny: the two deny gaps above, end to end through
// Middleware in front of a net/http ServeMux: HEAD reaches the handler
// registered for GET, and the subtree pattern "/admin/" serves "/admin/".
func TestMT03MiddlewareServeMuxDeny(t *testing.T) {
	e := newMTEnv(t)
	pol := &policyHolder{}
	pol.p.Store(mustPolicy(t,
		workload.Rule{Name: "client-all", Effect: "allow", From: []string{clientIDs}, To: []string{serverIDs}},
		workload.Rule{Name: "no-report", Effect: "deny", From: []string{clientIDs}, To: []string{serverIDs},
			Paths: []string{"/report"}, Methods: []string{"GET"}},
		workload.Rule{Name: "no-admin", Effect: "deny", From: []string{clientIDs}, To: []string{serverIDs},
			Paths: []string{"/admin", "/admin/*"}},
	))
	var reached atomic.Int64
	mux := http.NewServeMux()
	count := func(w http.ResponseWriter, r *http.Request) { reached.Add(1) }
	mux.HandleFunc("GET /report", count)
	mux.HandleFunc("/admin/", count)
	mux.HandleFunc("/ok", count)
	url := serveHTTPS(t, mustServerConfig(t, e.source(e.inter.issue(t, nil, serverIDs)), workload.AuthorizePolicy(pol, serverID)),
		workload.Middleware(pol, serverID, mux))
	client := httpsClient(mustClientConfig(t, e.source(e.inter.issue(t, nil, clientIDs)), workload.AuthorizeID(serverID)))
	for _, tc := range []struct {
		name, method, path string
		status             int
	}{
		{"MT-03/allowed", "GET", "/ok", 200},
		{"MT-03/deny-get", "GET", "/report", 403},
		{"MT-03/head-runs-get-handler", "HEAD", "/report", 403},
		{"MT-03/subtree-root", "GET", "/admin/", 403},
		{"MT-03/subtree-child", "GET", "/admin/x", 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := reached.Load()
			req, err := http.NewRequest(tc.method, url+tc.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_ = resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("%s %s: status %d, want %d", tc.method, tc.path, resp.StatusCode, tc.status)
			}
			if tc.status != 200 && reached.Load() != before {
				t.Fatalf("%s %s: denied request reached the handler", tc.method, tc.path)
			}
		})
	}
}
