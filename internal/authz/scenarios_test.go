package authz

import (
	"net/http"
	"slices"
	"strings"
	"testing"
)

// relationsOf returns the "relations" member of a decision.
func relationsOf(out map[string]any) []map[string]any {
	var rs []map[string]any
	l, _ := out["relations"].([]any)
	for _, r := range l {
		rs = append(rs, r.(map[string]any))
	}
	return rs
}

func policiesOf(out map[string]any) []string {
	var ps []string
	l, _ := out["policies"].([]any)
	for _, p := range l {
		ps = append(ps, p.(string))
	}
	return ps
}

func TestAliceScenarios(t *testing.T) {
	e := newEnv(t)
	cases := []struct {
		name      string
		principal map[string]any
		action    string
		resource  map[string]any
		allow     bool
		policy    string // a determining policy, when set
		reason    string // a reason fragment, when set
	}{
		{"alice reads her order", principal("usr_alice", "acme"), "read", order("o-1001", "acme", "open"), true, "owner-or-team-manager-reads", ""},
		{"alice reads bob's order as his team manager", principal("usr_alice", "acme"), "read", order("o-2001", "acme", "open"), true, "owner-or-team-manager-reads", ""},
		{"bob cannot read alice's order", principal("usr_bob", "acme"), "read", order("o-1001", "acme", "open"), false, "", "no policy permits read on order"},
		{"carol the admin reads", principal("usr_carol", "globex", "admin"), "read", order("o-3001", "globex", "open"), true, "admins-read-and-list", ""},
		{"alice cannot delete her shipped order", principal("usr_alice", "acme"), "delete", order("o-1002", "acme", "shipped"), false, "shipped-orders-are-never-deleted", "forbidden"},
		{"carol the admin cannot delete a shipped order", principal("usr_carol", "globex", "admin"), "delete", order("o-3002", "globex", "shipped"), false, "shipped-orders-are-never-deleted", "forbidden"},
		{"alice deletes her open order", principal("usr_alice", "acme"), "delete", order("o-1002", "acme", "open"), true, "owner-deletes", ""},
		{"the owner pays", principal("usr_alice", "acme"), "pay", order("o-1001", "acme", "open"), true, "owner-in-team-pays-unpaid", ""},
		{"a team member who is not the owner does not pay", principal("usr_bob", "acme"), "pay", order("o-1001", "acme", "open"), false, "", "no policy permits pay"},
		{"the manager does not pay", principal("usr_alice", "acme"), "pay", order("o-2001", "acme", "open"), false, "", "no policy permits pay"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st, out := e.authorize(t, map[string]any{"principal": tc.principal, "action": tc.action, "resource": tc.resource})
			if st != http.StatusOK {
				t.Fatalf("status %d: %v", st, out)
			}
			if out["allow"] != tc.allow {
				t.Fatalf("allow = %v, want %v (reason %v)", out["allow"], tc.allow, out["reason"])
			}
			if tc.policy != "" && !slices.Contains(policiesOf(out), tc.policy) {
				t.Errorf("policies = %v, want %s", out["policies"], tc.policy)
			}
			if tc.reason != "" && !strings.Contains(out["reason"].(string), tc.reason) {
				t.Errorf("reason = %q, want it to contain %q", out["reason"], tc.reason)
			}
			id, _ := out["decision_id"].(string)
			if !strings.HasPrefix(id, "dec_") || len(id) != 30 {
				t.Errorf("decision_id = %q", id)
			}
			if out["policy_version"] == "" || out["revision"] == "0" {
				t.Errorf("policy_version %v, revision %v", out["policy_version"], out["revision"])
			}
		})
	}
}

func TestManagerPathIsShown(t *testing.T) {
	e := newEnv(t)
	_, out := e.authorize(t, map[string]any{"principal": principal("usr_alice", "acme"), "action": "read",
		"resource": order("o-2001", "acme", "open")})
	rs := relationsOf(out)
	var view map[string]any
	for _, r := range rs {
		if r["check"] == "order:o-2001#view@user:usr_alice" {
			view = r
		}
	}
	if view == nil || view["allowed"] != true {
		t.Fatalf("relations = %v", out["relations"])
	}
	path := strings.Join(func() (p []string) {
		for _, s := range view["path"].([]any) {
			p = append(p, s.(string))
		}
		return
	}(), " ")
	if !strings.Contains(path, "order:o-2001#team@team:eng") || !strings.Contains(path, "team:eng#manager@user:usr_alice") {
		t.Fatalf("path = %q", path)
	}
}
