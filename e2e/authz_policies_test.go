package e2e

import (
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/sdk/authz"
)

var azPolicyVersionRE = regexp.MustCompile(`^[0-9a-f]{16}$`)

// TestAuthzPolicyHotReload edits the policy directory of a running service:
// a changed set is applied within a few reload intervals (azDecisions carry
// its version and its answer), a broken set is logged and never replaces
// the running one, and restoring the files restores the first version.
func TestAuthzPolicyHotReload(t *testing.T) {
	const every = 100 * time.Millisecond
	const within = 10 * time.Second // many intervals: a loaded CI machine
	az := newAuthzEnv(t, "sqlite", "file:"+filepath.Join(t.TempDir(), "gatehouse.db"), azSetup{reload: every})
	ops := az.opsHTTP(t)
	c := azSDK(t, az.authz.URL, ops)
	ctx := t.Context()
	rev, err := c.WriteRelationships(ctx, []authz.RelationshipWrite{{Op: "touch", Tuple: "order:o-h#owner@user:usr_h"}})
	if err != nil {
		t.Fatal(err)
	}
	pay := func() authz.Decision {
		d := c.Authorize(ctx, authz.Request{Principal: authz.Principal{Type: "user", ID: "usr_h"}, Action: "pay",
			Resource: authz.Resource{Type: "order", ID: "o-h"}, AtLeastAsFresh: rev})
		if d.Err != nil {
			t.Fatalf("decision: %v", d.Err)
		}
		return d
	}
	file := filepath.Join(az.files.policies, "orders.cedar")
	orig, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	d0 := pay()
	v0 := d0.PolicyVersion
	if !d0.Allow || !slices.Equal(d0.Policies, []string{"owner-pays"}) || !azPolicyVersionRE.MatchString(v0) {
		t.Fatalf("before any change: %+v", d0)
	}

	frozen := string(orig) + "\n@id(\"payments-frozen\")\nforbid (principal, action == Action::\"pay\", resource is order);\n"
	var v1 string
	t.Run("changed-policy-applied", func(t *testing.T) {
		azWriteFile(t, file, frozen)
		took := azEventually(t, within, "the changed policy answering", func() bool { return pay().PolicyVersion != v0 })
		t.Logf("applied after %s (interval %s)", took, every)
		d := pay()
		v1 = d.PolicyVersion
		if d.Allow || !slices.Equal(d.Policies, []string{"payments-frozen"}) || !azPolicyVersionRE.MatchString(v1) {
			t.Fatalf("after the change: %+v", d)
		}
		found := false
		for _, e := range azDecisions(t, ops, az.authz.URL, url.Values{"principal": {"usr_h"}, "action": {"pay"}}) {
			if str(e["policy_version"]) == v1 && e["allow"] == false && slices.Equal(azStrs(e["policies"]), []string{"payments-frozen"}) {
				found = true
			}
		}
		if !found {
			t.Error("the decision log has no decision of the new version")
		}
	})
	t.Run("broken-policy-keeps-the-running-set", func(t *testing.T) {
		if v1 == "" {
			t.Fatal("the changed policy was never applied")
		}
		azWriteFile(t, file, frozen+"\npermit (principal, action == Action::\"refund\", resource is order);\n")
		azEventually(t, within, "the rejection logged", func() bool {
			return strings.Contains(az.Logs.String(), "authorization policies rejected")
		})
		time.Sleep(3 * every) // a few more reads of the broken set
		if d := pay(); d.PolicyVersion != v1 || d.Allow {
			t.Fatalf("a broken set replaced the running one: %+v", d)
		}
	})
	t.Run("restored-policy-restores-the-version", func(t *testing.T) {
		azWriteFile(t, file, string(orig))
		azEventually(t, within, "the restored policy answering", func() bool { return pay().PolicyVersion == v0 })
		if d := pay(); !d.Allow {
			t.Fatalf("after restoring: %+v", d)
		}
	})
}

// TestAuthzShadowDisagreement runs gatehouse dev's candidate set in shadow:
// managers no longer read their team's orders there. When alice (bob's
// manager) reads bob's order the sets disagree: the answer is the active
// set's, the disagreement is counted on /metrics and logged with both
// results.
func TestAuthzShadowDisagreement(t *testing.T) {
	const metric = "gatehouse_authz_shadow_disagreements_total"
	az := newAuthzEnv(t, "sqlite", "file:"+filepath.Join(t.TempDir(), "gatehouse.db"), azSetup{shadow: true, metrics: true})
	ops := az.opsHTTP(t)
	c := azSDK(t, az.authz.URL, ops)
	ctx := t.Context()
	rev, err := c.WriteRelationships(ctx, []authz.RelationshipWrite{{Op: "touch", Tuple: "order:o-s#owner@user:usr_bob"},
		{Op: "touch", Tuple: "order:o-s#team@team:tm"}, {Op: "touch", Tuple: "team:tm#manager@user:usr_alice"}})
	if err != nil {
		t.Fatal(err)
	}
	read := func(who string) authz.Decision {
		d := c.Authorize(ctx, authz.Request{Principal: authz.Principal{Type: "user", ID: who}, Action: "read",
			Resource: authz.Resource{Type: "order", ID: "o-s"}, AtLeastAsFresh: rev})
		if d.Err != nil {
			t.Fatalf("decision: %v", d.Err)
		}
		return d
	}
	m0 := azMetricSum(t, az.admin, metric)
	t.Run("agreement-is-not-counted", func(t *testing.T) {
		if d := read("usr_bob"); !d.Allow {
			t.Fatalf("bob reads his order: %+v", d)
		}
		if m := azMetricSum(t, az.admin, metric); m != m0 {
			t.Fatalf("%s went from %v to %v on an agreement", metric, m0, m)
		}
	})
	t.Run("disagreement-answers-active-and-is-counted", func(t *testing.T) {
		d := read("usr_alice")
		if !d.Allow || !slices.Equal(d.Policies, []string{"owner-or-team-manager-reads"}) {
			t.Fatalf("the answer is not the active set's: %+v", d)
		}
		if m := azMetricSum(t, az.admin, metric); m != m0+1 {
			t.Fatalf("%s went from %v to %v, want +1", metric, m0, m)
		}
		logged := azDecisions(t, ops, az.authz.URL, url.Values{"principal": {"usr_alice"}, "disagreements": {"true"}})
		if len(logged) != 1 {
			t.Fatalf("%d disagreements logged, want 1", len(logged))
		}
		e := logged[0]
		sh, _ := e["shadow"].(map[string]any)
		if e["allow"] != true || sh["disagree"] != true || sh["allow"] != false || str(e["decision_id"]) != d.DecisionID {
			t.Fatalf("logged disagreement: %v", e)
		}
		if str(sh["reason"]) == "" || str(sh["version"]) == "" || str(sh["version"]) == d.PolicyVersion {
			t.Errorf("shadow result lacks its own reason or version: %v", sh)
		}
		bob := azDecisions(t, ops, az.authz.URL, url.Values{"principal": {"usr_bob"}})
		if len(bob) != 1 {
			t.Fatalf("%d decisions of bob", len(bob))
		}
		if sh, _ := bob[0]["shadow"].(map[string]any); sh == nil || sh["allow"] != true || sh["disagree"] == true {
			t.Errorf("bob's agreement: shadow %v", bob[0]["shadow"])
		}
	})
}
