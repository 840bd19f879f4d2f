package policy

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestAuthorize(t *testing.T) {
	s := testSet(t)
	now := json.Number("1000000")
	cases := []struct {
		name     string
		req      Request
		allow    bool
		policies []string
		reason   string
		errs     int
	}{
		{"RBAC/admin-views", Request{Principal: user("u1", "admin"), Action: "view", Resource: doc("d1", "open")},
			true, []string{"admins-view"}, "permitted by admins-view", 0},
		{"RBAC/no-role-denied", Request{Principal: user("u1", "intern"), Action: "view", Resource: doc("d1", "open")},
			false, nil, "no policy permits view on document", 0},
		{"ABAC/same-tenant-reader", Request{Principal: user("u1", "reader").with("tenant", "acme"), Action: "view",
			Resource: doc("d1", "open").with("tenant", "acme")}, true, []string{"tenant-readers"}, "", 0},
		{"ABAC/other-tenant-reader", Request{Principal: user("u1", "reader").with("tenant", "acme"), Action: "view",
			Resource: doc("d1", "open").with("tenant", "globex")}, false, nil, "", 0},
		{"ABAC/reader-without-tenant", Request{Principal: user("u1", "reader"), Action: "view",
			Resource: doc("d1", "open").with("tenant", "acme")}, false, nil, "", 0},
		{"ABAC/status-draft-editor", Request{Principal: user("u1"), Action: "edit", Resource: doc("d1", "draft"),
			Relations: map[string]bool{"editor": true}}, true, []string{"editors-edit-drafts"}, "", 0},
		{"ABAC/status-final-editor", Request{Principal: user("u1"), Action: "edit", Resource: doc("d1", "final"),
			Relations: map[string]bool{"editor": true}}, false, nil, "no policy permits edit on document", 0},
		{"ReBAC/owner-fact", Request{Principal: user("u1"), Action: "view", Resource: doc("d1", "open"),
			Relations: map[string]bool{"owner": true}}, true, []string{"owner-views"}, "", 0},
		{"ReBAC/absent-fact-is-false", Request{Principal: user("u1"), Action: "view", Resource: doc("d1", "open"),
			Relations: map[string]bool{"editor": true}}, false, nil, "", 0},
		{"ReBAC/nil-relations", Request{Principal: user("u1"), Action: "view", Resource: doc("d1", "open")},
			false, nil, "", 0},
		{"forbid-overrides-permit", Request{Principal: user("u1", "admin"), Action: "view", Resource: doc("d1", "archived"),
			Relations: map[string]bool{"owner": true}}, false, []string{"no-archived"}, "forbidden by no-archived", 0},
		{"AZ-03/step-up-acr", Request{Principal: user("u1").with("acr", "mfa").with("auth_time", json.Number("999900")),
			Action: "approve", Resource: doc("d1", "open").with("amount", json.Number("5000")), Context: map[string]any{"now": now}},
			true, []string{"approve-small-with-step-up"}, "", 0},
		{"AZ-03/step-up-acr-missing", Request{Principal: user("u1").with("auth_time", json.Number("999900")),
			Action: "approve", Resource: doc("d1", "open").with("amount", json.Number("5000")), Context: map[string]any{"now": now}},
			false, nil, "", 0},
		{"AZ-03/step-up-acr-weak", Request{Principal: user("u1").with("acr", "pwd").with("auth_time", json.Number("999900")),
			Action: "approve", Resource: doc("d1", "open").with("amount", json.Number("5000")), Context: map[string]any{"now": now}},
			false, nil, "", 0},
		{"AZ-03/step-up-stale-auth", Request{Principal: user("u1").with("acr", "mfa").with("auth_time", json.Number("1")),
			Action: "approve", Resource: doc("d1", "open").with("amount", json.Number("5000")), Context: map[string]any{"now": now}},
			false, nil, "", 0},
		{"ABAC/amount-too-large", Request{Principal: user("u1").with("acr", "mfa").with("auth_time", json.Number("999900")),
			Action: "approve", Resource: doc("d1", "open").with("amount", json.Number("100001")), Context: map[string]any{"now": now}},
			false, nil, "", 0},
		{"erroring-policy-skipped", Request{Principal: user("u1", "admin").with("level", json.Number("100")), Action: "view",
			Resource: doc("d1", "open")}, true, []string{"admins-view"}, "skipped after an error: overflowing", 1},
		{"erroring-policy-alone-denies", Request{Principal: user("u1").with("level", json.Number("100")), Action: "view",
			Resource: doc("d1", "open")}, false, nil, "skipped after an error: overflowing", 1},
		{"parents/team-member-purges", Request{Principal: user("u1"), Action: "purge",
			Resource: Entity{Type: "folder", ID: "f"}}, false, nil, "", 0},
		{"parents/team-ops-purges", Request{Principal: Entity{Type: "user", ID: "u1", Attrs: map[string]any{"roles": []any{}},
			Parents: []EntityRef{{"team", "ops"}}}, Action: "purge", Resource: Entity{Type: "folder", ID: "f"}},
			true, []string{"team-purges"}, "", 0},
		{"parents/forbid-on-document-purge", Request{Principal: Entity{Type: "user", ID: "u1", Attrs: map[string]any{"roles": []any{}},
			Parents: []EntityRef{{"team", "ops"}}}, Action: "purge", Resource: doc("d", "archived")},
			false, []string{"no-archived"}, "", 0},
		{"undeclared-entity-attrs-dropped", Request{Principal: user("u1", "admin").with("email", "a@example.test").with("nested", map[string]any{}),
			Action: "view", Resource: doc("d1", "open").with("colour", json.Number("3"))}, true, []string{"admins-view"}, "", 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d, err := s.Authorize(tc.req)
			if err != nil {
				t.Fatalf("Authorize: %v", err)
			}
			if d.Allow != tc.allow || !slices.Equal(d.Policies, tc.policies) {
				t.Fatalf("got allow=%t policies=%v (%s), want allow=%t policies=%v", d.Allow, d.Policies, d.Reason, tc.allow, tc.policies)
			}
			if !strings.Contains(d.Reason, tc.reason) || strings.Contains(d.Reason, "\n") {
				t.Errorf("reason %q, want it to contain %q", d.Reason, tc.reason)
			}
			if len(d.Errors) != tc.errs {
				t.Errorf("errors %v, want %d", d.Errors, tc.errs)
			}
			for _, e := range d.Errors {
				if !strings.HasPrefix(e, "overflowing: ") {
					t.Errorf("error %q does not name its policy", e)
				}
			}
			if d.Version != s.Version() || len(d.Version) != 16 {
				t.Errorf("version %q, want %q", d.Version, s.Version())
			}
		})
	}
}

func TestAuthorizeInvalid(t *testing.T) {
	s := testSet(t)
	ok := Request{Principal: user("u1"), Action: "view", Resource: doc("d1", "open")}
	mod := func(f func(r *Request)) Request {
		r := ok
		f(&r)
		return r
	}
	cases := []struct {
		name string
		req  Request
		want string
	}{
		{"AZ-01/unknown-action", mod(func(r *Request) { r.Action = "destroy" }), "does not exist"},
		{"AZ-01/group-action-without-appliesTo", mod(func(r *Request) { r.Action = "admin-ops" }), "applies to no"},
		{"AZ-01/unknown-resource-type", mod(func(r *Request) { r.Resource.Type = "invoice" }), "resource type \"invoice\" is not declared"},
		{"AZ-01/resource-type-not-in-appliesTo", mod(func(r *Request) { r.Resource = Entity{Type: "folder", ID: "f"} }), "resource type \"folder\" is not valid"},
		{"AZ-01/unknown-principal-type", mod(func(r *Request) { r.Principal.Type = "robot" }), "principal type \"robot\" is not declared"},
		{"AZ-01/principal-type-not-in-appliesTo", mod(func(r *Request) { r.Principal = Entity{Type: "team", ID: "t"} }), "principal type \"team\" is not valid"},
		{"AZ-01/wrong-attribute-type", mod(func(r *Request) { r.Resource = doc("d1", "open").with("status", json.Number("3")) }), `attribute "status": expected String, got number`},
		{"AZ-01/wrong-attribute-type-set-element", mod(func(r *Request) { r.Principal = user("u1").with("roles", []any{"a", true}) }), "set element 1"},
		{"AZ-01/wrong-attribute-type-entity-ref", mod(func(r *Request) {
			r.Resource = doc("d1", "open").with("owner", map[string]any{"__entity": map[string]any{"type": "team", "id": "x"}})
		}), "expected entity of type user"},
		{"AZ-01/wrong-nested-record-member", mod(func(r *Request) {
			r.Resource = doc("d1", "open").with("meta", map[string]any{"tags": []any{}, "extra": "x"})
		}), `attribute "extra" is not declared`},
		{"AZ-01/non-integer-number", mod(func(r *Request) { r.Resource = doc("d1", "open").with("amount", json.Number("1.5")) }), "not a 64-bit integer"},
		{"AZ-01/null-attribute", mod(func(r *Request) { r.Resource = doc("d1", "open").with("amount", nil) }), "got null"},
		{"AZ-01/missing-required-attribute", mod(func(r *Request) { r.Resource = Entity{Type: "document", ID: "d1"} }), `missing required attribute "status"`},
		{"AZ-01/missing-required-principal-attribute", mod(func(r *Request) { r.Principal = Entity{Type: "user", ID: "u1"} }), `missing required attribute "roles"`},
		{"AZ-01/missing-required-context", Request{Principal: user("u1"), Action: "approve", Resource: doc("d", "open")}, `missing required attribute "now"`},
		{"AZ-01/undeclared-context-member", Request{Principal: user("u1"), Action: "approve", Resource: doc("d", "open"),
			Context: map[string]any{"now": json.Number("1"), "debug": true}}, `attribute "debug" is not declared`},
		{"AZ-01/context-wrong-type", Request{Principal: user("u1"), Action: "approve", Resource: doc("d", "open"),
			Context: map[string]any{"now": "yesterday"}}, "expected Long"},
		{"AZ-01/context-bad-extension", Request{Principal: user("u1"), Action: "approve", Resource: doc("d", "open"),
			Context: map[string]any{"now": json.Number("1"), "ip": "not-an-ip"}}, "invalid ipaddr"},
		{"AZ-01/forged-relations-in-context", mod(func(r *Request) {
			r.Context = map[string]any{"relations": map[string]any{"owner": true, "editor": true}}
		}), "set by the service"},
		{"AZ-01/undeclared-relation", mod(func(r *Request) { r.Relations = map[string]bool{"admin": true} }), `relation "admin" is not declared`},
		{"AZ-01/relations-for-action-without", Request{Principal: user("u1"), Action: "approve", Resource: doc("d", "open"),
			Context: map[string]any{"now": json.Number("1")}, Relations: map[string]bool{"owner": true}}, "declares no context.relations"},
		{"AZ-01/bad-parent-type", mod(func(r *Request) { r.Principal.Parents = []EntityRef{{"folder", "f"}} }), "invalid parent type \"folder\""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d, err := s.Authorize(tc.req)
			if !errors.Is(err, ErrInvalidRequest) {
				t.Fatalf("err = %v (decision %+v), want ErrInvalidRequest", err, d)
			}
			if d.Allow {
				t.Fatal("an invalid request must not be allowed")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %q, want it to contain %q", err, tc.want)
			}
		})
	}
	if _, err := s.Authorize(ok); err != nil {
		t.Fatalf("baseline request: %v", err)
	}
}

func TestRelations(t *testing.T) {
	s := testSet(t)
	cases := map[string][]string{"view": {"editor", "owner"}, "edit": {"editor", "owner"}, "approve": nil, "purge": nil, "nope": nil}
	for action, want := range cases {
		if got := s.Relations(action); !slices.Equal(got, want) {
			t.Errorf("Relations(%q) = %v, want %v", action, got, want)
		}
	}
	got := s.Relations("view")
	got[0] = "mutated"
	if s.Relations("view")[0] != "editor" {
		t.Error("Relations returns the set's own slice")
	}
	demo := loadDemo(t)
	if got := demo.Relations("read"); !slices.Equal(got, []string{"delete", "pay", "view"}) {
		t.Errorf("demo Relations(read) = %v", got)
	}
}

// TestAuthorizeTwice checks that a set is not changed by evaluation (the
// service evaluates the active and shadow sets on the same input).
func TestAuthorizeTwice(t *testing.T) {
	s := testSet(t)
	req := Request{Principal: user("u1", "admin"), Action: "view", Resource: doc("d1", "open"),
		Relations: map[string]bool{"owner": true}}
	a, errA := s.Authorize(req)
	b, errB := s.Authorize(req)
	if errA != nil || errB != nil || a.Reason != b.Reason || !slices.Equal(a.Policies, b.Policies) {
		t.Fatalf("two evaluations differ: %+v %v / %+v %v", a, errA, b, errB)
	}
	if !slices.Equal(a.Policies, []string{"admins-view", "owner-views"}) {
		t.Fatalf("policies = %v", a.Policies)
	}
}

func TestContextWithRelations(t *testing.T) {
	s := mustLoad(t, map[string]string{
		"schema.cedarschema": `entity u { roles: Set<String> };
action small appliesTo { principal: u, resource: u, context: { now?: Long, relations: { a: Bool, b: Bool } } };
action big appliesTo { principal: u, resource: u, context: { now: Long, relations: { r0: Bool, r1: Bool, r2: Bool, r3: Bool, r4: Bool, r5: Bool, r6: Bool } } };`,
		"p.cedar": `@id("small-b") permit (principal, action == Action::"small", resource) when { context.relations.b && (if context has now then context.now > 5 else true) };
@id("big-r6") permit (principal, action == Action::"big", resource) when { context.relations.r6 && !context.relations.r0 && context.now > 5 };`,
	})
	p := Entity{Type: "u", ID: "x", Attrs: map[string]any{"roles": []any{}}}
	cases := []struct {
		name   string
		action string
		ctx    map[string]any
		rel    map[string]bool
		allow  bool
		errStr string
	}{
		{"precomputed-empty-context", "small", nil, map[string]bool{"b": true}, true, ""},
		{"precomputed-false", "small", nil, map[string]bool{"a": true, "b": false}, false, ""},
		{"precomputed-with-context", "small", map[string]any{"now": int64(9)}, map[string]bool{"b": true}, true, ""},
		{"precomputed-with-context-deny", "small", map[string]any{"now": int64(1)}, map[string]bool{"b": true}, false, ""},
		{"precomputed-undeclared", "small", nil, map[string]bool{"c": true}, false, `relation "c" is not declared`},
		{"many-relations", "big", map[string]any{"now": int64(9)}, map[string]bool{"r6": true}, true, ""},
		{"many-relations-false", "big", map[string]any{"now": int64(9)}, map[string]bool{"r6": true, "r0": true}, false, ""},
		{"many-relations-undeclared", "big", map[string]any{"now": int64(9)}, map[string]bool{"r7": true}, false, `relation "r7" is not declared`},
		{"many-relations-missing-context", "big", nil, map[string]bool{"r6": true}, false, `missing required attribute "now"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d, err := s.Authorize(Request{Principal: p, Action: tc.action, Resource: p, Context: tc.ctx, Relations: tc.rel})
			if tc.errStr != "" {
				if !errors.Is(err, ErrInvalidRequest) || !strings.Contains(err.Error(), tc.errStr) {
					t.Fatalf("err = %v, want %q", err, tc.errStr)
				}
				return
			}
			if err != nil || d.Allow != tc.allow {
				t.Fatalf("got %+v, %v; want allow=%t", d, err, tc.allow)
			}
		})
	}
	if got := s.Relations("big"); len(got) != 7 || got[0] != "r0" {
		t.Fatalf("Relations(big) = %v", got)
	}
}

func TestNilSet(t *testing.T) {
	var s *Set
	if _, err := s.Authorize(Request{}); !errors.Is(err, ErrNoPolicySet) {
		t.Fatalf("err = %v", err)
	}
	if s.Version() != "" || s.Len() != 0 || s.Relations("read") != nil {
		t.Fatal("nil set is not empty")
	}
}

func TestNamespacedSchema(t *testing.T) {
	s := mustLoad(t, map[string]string{
		"schema.cedarschema": `namespace Shop { entity u { roles: Set<String> }; action a, "g"; action b in ["g"] appliesTo { principal: u, resource: u }; }`,
		"p.cedar":            `@id("p") permit (principal, action in Shop::Action::"g", resource) when { principal.roles.contains("x") };`,
	})
	p := Entity{Type: "Shop::u", ID: "1", Attrs: map[string]any{"roles": []any{"x"}}}
	d, err := s.Authorize(Request{Principal: p, Action: `Shop::Action::"b"`, Resource: p})
	if err != nil || !d.Allow || !slices.Equal(d.Policies, []string{"p"}) {
		t.Fatalf("%+v, %v", d, err)
	}
	if _, err := s.Authorize(Request{Principal: p, Action: "b", Resource: p}); !errors.Is(err, ErrInvalidRequest) {
		t.Fatalf("bare id of a namespaced action: %v", err)
	}
}
