package e2e

import (
	"fmt"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/sdk/authz"
)

// TestAuthzFreshnessAcrossReplicas runs two replicas of the authorization
// service on one PostgreSQL database (AZ-05): a change written through A is
// reflected by B within authz.relations.freshness without any token, and at
// once when B is asked with A's revision token.
func TestAuthzFreshnessAcrossReplicas(t *testing.T) {
	const freshness = 200 * time.Millisecond
	// Generous: a loaded 2-core CI machine under -race. The bound still
	// fails a replica that only sees writes made through itself.
	const slack = 2 * time.Second
	var pg backend
	for _, b := range backends {
		if b.name == "postgres" {
			pg = b
		}
	}
	driver, dsn := pg.dsn(t)
	a := newAuthzEnv(t, driver, dsn, azSetup{freshness: freshness})
	b := a.replica(t)
	bAuthz := b.serveAuthz(t)
	ops := a.opsHTTP(t)
	ca := azSDK(t, a.authz.URL, ops)
	cb := azSDK(t, bAuthz.URL, ops)
	ctx := t.Context()

	visibleOnB := func(subject string) bool {
		// Not azCheck: before B's head moves past revision 0 its checks
		// answer 400 (the bug TestAuthzRelationshipsAPI's
		// AZ-05/empty-store-check-answers-false reports).
		r := azDo(t, ops, "POST", bAuthz.URL+"/relationships/check",
			map[string]any{"object": "order:o-r", "permission": "view", "subject": subject})
		return r.status == 200 && r.body["allowed"] == true
	}
	// Something written, so that both replicas have a head revision.
	if _, err := ca.WriteRelationships(ctx, []authz.RelationshipWrite{{Op: "touch", Tuple: "order:o-r#owner@user:usr_seed"}}); err != nil {
		t.Fatal(err)
	}
	azEventually(t, freshness+slack, "B reflecting the first write", func() bool { return visibleOnB("user:usr_seed") })
	t.Run("AZ-05/write-elsewhere-visible-within-freshness", func(t *testing.T) {
		for i := range 3 {
			subject := fmt.Sprintf("user:usr_r%d", i)
			if visibleOnB(subject) {
				t.Fatalf("%s sees order:o-r before the write", subject)
			}
			if _, err := ca.WriteRelationships(ctx, []authz.RelationshipWrite{{Op: "touch", Tuple: "order:o-r#owner@" + subject}}); err != nil {
				t.Fatal(err)
			}
			took := azEventually(t, freshness+slack, "B reflecting A's write", func() bool { return visibleOnB(subject) })
			t.Logf("write %d reflected on B after %s", i, took)
		}
		if _, err := ca.WriteRelationships(ctx, []authz.RelationshipWrite{{Op: "delete", Tuple: "order:o-r#owner@user:usr_r0"}}); err != nil {
			t.Fatal(err)
		}
		azEventually(t, freshness+slack, "B reflecting A's delete", func() bool { return !visibleOnB("user:usr_r0") })
	})
	t.Run("AZ-05/with-As-token-B-answers-at-once", func(t *testing.T) {
		for i := range 3 {
			subject := fmt.Sprintf("user:usr_t%d", i)
			rev, err := ca.WriteRelationships(ctx, []authz.RelationshipWrite{{Op: "touch", Tuple: "order:o-t#owner@" + subject}})
			if err != nil {
				t.Fatal(err)
			}
			if r := azCheck(t, ops, bAuthz.URL, "order:o-t", "view", subject, rev); r.body["allowed"] != true {
				t.Fatalf("B with A's revision %s: %s", rev, r.raw)
			}
			d := cb.Authorize(ctx, authz.Request{Principal: authz.Principal{Type: "user", ID: subject[len("user:"):]}, Action: "pay",
				Resource: authz.Resource{Type: "order", ID: "o-t"}, AtLeastAsFresh: rev})
			if d.Err != nil || !d.Allow || azRevNum(t, d.Revision) < azRevNum(t, rev) {
				t.Fatalf("B's decision with A's revision %s: %+v", rev, d)
			}
		}
	})
	t.Run("AZ-05/token-from-the-future-refused", func(t *testing.T) {
		r := azDo(t, ops, "POST", bAuthz.URL+"/relationships/check", map[string]any{"object": "order:o-t", "permission": "view",
			"subject": "user:usr_t0", "consistency": map[string]any{"at_least_as_fresh": "999999999"}})
		if r.status != 400 {
			t.Fatalf("a revision from the future: %d %s", r.status, r.raw)
		}
	})
}
