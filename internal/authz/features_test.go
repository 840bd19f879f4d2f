package authz

import (
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/gatehouse/gatehouse/internal/authz/decisionlog"
	"github.com/gatehouse/gatehouse/internal/authz/policy"
)

// shadowSet is the demo set without the admins' read policy.
func shadowSet(t *testing.T) *policy.Set {
	t.Helper()
	fsys := fstest.MapFS{}
	for _, name := range []string{"schema.cedarschema", "read.cedar", "pay.cedar", "delete.cedar"} {
		b, err := os.ReadFile("policy/testdata/demo/" + name)
		if err != nil {
			t.Fatal(err)
		}
		if name == "read.cedar" {
			s := string(b)
			i := strings.Index(s, `@id("admins-read-and-list")`)
			if i < 0 {
				t.Fatal("demo read.cedar changed")
			}
			b = []byte(s[:i])
		}
		fsys[name] = &fstest.MapFile{Data: b}
	}
	set, err := policy.LoadFS(fsys)
	if err != nil {
		t.Fatal(err)
	}
	return set
}

func TestShadowDisagreementCountedAndLogged(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.Shadow = policy.NewHolder(shadowSet(t)) })
	_, out := e.authorize(t, map[string]any{"principal": principal("usr_carol", "globex", "admin"), "action": "read",
		"resource": order("o-3001", "globex", "open")})
	if out["allow"] != true {
		t.Fatalf("the shadow set changed the answer: %v", out)
	}
	if n := counterValue(t, e.svc.metrics.disagreements); n != 1 {
		t.Fatalf("disagreements = %v", n)
	}
	entries := e.log.Recent(decisionlog.Filter{Limit: 1})
	if len(entries) != 1 || entries[0].Shadow == nil || !entries[0].Shadow.Disagree || entries[0].Shadow.Allow {
		t.Fatalf("entry %+v", entries)
	}
	// An agreeing decision is not counted.
	e.authorize(t, map[string]any{"principal": principal("usr_alice", "acme"), "action": "read", "resource": order("o-1001", "acme", "open")})
	if n := counterValue(t, e.svc.metrics.disagreements); n != 1 {
		t.Fatalf("disagreements = %v", n)
	}
	if n := counterValue(t, e.svc.metrics.decisions.WithLabelValues("true")); n != 2 {
		t.Fatalf("decisions{allow=true} = %v", n)
	}
	// GET /decisions?disagreements=true returns only the disagreement.
	st, out, _ := e.do(t, http.MethodGet, "/decisions?disagreements=true", callerToken(t, ScopeAudit), nil)
	if ds, _ := out["decisions"].([]any); st != 200 || len(ds) != 1 || ds[0].(map[string]any)["resource"].(map[string]any)["id"] != "o-3001" {
		t.Fatalf("disagreements: %d %v", st, out)
	}
	if st, _, _ := e.do(t, http.MethodGet, "/decisions?disagreements=yes", callerToken(t, ScopeAudit), nil); st != 400 {
		t.Fatalf("bad disagreements value: %d", st)
	}
}

// attrServer serves order attributes: o-1001 an object, o-bad a 500,
// o-array a JSON array.
func attrServer(t *testing.T) (*httptest.Server, *atomic.Int64) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		switch r.URL.Path {
		case "/orders/o-1001":
			_, _ = w.Write([]byte(`{"status": "open", "tenant": "acme"}`))
		case "/orders/o-array":
			_, _ = w.Write([]byte(`["open"]`))
		case "/orders/o-redirect":
			http.Redirect(w, r, "/orders/o-1001", http.StatusFound)
		default:
			http.Error(w, "boom", http.StatusInternalServerError)
		}
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

func TestFetchStrategy(t *testing.T) {
	srv, hits := attrServer(t)
	withFetch := func(onError string) func(*Options) {
		return func(o *Options) {
			o.Fetch = map[string]FetchConfig{"order": {URL: srv.URL + "/orders/{id}", TTL: time.Minute, OnError: onError}}
		}
	}
	ask := func(t *testing.T, e *env, who, id string) map[string]any {
		t.Helper()
		_, out := e.authorize(t, map[string]any{"principal": principal(who, "acme"), "action": "read",
			"resource": map[string]any{"type": "order", "id": id}})
		return out
	}
	t.Run("ttl-cache-hit", func(t *testing.T) {
		e := newEnv(t, withFetch(""))
		before := hits.Load()
		for range 3 {
			if out := ask(t, e, "usr_alice", "o-1001"); out["allow"] != true {
				t.Fatalf("%v", out)
			}
		}
		if n := hits.Load() - before; n != 1 {
			t.Fatalf("fetches = %d, want 1", n)
		}
	})
	t.Run("fetched-tenant-guards", func(t *testing.T) {
		e := newEnv(t, withFetch(""))
		if out := ask(t, e, "usr_alice", "o-1001"); out["allow"] != true {
			t.Fatalf("%v", out)
		}
		_, out := e.authorize(t, map[string]any{"principal": principal("usr_alice", "globex"), "action": "read",
			"resource": map[string]any{"type": "order", "id": "o-1001"}})
		if !strings.Contains(out["reason"].(string), "does not match") {
			t.Fatalf("%v", out)
		}
	})
	t.Run("on-error-deny", func(t *testing.T) {
		e := newEnv(t, withFetch("deny"))
		for _, id := range []string{"o-bad", "o-array", "o-redirect"} {
			if out := ask(t, e, "usr_alice", id); out["allow"] != false || out["reason"] != "resource attributes unavailable" {
				t.Fatalf("%s: %v", id, out)
			}
		}
	})
	t.Run("on-error-ignore", func(t *testing.T) {
		e := newEnv(t, withFetch("ignore"))
		// Nothing fetched: the required status attribute is missing, so
		// the schema validation denies (but not as a fetch failure).
		out := ask(t, e, "usr_alice", "o-bad")
		if out["allow"] != false || out["reason"] == "resource attributes unavailable" {
			t.Fatalf("%v", out)
		}
		// Provided attributes still decide.
		_, out = e.authorize(t, map[string]any{"principal": principal("usr_alice", "acme"), "action": "read",
			"resource": map[string]any{"type": "order", "id": "o-1002", "attrs": map[string]any{"status": "open"}}})
		if out["allow"] != true {
			t.Fatalf("%v", out)
		}
	})
	t.Run("provided-over-replicated-over-fetched", func(t *testing.T) {
		e := newEnv(t, withFetch(""))
		st, _, _ := e.do(t, http.MethodPut, "/entities/order/o-1001", callerToken(t, ScopeWrite),
			map[string]any{"attrs": map[string]any{"status": "shipped", "tenant": "acme"}, "version": 3})
		if st != 200 {
			t.Fatal(st)
		}
		before := hits.Load()
		_, out := e.authorize(t, map[string]any{"principal": principal("usr_alice", "acme"), "action": "delete",
			"resource": map[string]any{"type": "order", "id": "o-1001"}})
		if out["allow"] != false || !strings.Contains(out["reason"].(string), "forbidden") || hits.Load() != before {
			t.Fatalf("replicated status not used: %v", out)
		}
		_, out = e.authorize(t, map[string]any{"principal": principal("usr_alice", "acme"), "action": "delete",
			"resource": order("o-1001", "acme", "open")})
		if out["allow"] != true {
			t.Fatalf("provided status not used: %v", out)
		}
	})
	t.Run("bad-config", func(t *testing.T) {
		for _, f := range []FetchConfig{{URL: "http://x/orders"}, {URL: "ftp://x/{id}"}, {URL: "http://x/{id}", OnError: "allow"}} {
			o := newEnv(t).opts
			o.Registerer = nil
			o.Fetch = map[string]FetchConfig{"order": f}
			if _, err := New(o); err == nil {
				t.Fatalf("%+v accepted", f)
			}
		}
	})
}

func TestCallerAuthAndScopes(t *testing.T) {
	e := newEnv(t)
	body := map[string]any{"principal": principal("usr_alice", "acme"), "action": "read", "resource": order("o-1001", "acme", "open")}
	principalTok := userToken(t, "usr_alice", nil) // audience orders-api, not authz
	cases := []struct {
		name, method, path, tok string
		body                    any
		status                  int
		code                    string
	}{
		{"no-token", "POST", "/authorize", "", body, 401, "unauthorized"},
		{"garbage-token", "POST", "/authorize", "not.a.jwt", body, 401, "invalid_token"},
		{"wrong-audience", "POST", "/authorize", principalTok, body, 401, "invalid_token"},
		{"read-scope-cannot-check", "POST", "/authorize", callerToken(t, ScopeRead), body, 403, "insufficient_scope"},
		{"check-scope-cannot-write", "POST", "/relationships", callerToken(t, ScopeCheck), map[string]any{"writes": []any{}}, 403, "insufficient_scope"},
		{"write-scope-cannot-read", "GET", "/relationships?object_type=order", callerToken(t, ScopeWrite), nil, 403, "insufficient_scope"},
		{"check-scope-cannot-audit", "GET", "/decisions", callerToken(t, ScopeCheck), nil, 403, "insufficient_scope"},
		{"wrong-method", "GET", "/authorize", callerToken(t, ScopeCheck), nil, 405, "method_not_allowed"},
		{"unknown-path", "GET", "/nope", callerToken(t, ScopeCheck), nil, 404, "not_found"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st, out, h := e.do(t, tc.method, tc.path, tc.tok, tc.body)
			if st != tc.status || out["error"] != tc.code {
				t.Fatalf("%d %v", st, out)
			}
			if (st == 401 || st == 403) && !strings.HasPrefix(h.Get("WWW-Authenticate"), "Bearer ") {
				t.Fatalf("WWW-Authenticate %q", h.Get("WWW-Authenticate"))
			}
			if tc.path == "/authorize" && out["allow"] != false {
				t.Fatalf("decision error without allow: %v", out)
			}
		})
	}
	t.Run("content-type-required", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/authorize", strings.NewReader(`{}`))
		req.Header.Set("Authorization", "Bearer "+callerToken(t, ScopeCheck))
		req.Header.Set("Content-Type", "text/plain")
		resp, err := e.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnsupportedMediaType {
			t.Fatal(resp.StatusCode)
		}
	})
}

func TestBatch(t *testing.T) {
	e := newEnv(t)
	check := func(action, id, status string) map[string]any {
		return map[string]any{"action": action, "resource": order(id, "acme", status)}
	}
	st, out, _ := e.do(t, http.MethodPost, "/authorize/batch", callerToken(t, ScopeCheck), map[string]any{
		"principal": principal("usr_alice", "acme"),
		"checks":    []any{check("read", "o-1001", "open"), check("delete", "o-1002", "shipped"), check("refund", "o-1001", "open")},
	})
	if st != 200 {
		t.Fatalf("%d %v", st, out)
	}
	rs := out["results"].([]any)
	want := []bool{true, false, false}
	if len(rs) != 3 {
		t.Fatalf("%v", out)
	}
	for i, r := range rs {
		if r.(map[string]any)["allow"] != want[i] {
			t.Errorf("results[%d] = %v", i, r)
		}
	}
	many := make([]any, 101)
	for i := range many {
		many[i] = check("read", "o-1001", "open")
	}
	for name, b := range map[string]any{
		"too-many":      map[string]any{"principal": principal("usr_alice", "acme"), "checks": many},
		"empty":         map[string]any{"principal": principal("usr_alice", "acme"), "checks": []any{}},
		"unknown-check": map[string]any{"principal": principal("usr_alice", "acme"), "checks": []any{map[string]any{"action": "read", "resource": order("o-1", "acme", "open"), "principal": "x"}}},
	} {
		st, out, _ := e.do(t, http.MethodPost, "/authorize/batch", callerToken(t, ScopeCheck), b)
		if st != 400 || out["allow"] != false {
			t.Errorf("%s: %d %v", name, st, out)
		}
	}
}

func counterValue(t *testing.T, c prometheus.Metric) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}
