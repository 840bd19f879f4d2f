package policy

import (
	"strings"
	"testing"
)

// TestRunTestsTenantGuardLikeTheService: a tenant attribute that is not a
// non-empty string denies before any policy runs, as in the service, so
// that a policy test never reports an allow the service would refuse.
func TestRunTestsTenantGuardLikeTheService(t *testing.T) {
	s := testSet(t)
	for _, tc := range []struct{ name, principal, resource string }{
		{"AZ-02/numeric-principal-tenant", `{type: user, id: u1, roles: [admin], attrs: {tenant: 5}}`, `{type: document, id: d1, tenant: acme, attrs: {status: open}}`},
		{"AZ-02/empty-principal-tenant", `{type: user, id: u1, roles: [admin], attrs: {tenant: ""}}`, `{type: document, id: d1, tenant: acme, attrs: {status: open}}`},
		{"AZ-02/list-resource-tenant", `{type: user, id: u1, roles: [admin], tenant: acme}`, `{type: document, id: d1, attrs: {status: open, tenant: [acme, globex]}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := "cases:\n  - name: x\n    principal: " + tc.principal + "\n    action: view\n    resource: " + tc.resource +
				"\n    expect: {allow: false, reason_contains: tenant}\n"
			res, err := RunTests(s, "t.yaml", []byte(src))
			if err != nil {
				t.Fatal(err)
			}
			if len(res) != 1 || !res[0].Pass || res[0].Got.Allow {
				t.Fatalf("%+v", res)
			}
			if !strings.Contains(res[0].Got.Reason, "tenant attribute must be a string") {
				t.Fatalf("reason %q", res[0].Got.Reason)
			}
		})
	}
}
