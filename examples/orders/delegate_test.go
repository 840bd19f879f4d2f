package orders_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/gatehouse/gatehouse/examples/internal/demotest"
	"github.com/gatehouse/gatehouse/examples/orders"
	"github.com/gatehouse/gatehouse/sdk/authz"
)

// recordingAuthz is a fake authorization service: it answers from a table
// keyed by "action order-id" and records every question and replication.
type recordingAuthz struct {
	mu       sync.Mutex
	allow    map[string]bool
	asked    []authz.Request
	batches  [][]authz.Check
	writes   []authz.RelationshipWrite
	entities map[string]int64 // "order:id" -> last version
}

func (r *recordingAuthz) answer(action string, res authz.Resource) authz.Decision {
	if r.allow[action+" "+res.ID] {
		return authz.Decision{Allow: true, Reason: "permitted by test"}
	}
	return authz.Decision{Reason: "denied by the test policy for " + action + " " + res.ID}
}

func (r *recordingAuthz) Authorize(_ context.Context, q authz.Request) authz.Decision {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.asked = append(r.asked, q)
	return r.answer(q.Action, q.Resource)
}

func (r *recordingAuthz) AuthorizeBatch(_ context.Context, _ authz.Principal, checks []authz.Check) []authz.Decision {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.batches = append(r.batches, checks)
	out := make([]authz.Decision, len(checks))
	for i, c := range checks {
		out[i] = r.answer(c.Action, c.Resource)
	}
	return out
}

func (r *recordingAuthz) WriteRelationships(_ context.Context, w []authz.RelationshipWrite) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.writes = append(r.writes, w...)
	return "7", nil
}

func (r *recordingAuthz) PutEntity(_ context.Context, typ, id string, _ map[string]any, version int64) (bool, string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if version <= r.entities[typ+":"+id] {
		return false, "7", errors.New("test: version went backwards")
	}
	r.entities[typ+":"+id] = version
	return true, "8", nil
}

// TestDelegatedDecisions: with an Authorizer, every fine-grained decision
// is the authorization service's, asked with the caller's token as
// principal and the order's attributes; its reason reaches the caller.
func TestDelegatedDecisions(t *testing.T) {
	m := demotest.NewMinter()
	az := &recordingAuthz{allow: map[string]bool{"read o-2001": true, "read o-1001": true, "read o-1002": true,
		"pay o-1001": true}, entities: map[string]int64{}}
	pay := &fakePayments{status: http.StatusCreated, answer: `{"id":"pay-1"}`}
	ps := httptest.NewServer(pay)
	t.Cleanup(ps.Close)
	svc, err := orders.New(orders.Config{Authenticator: m.Verifier(t, orders.Audience), PaymentsURL: ps.URL,
		PaymentsTransport: propagate(t, ps.URL), Authorizer: az, Relationships: az})
	if err != nil {
		t.Fatal(err)
	}
	if rev, err := svc.Replicate(t.Context()); err != nil || rev != "7" {
		t.Fatalf("replicate: %q %v", rev, err)
	}
	for _, want := range []string{"team:team_usr_alice#manager@user:usr_alice", "team:team_usr_alice#member@user:usr_bob",
		"order:o-2001#owner@user:usr_bob", "order:o-2001#team@team:team_usr_alice", "order:o-1001#owner@user:usr_alice"} {
		if !slices.ContainsFunc(az.writes, func(w authz.RelationshipWrite) bool { return w.Op == "touch" && w.Tuple == want }) {
			t.Errorf("not replicated: %s", want)
		}
	}
	if az.entities["order:o-1001"] != 1 || len(az.entities) != 4 {
		t.Errorf("entity versions %v", az.entities)
	}
	api := httptest.NewServer(svc.Handler())
	t.Cleanup(api.Close)
	f := &fixture{t: t, m: m, api: api, pay: pay}

	// The service's built-in rules would refuse bob reading alice's
	// order; the (test) policy allows read of o-1001 to anyone: the
	// decision is the service's.
	if a := f.do("GET", "/orders/o-1001", "bob"); a.status != 200 {
		t.Fatalf("delegated allow: %d %v", a.status, a.body)
	}
	last := az.asked[len(az.asked)-1]
	if last.Action != orders.ActionRead || last.Resource.Type != orders.ResourceType || last.Resource.ID != "o-1001" ||
		last.Resource.Attrs["status"] != orders.StatusOpen || last.Resource.Attrs["owner"] != "usr_alice" ||
		last.Principal.Token == "" || last.Principal.ID != "" {
		t.Fatalf("question %+v", last)
	}
	// A read the service denies is a 404 (no enumeration).
	if a := f.do("GET", "/orders/o-3001", "alice"); a.status != 404 {
		t.Fatalf("delegated deny: %d", a.status)
	}
	// A delete the service denies is a 403 with its reason.
	a := f.do("DELETE", "/orders/o-2001", "alice")
	if a.status != 403 || !strings.Contains(a.body["error_description"].(string), "denied by the test policy for delete o-2001") {
		t.Fatalf("delete: %d %v", a.status, a.body)
	}
	// Listing asks once, in a batch, for every order of the owner.
	if a := f.do("GET", "/orders?owner=usr_alice", "bob"); a.status != 200 || len(ids(a)) != 2 {
		t.Fatalf("list: %d %v", a.status, a.body)
	}
	if b := az.batches[len(az.batches)-1]; len(b) != 2 || b[0].Resource.ID != "o-1001" || b[1].Resource.ID != "o-1002" {
		t.Fatalf("batch %+v", b)
	}
	// Paying: allowed, the payment replicates the new status (version 2).
	if a := f.do("POST", "/orders/o-1001/pay", "alice"); a.status != 201 {
		t.Fatalf("pay: %d %v", a.status, a.body)
	}
	if az.entities["order:o-1001"] != 2 {
		t.Errorf("payment not replicated: %v", az.entities)
	}
	if a := f.do("POST", "/orders/o-2001/pay", "bob"); a.status != 403 {
		t.Fatalf("pay denied: %d", a.status)
	}
}

// TestDelegatedDeleteReplicates: a delete the service allows removes the
// order's tuples there too.
func TestDelegatedDeleteReplicates(t *testing.T) {
	m := demotest.NewMinter()
	az := &recordingAuthz{allow: map[string]bool{"read o-2001": true, "delete o-2001": true}, entities: map[string]int64{}}
	svc, err := orders.New(orders.Config{Authenticator: m.Verifier(t, orders.Audience), Authorizer: az, Relationships: az})
	if err != nil {
		t.Fatal(err)
	}
	api := httptest.NewServer(svc.Handler())
	t.Cleanup(api.Close)
	f := &fixture{t: t, m: m, api: api}
	if a := f.do("DELETE", "/orders/o-2001", "alice"); a.status != 204 {
		t.Fatalf("delete: %d %v", a.status, a.body)
	}
	got := []string{}
	for _, w := range az.writes {
		got = append(got, w.Op+" "+w.Tuple)
	}
	want := []string{"delete order:o-2001#owner@user:usr_bob", "delete order:o-2001#team@team:team_usr_alice"}
	if !slices.Equal(got, want) {
		t.Fatalf("writes %v, want %v", got, want)
	}
}
