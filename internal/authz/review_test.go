package authz

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/authz/policy"
	"github.com/gatehouse/gatehouse/internal/storage"
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

// TestReloadDuringDecisions swaps the policy set and the relationship
// schema while decisions run (go test -race): every answer is one of the
// two sets' and a known allow stays an allow.
func TestReloadDuringDecisions(t *testing.T) {
	e := newEnv(t)
	set := e.opts.Policies.Load()
	schema := e.opts.Checker.Schema()
	done := make(chan struct{})
	var reloader, wg sync.WaitGroup
	reloader.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			e.opts.Policies.Swap(set)
			e.opts.Checker.SetSchema(schema)
			time.Sleep(100 * time.Microsecond)
		}
	})
	for range 4 {
		wg.Go(func() {
			for range 10 {
				res := e.svc.Decide(context.Background(), Input{Principal: entity("user", "usr_alice"), Action: "read",
					Resource: orderEntity("o-1001", "open")})
				if !res.Allow || res.PolicyVersion != set.Version() {
					t.Errorf("%+v", res)
					return
				}
				res = e.svc.Decide(context.Background(), Input{Principal: entity("user", "usr_bob"), Action: "delete",
					Resource: orderEntity("o-1001", "open")})
				if res.Allow {
					t.Errorf("bob deletes alice's order: %+v", res)
					return
				}
			}
		})
	}
	wg.Wait()
	close(done)
	reloader.Wait()
}

// slowHeadStore answers its first HeadRevision with the head read before
// it blocks, like a query whose snapshot predates a concurrent commit.
type slowHeadStore struct {
	storage.RelationStore
	once    sync.Once
	started chan struct{}
	release chan struct{}
}

func (s *slowHeadStore) HeadRevision(ctx context.Context) (storage.Revision, error) {
	h, err := s.RelationStore.HeadRevision(ctx)
	first := false
	s.once.Do(func() { first = true })
	if first {
		close(s.started)
		<-s.release
	}
	return h, err
}

// TestConsistencyTokenJoinsNoStaleRefresh: a consistency token for a write
// that committed while a head poll was in flight must not be answered
// "from the future" because the request joined that older poll (AZ-05).
func TestConsistencyTokenJoinsNoStaleRefresh(t *testing.T) {
	var slow *slowHeadStore
	e := newEnv(t, func(o *Options) {
		slow = &slowHeadStore{RelationStore: o.Store, started: make(chan struct{}), release: make(chan struct{})}
		o.Store = slow
	})
	pollDone := make(chan struct{})
	go func() {
		defer close(pollDone)
		_, _ = e.svc.rev.refresh(context.Background())
	}()
	<-slow.started
	rev := e.write(t, "order:o-3001#owner@user:usr_carol") // commits after the poll's read
	type answer struct {
		r   storage.Revision
		err error
	}
	got := make(chan answer, 1)
	go func() {
		r, err := e.svc.rev.at(context.Background(), rev)
		got <- answer{r, err}
	}()
	// Let the request join the poll still in flight, then let the poll end.
	time.Sleep(20 * time.Millisecond)
	close(slow.release)
	<-pollDone
	a := <-got
	if a.err != nil || a.r < rev {
		t.Fatalf("AZ-05/token-after-poll: at(%d) = %d, %v", rev, a.r, a.err)
	}
}

// TestScopeMatrix: every endpoint needs a token, and exactly its scope.
func TestScopeMatrix(t *testing.T) {
	e := newEnv(t)
	authorize := map[string]any{"principal": principal("usr_alice", "acme"), "action": "read", "resource": order("o-1001", "acme", "open")}
	endpoints := []struct {
		method, path, scope string
		body                any
	}{
		{"POST", "/authorize", ScopeCheck, authorize},
		{"POST", "/authorize/batch", ScopeCheck, map[string]any{"principal": principal("usr_alice", "acme"),
			"checks": []any{map[string]any{"action": "read", "resource": order("o-1001", "acme", "open")}}}},
		{"POST", "/relationships", ScopeWrite, map[string]any{"writes": []any{map[string]any{"op": "touch", "tuple": "order:o-9#owner@user:usr_alice"}}}},
		{"GET", "/relationships?object_type=order", ScopeRead, nil},
		{"POST", "/relationships/check", ScopeCheck, map[string]any{"object": "order:o-1001", "permission": "view", "subject": "user:usr_alice"}},
		{"POST", "/relationships/expand", ScopeCheck, map[string]any{"object": "order:o-1001", "permission": "view"}},
		{"POST", "/relationships/objects", ScopeCheck, map[string]any{"object_type": "order", "permission": "view", "subject": "user:usr_alice"}},
		{"POST", "/relationships/subjects", ScopeCheck, map[string]any{"object": "order:o-1001", "permission": "view", "subject_type": "user"}},
		{"PUT", "/entities/order/o-1001", ScopeWrite, map[string]any{"attrs": map[string]any{"status": "open"}, "version": 1}},
		{"DELETE", "/entities/order/o-1001?version=2", ScopeWrite, nil},
		{"GET", "/changes", ScopeRead, nil},
		{"GET", "/decisions", ScopeAudit, nil},
	}
	scopes := []string{ScopeCheck, ScopeWrite, ScopeRead, ScopeAudit}
	for _, ep := range endpoints {
		t.Run(ep.method+ep.path, func(t *testing.T) {
			if st, out, _ := e.do(t, ep.method, ep.path, "", ep.body); st != 401 {
				t.Fatalf("no token: %d %v", st, out)
			}
			for _, sc := range scopes {
				st, out, _ := e.do(t, ep.method, ep.path, callerToken(t, sc), ep.body)
				if sc == ep.scope && st != 200 || sc != ep.scope && st != 403 {
					t.Fatalf("scope %s: %d %v", sc, st, out)
				}
			}
		})
	}
}
