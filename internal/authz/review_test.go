package authz

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"github.com/gatehouse/gatehouse/internal/authz/decisionlog"
	"github.com/gatehouse/gatehouse/internal/authz/policy"
	"github.com/gatehouse/gatehouse/internal/rebac"
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

// TestDeleteTupleOutsideTheSchema: a tuple the current schema no longer
// accepts (written under an older one) must stay deletable; otherwise it
// cannot be revoked and comes back to life if the schema accepts it again.
func TestDeleteTupleOutsideTheSchema(t *testing.T) {
	e := newEnv(t)
	stale := "order:o-1001#owner@client:orders-svc" // owner accepts only user
	e.write(t, stale)
	write := func(op, tuple string) (int, map[string]any) {
		st, out, _ := e.do(t, "POST", "/relationships", callerToken(t, ScopeWrite),
			map[string]any{"writes": []any{map[string]any{"op": op, "tuple": tuple}}})
		return st, out
	}
	if st, out := write("touch", stale); st != 400 {
		t.Fatalf("touch of a tuple the schema refuses: %d %v", st, out)
	}
	if st, out := write("delete", stale); st != 200 {
		t.Fatalf("delete of a stale tuple: %d %v", st, out)
	}
	ts, _, err := e.store.ReadTuples(context.Background(), 0, storage.TupleFilter{ObjectType: "order", ObjectIDs: []string{"o-1001"},
		Relation: "owner", SubjectType: "client"}, "", 0)
	if err != nil || len(ts) != 0 {
		t.Fatalf("stale tuple still stored: %v %v", ts, err)
	}
	if st, out := write("delete", "order:o-1001#owner@user"); st != 400 {
		t.Fatalf("malformed delete accepted: %d %v", st, out)
	}
}

// panickyReader panics on reads of one relation (a bug in a store or in
// the engine, reached only by the shadow set's relation checks).
type panickyReader struct {
	storage.RelationStore
	relation string
}

func (p panickyReader) ReadTuples(ctx context.Context, at storage.Revision, f storage.TupleFilter, cursor string, limit int) ([]storage.RelationTuple, string, error) {
	if f.Relation == p.relation {
		panic("reader bug")
	}
	return p.RelationStore.ReadTuples(ctx, at, f, cursor, limit)
}

// TestShadowPanicDoesNotChangeTheAnswer: the shadow set "never changes the
// answer", not even when its evaluation panics.
func TestShadowPanicDoesNotChangeTheAnswer(t *testing.T) {
	fsys := fstest.MapFS{}
	for _, name := range []string{"schema.cedarschema", "read.cedar", "pay.cedar", "delete.cedar"} {
		b, err := os.ReadFile("policy/testdata/demo/" + name)
		if err != nil {
			t.Fatal(err)
		}
		if name == "schema.cedarschema" {
			b = []byte(strings.Replace(string(b), "pay: Bool,", "pay: Bool,\n    audit: Bool,", 1))
		}
		fsys[name] = &fstest.MapFile{Data: b}
	}
	shadow, err := policy.LoadFS(fsys)
	if err != nil {
		t.Fatal(err)
	}
	schema := strings.Replace(relSchema, "relation blocked: user", "relation blocked: user\n  relation audit: user", 1)
	e := newEnv(t, func(o *Options) {
		o.Shadow = policy.NewHolder(shadow)
		o.Checker = newCheckerOf(t, schema, panickyReader{o.Store, "audit"}, rebacLimits())
	})
	res := e.svc.Decide(context.Background(), Input{Principal: entity("user", "usr_alice"), Action: "read",
		Resource: orderEntity("o-1001", "open")})
	if !res.Allow {
		t.Fatalf("the shadow set's panic changed the answer: %+v", res)
	}
	entries := e.log.Recent(decisionlog.Filter{Limit: 1})
	if len(entries) != 1 || entries[0].Shadow == nil || !entries[0].Shadow.Disagree || entries[0].Shadow.Reason != "internal error" {
		t.Fatalf("the shadow failure is not logged: %+v", entries)
	}
}

// headFailStore fails HeadRevision while fail is set (a poll that keeps
// failing while reads still work).
type headFailStore struct {
	storage.RelationStore
	fail atomic.Bool
}

func (s *headFailStore) HeadRevision(ctx context.Context) (storage.Revision, error) {
	if s.fail.Load() {
		return 0, errors.New("head unavailable")
	}
	return s.RelationStore.HeadRevision(ctx)
}

// TestStaleHeadWhenPollsFail: when the head poller keeps failing, the known
// head must not stay in use past the freshness bound: a revoked relation
// would otherwise keep allowing (AZ-05).
func TestStaleHeadWhenPollsFail(t *testing.T) {
	var hs *headFailStore
	e := newEnv(t, func(o *Options) {
		o.Freshness = 10 * time.Millisecond
		hs = &headFailStore{RelationStore: o.Store}
		o.Store = hs
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.svc.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	read := func() Result {
		return e.svc.Decide(context.Background(), Input{Principal: entity("user", "usr_alice"), Action: "read",
			Resource: orderEntity("o-1002", "open")})
	}
	if res := read(); !res.Allow {
		t.Fatalf("before: %+v", res)
	}
	hs.fail.Store(true)
	tp, _ := rebac.ParseTuple("order:o-1002#owner@user:usr_alice")
	if _, err := e.store.WriteTuples(context.Background(), []storage.TupleWrite{{Op: storage.TupleDelete, Tuple: tp}}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // ten poll intervals, all failing
	if res := read(); res.Allow {
		t.Fatalf("AZ-05/failing-poll: a revoked relation still allows: %+v", res)
	}
	hs.fail.Store(false)
	deadline := time.Now().Add(10 * time.Second)
	for res := read(); res.Allow || res.Reason == "relation store unavailable"; res = read() {
		if time.Now().After(deadline) {
			t.Fatalf("no recovery after the head is readable again: %+v", res)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
