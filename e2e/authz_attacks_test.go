package e2e

import (
	"net/http"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/sdk/authz"
)

// assertAuthzAttacks runs attacker inputs against the authz API of a world
// with real tokens: callers without a token, with a token for another API
// or without the scope, principals whose token is not a principal token,
// and a tenant mismatch (AZ-02).
func assertAuthzAttacks(t *testing.T, w *azWorld, alice string) {
	base := w.authz.URL
	checkOnly := w.authzHTTP(t, authzGatewayApp, "authz:check")
	aliceAsCaller := &http.Client{Transport: azBearer{alice}}
	anon := &http.Client{}
	authorizeBody := map[string]any{"principal": map[string]any{"type": "user", "id": "usr_alice"}, "action": "read",
		"resource": map[string]any{"type": "order", "id": "o-1001"}}
	write := map[string]any{"writes": []map[string]string{{"op": "touch", "tuple": "order:o-1001#owner@user:usr_mallory"}}}
	for _, c := range []struct {
		name   string
		hc     *http.Client
		method string
		path   string
		body   any
		status int
	}{
		{"AZ-auth/no-token", anon, "POST", "/authorize", authorizeBody, http.StatusUnauthorized},
		{"AZ-auth/end-user-token-for-another-api", aliceAsCaller, "POST", "/authorize", authorizeBody, http.StatusUnauthorized},
		{"AZ-auth/end-user-token-cannot-write", aliceAsCaller, "POST", "/relationships", write, http.StatusUnauthorized},
		{"AZ-scope/check-scope-cannot-write", checkOnly, "POST", "/relationships", write, http.StatusForbidden},
		{"AZ-scope/check-scope-cannot-read-changes", checkOnly, "GET", "/changes", nil, http.StatusForbidden},
		{"AZ-scope/check-scope-cannot-push-entities", checkOnly, "PUT", "/entities/order/o-1001",
			map[string]any{"attrs": map[string]any{"status": "shipped"}, "version": 99}, http.StatusForbidden},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := azDo(t, c.hc, c.method, base+c.path, c.body)
			if r.status != c.status {
				t.Fatalf("%s %s: %d, want %d: %.300s", c.method, c.path, r.status, c.status, r.raw)
			}
			if c.path == "/authorize" && r.body["allow"] != false {
				t.Errorf("a refused /authorize without allow false: %s", r.raw)
			}
		})
	}
	t.Run("AZ-scope/nothing-was-written", func(t *testing.T) {
		r := azCheck(t, w.opsHTTP(t), base, "order:o-1001", "view", "user:usr_mallory", "")
		if r.body["allowed"] != false {
			t.Fatalf("mallory owns o-1001: %s", r.raw)
		}
	})

	c := azSDK(t, base, w.opsHTTP(t))
	ctx := t.Context()
	svcTok := w.authzToken(t, authzOpsClient, "authz:check") // for the authz API, not a principal audience
	for _, p := range []struct {
		name   string
		req    authz.Request
		reason string // substring
	}{
		{"AZ-02/tenant-mismatch", authz.Request{Principal: authz.Principal{Token: alice}, Action: "read",
			Resource: authz.Resource{Type: "order", ID: "o-1001", Tenant: "globex"}},
			"principal tenant acme does not match resource tenant globex"},
		{"AZ-03/forged-token-principal", authz.Request{Principal: authz.Principal{Token: alice[:len(alice)-4] + "AAAA"}, Action: "read",
			Resource: authz.Resource{Type: "order", ID: "o-1001"}}, ""},
		{"AZ-03/service-token-is-not-a-principal", authz.Request{Principal: authz.Principal{Token: svcTok}, Action: "read",
			Resource: authz.Resource{Type: "order", ID: "o-1001"}}, ""},
		{"AZ-01/unknown-action", authz.Request{Principal: authz.Principal{Token: alice}, Action: "refund",
			Resource: authz.Resource{Type: "order", ID: "o-1001"}}, ""},
	} {
		t.Run(p.name, func(t *testing.T) {
			d := c.Authorize(ctx, p.req)
			if d.Allow || d.Reason == "" || !strings.Contains(d.Reason, p.reason) {
				t.Fatalf("%+v", d)
			}
		})
	}
}

// azBearer is a transport sending a fixed azBearer token.
type azBearer struct{ token string }

func (b azBearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return http.DefaultTransport.RoundTrip(r)
}
