package authz

import (
	"context"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/authz/policy"
)

// TestStrictDecodingGaps: inputs that the JSON decoder would silently
// rewrite must be refused, not decided on.
func TestStrictDecodingGaps(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct{ name, body, want string }{
		// Two tenants that differ in their bytes would both decode to
		// "acme\uFFFD" and pass the tenant guard as equal.
		{"AZ-01/invalid-utf8-value", "{\"principal\":{\"id\":\"usr_carol\",\"roles\":[\"admin\"],\"tenant\":\"acme\xff\"}," +
			"\"action\":\"read\",\"resource\":{\"type\":\"order\",\"id\":\"o-1001\",\"tenant\":\"acme\xfe\",\"attrs\":{\"status\":\"open\"}}}", "UTF-8"},
		{"AZ-01/invalid-utf8-key", "{\"principal\":{\"id\":\"usr_alice\",\"attrs\":{\"t\xffx\":1}}," +
			"\"action\":\"read\",\"resource\":{\"type\":\"order\",\"id\":\"o-1001\"}}", "UTF-8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, out := e.authorize(t, tc.body)
			if st != 400 || out["allow"] != false {
				t.Fatalf("status %d: %v", st, out)
			}
			if msg, _ := out["error_description"].(string); !strings.Contains(msg, tc.want) {
				t.Fatalf("error %q, want %q", msg, tc.want)
			}
		})
	}
}

// TestTenantGuardEmptyTenant: an empty tenant is not "no tenant": a
// principal claiming tenant "" (or a resource replicated with it) must not
// slip past the guard to another tenant's resource (AZ-02).
func TestTenantGuardEmptyTenant(t *testing.T) {
	e := newEnv(t)
	admin := func(tenant any, inAttrs bool) policy.Entity {
		p := policy.Entity{Type: "user", ID: "usr_carol", Attrs: map[string]any{"roles": []any{"admin"}}}
		if inAttrs {
			p.Attrs["tenant"] = tenant
		} else if tenant != nil {
			p.Attrs["tenant"] = tenant
		}
		return p
	}
	for _, tc := range []struct {
		name      string
		principal policy.Entity
		resource  policy.Entity
	}{
		{"AZ-02/empty-principal-tenant", admin("", false), orderEntity("o-1001", "open")},
		{"AZ-02/empty-principal-tenant-attr", admin("", true), orderEntity("o-1001", "open")},
		{"AZ-02/empty-resource-tenant", admin("globex", false),
			policy.Entity{Type: "order", ID: "o-1001", Attrs: map[string]any{"status": "open", "tenant": ""}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := e.svc.Decide(context.Background(), Input{Principal: tc.principal, Action: "read", Resource: tc.resource})
			if res.Allow || !strings.Contains(res.Reason, "tenant") {
				t.Fatalf("%+v", res)
			}
		})
	}
	// The HTTP form too.
	st, out := e.authorize(t, map[string]any{"principal": principal("usr_carol", "", "admin"), "action": "read",
		"resource": order("o-1001", "acme", "open")})
	if out["allow"] != false {
		t.Fatalf("AZ-02/empty-principal-tenant over HTTP: %d %v", st, out)
	}
}
