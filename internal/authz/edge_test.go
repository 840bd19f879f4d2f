package authz

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/authz/policy"
	"github.com/gatehouse/gatehouse/internal/storage"
	"github.com/gatehouse/gatehouse/sdk/auth"
)

func TestEmptyStoreRelationsAreFalse(t *testing.T) {
	e := newEnvWith(t, nil)
	// Revision 0: no tuple exists, so facts are false without a check;
	// the admin policy still decides.
	_, out := e.authorize(t, map[string]any{"principal": principal("usr_alice", "acme"), "action": "read",
		"resource": order("o-1001", "acme", "open")})
	if out["allow"] != false || !strings.Contains(out["reason"].(string), "no policy permits") || out["revision"] != "0" {
		t.Fatalf("%v", out)
	}
	_, out = e.authorize(t, map[string]any{"principal": principal("usr_carol", "acme", "admin"), "action": "read",
		"resource": order("o-1001", "acme", "open")})
	if out["allow"] != true {
		t.Fatalf("%v", out)
	}
}

func TestPrincipalTypeUnknownToRelations(t *testing.T) {
	// A relationship schema without "client": a client principal has no
	// relation (provably false), yet role policies still apply.
	noClient := strings.Replace(relSchema, "definition client {}", "", 1)
	e := newEnv(t, func(o *Options) { o.Checker = newCheckerOf(t, noClient, o.Store, rebacLimits()) })
	tok := userToken(t, "svc-admin", map[string]any{"client_id": "svc-admin", "roles": []string{"admin"}, "tenant": "acme"})
	_, out := e.authorize(t, map[string]any{"principal": map[string]any{"token": tok}, "action": "read", "resource": order("o-1001", "acme", "open")})
	if out["allow"] != true {
		t.Fatalf("%v", out)
	}
	for _, r := range relationsOf(out) {
		if r["allowed"] != false {
			t.Fatalf("%v", out)
		}
	}
}

func TestTenantMustBeAString(t *testing.T) {
	e := newEnv(t)
	_, out := e.authorize(t, map[string]any{"principal": principal("usr_alice", "acme"), "action": "read",
		"resource": map[string]any{"type": "order", "id": "o-2001", "attrs": map[string]any{"status": "open", "tenant": 7}}})
	if out["allow"] != false || !strings.Contains(out["reason"].(string), "tenant attribute must be a string") {
		t.Fatalf("%v", out)
	}
}

// blockingReader never answers a read before its context ends.
type blockingReader struct{ storage.RelationStore }

func (blockingReader) ReadTuples(ctx context.Context, _ storage.Revision, _ storage.TupleFilter, _ string, _ int) ([]storage.RelationTuple, string, error) {
	<-ctx.Done()
	return nil, "", ctx.Err()
}

func (blockingReader) ReadBySubject(ctx context.Context, _ storage.Revision, _ storage.SubjectFilter, _ string, _ int) ([]storage.RelationTuple, string, error) {
	<-ctx.Done()
	return nil, "", ctx.Err()
}

func TestDecisionTimeBudget(t *testing.T) {
	e := newEnv(t, func(o *Options) {
		o.DecisionTimeout = 30 * time.Millisecond
		o.Checker = newChecker(t, blockingReader{o.Store}, rebacLimits())
	})
	start := time.Now()
	res := e.svc.Decide(context.Background(), Input{Principal: entity("user", "usr_alice"), Action: "read", Resource: orderEntity("o-1001", "open")})
	if res.Allow || res.Reason == "" {
		t.Fatalf("%+v", res)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("decision took %v", d)
	}
}

func TestFetchSingleFlight(t *testing.T) {
	var hits atomic.Int64
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		<-release
		_, _ = w.Write([]byte(`{"status": "open"}`))
	}))
	t.Cleanup(srv.Close)
	e := newEnv(t, func(o *Options) {
		o.DecisionTimeout = 10 * time.Second
		o.Fetch = map[string]FetchConfig{"order": {URL: srv.URL + "/orders/{id}", TTL: time.Minute, Timeout: 10 * time.Second}}
	})
	var wg sync.WaitGroup
	results := make([]Result, 8)
	for i := range results {
		wg.Go(func() {
			results[i] = e.svc.Decide(context.Background(), Input{Principal: entity("user", "usr_alice"), Action: "read",
				Resource: policy.Entity{Type: "order", ID: "o-1001"}})
		})
	}
	// Let the goroutines join the flight, then answer once.
	deadline := time.Now().Add(5 * time.Second)
	for hits.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond)
	close(release)
	wg.Wait()
	if n := hits.Load(); n != 1 {
		t.Fatalf("fetches = %d, want 1", n)
	}
	for i, r := range results {
		if !r.Allow {
			t.Fatalf("results[%d] = %+v", i, r)
		}
	}
}

func TestAuthenticatorsAnyAudience(t *testing.T) {
	as := Authenticators{verifier(t, "billing-api"), verifier(t, apiAudience)}
	c, err := as.Authenticate(context.Background(), userToken(t, "usr_alice", nil))
	if err != nil || c.Subject != "usr_alice" {
		t.Fatalf("%v %v", c, err)
	}
	other := mint(t, testKey, map[string]any{"iss": testIssuer, "sub": "usr_alice", "aud": "elsewhere", "exp": 4102444800, "iat": 1700000000})
	if _, err := as.Authenticate(context.Background(), other); !errors.Is(err, auth.ErrInvalidToken) {
		t.Fatalf("err = %v", err)
	}
	if _, err := (Authenticators{}).Authenticate(context.Background(), "x"); !errors.Is(err, auth.ErrInvalidToken) {
		t.Fatalf("err = %v", err)
	}
}

func TestNewRefusesIncompleteOptions(t *testing.T) {
	base := newEnv(t).opts
	base.Registerer = nil
	cases := map[string]func(*Options){
		"no-policies": func(o *Options) { o.Policies = nil },
		"no-store":    func(o *Options) { o.Store = nil },
		"no-checker":  func(o *Options) { o.Checker = nil },
		"no-callers":  func(o *Options) { o.Callers = nil },
		"bad-fetch-type": func(o *Options) {
			o.Fetch = map[string]FetchConfig{"Order": {URL: "http://127.0.0.1/{id}"}}
		},
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			o := base
			mutate(&o)
			if _, err := New(o); err == nil {
				t.Fatal("accepted")
			}
		})
	}
	if _, err := New(base); err != nil {
		t.Fatalf("complete options refused: %v", err)
	}
}
