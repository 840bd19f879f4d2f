package authz

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/authz/decisionlog"
	"github.com/gatehouse/gatehouse/internal/authz/policy"
	"github.com/gatehouse/gatehouse/internal/rebac"
	"github.com/gatehouse/gatehouse/internal/storage"
)

// failingReader is a relation store whose reads fail (storage down).
type failingReader struct{ storage.RelationStore }

var errDown = errors.New("disk on fire")

func (failingReader) ReadTuples(context.Context, storage.Revision, storage.TupleFilter, string, int) ([]storage.RelationTuple, string, error) {
	return nil, "", errDown
}

func (failingReader) ReadBySubject(context.Context, storage.Revision, storage.SubjectFilter, string, int) ([]storage.RelationTuple, string, error) {
	return nil, "", errDown
}

func TestAZ01MalformedAndInvalidDeny(t *testing.T) {
	alice := principal("usr_alice", "acme")
	good := func(action string, res map[string]any) map[string]any {
		return map[string]any{"principal": alice, "action": action, "resource": res}
	}
	deep := `{"principal":{"id":"usr_alice","attrs":{"a":{"b":{"c":{"d":{"e":{"f":{"g":{"h":1}}}}}}}}},"action":"read","resource":{"type":"order","id":"o-1001"}}`
	cases := []struct {
		name   string
		mutate func(*Options)
		body   any
		status int
		reason string
	}{
		{"AZ-01/unknown-action", nil, good("refund", order("o-1001", "acme", "open")), 200, "does not exist"},
		{"AZ-01/unknown-type", nil, good("read", map[string]any{"type": "invoice", "id": "i-1"}), 200, "invoice"},
		{"AZ-01/malformed-json", nil, `{"principal": {"id": "usr_alice"}, "action": "read",`, 400, "malformed"},
		{"AZ-01/not-an-object", nil, `["read"]`, 400, "malformed"},
		{"AZ-01/trailing-data", nil, `{"principal":{"id":"usr_alice"},"action":"read","resource":{"type":"order","id":"o-1001"}} {}`, 400, "trailing"},
		{"AZ-01/duplicate-keys", nil, `{"principal":{"id":"usr_alice"},"action":"read","action":"delete","resource":{"type":"order","id":"o-1001"}}`, 400, "duplicate"},
		{"AZ-01/duplicate-nested-keys", nil, `{"principal":{"id":"usr_alice","id":"usr_bob"},"action":"read","resource":{"type":"order","id":"o-1001"}}`, 400, "duplicate"},
		{"AZ-01/case-variant-member", nil, `{"principal":{"id":"usr_alice"},"Action":"read","resource":{"type":"order","id":"o-1001"}}`, 400, "unknown member"},
		{"AZ-01/unknown-resource-member", nil, `{"principal":{"id":"usr_alice"},"action":"read","resource":{"type":"order","id":"o-1001","owner":"x"}}`, 400, "unknown member"},
		{"AZ-01/too-deep", nil, deep, 400, "nested deeper"},
		{"AZ-01/missing-id", nil, `{"principal":{"id":"usr_alice"},"action":"read","resource":{"type":"order"}}`, 400, "resource.id is required"},
		{"AZ-01/bad-id", nil, `{"principal":{"id":"usr_alice"},"action":"read","resource":{"type":"order","id":"o#1"}}`, 400, "resource.id"},
		{"AZ-01/wrong-attribute-type", nil, good("read", map[string]any{"type": "order", "id": "o-1001",
			"attrs": map[string]any{"status": 7}}), 200, "status"},
		{"AZ-01/relations-injection", nil, map[string]any{"principal": principal("usr_bob", "acme"), "action": "read",
			"resource": order("o-1001", "acme", "open"), "context": map[string]any{"relations": map[string]any{"view": true}}}, 200, "reserved"},
		{"AZ-01/engine-error", func(o *Options) { o.Checker = newChecker(t, failingReader{o.Store}, rebacLimits()) },
			good("read", order("o-1001", "acme", "open")), 200, "relation store unavailable"},
		{"AZ-01/no-policy-set", func(o *Options) { o.Policies = policy.NewHolder(nil) },
			good("read", order("o-1001", "acme", "open")), 200, "no policy set loaded"},
		{"AZ-01/body-too-large", nil, `{"principal":{"id":"usr_alice","attrs":{"x":"` + strings.Repeat("a", 70<<10) + `"}}}`, 413, "64 KiB"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var mut []func(*Options)
			if tc.mutate != nil {
				mut = append(mut, tc.mutate)
			}
			e := newEnv(t, mut...)
			st, out := e.authorize(t, tc.body)
			if st != tc.status {
				t.Fatalf("status %d, want %d: %v", st, tc.status, out)
			}
			if out["allow"] != false {
				t.Fatalf("allow = %v", out["allow"])
			}
			msg, _ := out["reason"].(string)
			if st != 200 {
				msg, _ = out["error_description"].(string)
			}
			if !strings.Contains(msg, tc.reason) || msg == "" {
				t.Fatalf("reason %q, want %q", msg, tc.reason)
			}
		})
	}
}

func TestAZ04BudgetExceededDenies(t *testing.T) {
	e := newEnv(t, func(o *Options) {
		o.Checker = newChecker(t, o.Store, rebac.Limits{MaxDepth: 4, Timeout: 10 * time.Second})
	})
	chain := []string{"order:o-9#owner@user:usr_alice", "order:o-9#team@team:t0"}
	for i := range 12 {
		chain = append(chain, fmt.Sprintf("team:t%d#member@team:t%d#member", i, i+1))
	}
	rev := e.write(t, chain...)
	t.Run("AZ-04/depth-budget", func(t *testing.T) {
		st, out := e.authorize(t, map[string]any{"principal": principal("usr_alice", "acme"), "action": "pay",
			"resource": order("o-9", "acme", "open"), "consistency": map[string]any{"at_least_as_fresh": revString(rev)}})
		if st != 200 || out["allow"] != false || !strings.Contains(out["reason"].(string), "budget") {
			t.Fatalf("status %d: %v", st, out)
		}
	})
}

func TestAZ02TenantGuard(t *testing.T) {
	e := newEnv(t)
	t.Run("AZ-02/claims-tenant", func(t *testing.T) {
		// alice manages team eng, but o-2001 is declared globex's: the
		// guard denies before any policy or relation runs.
		_, out := e.authorize(t, map[string]any{"principal": principal("usr_alice", "acme"), "action": "read",
			"resource": order("o-2001", "globex", "open")})
		if out["allow"] != false || out["reason"] != "principal tenant acme does not match resource tenant globex" {
			t.Fatalf("%v", out)
		}
		if len(relationsOf(out)) != 0 {
			t.Fatalf("relations ran: %v", out["relations"])
		}
	})
	t.Run("AZ-02/tenant-from-token", func(t *testing.T) {
		tok := userToken(t, "usr_carol", map[string]any{"tenant": "globex", "roles": []string{"admin"}})
		_, out := e.authorize(t, map[string]any{"principal": map[string]any{"token": tok}, "action": "read",
			"resource": order("o-1001", "acme", "open")})
		if out["allow"] != false || out["reason"] != "principal tenant globex does not match resource tenant acme" {
			t.Fatalf("%v", out)
		}
	})
	t.Run("AZ-02/replicated-tenant", func(t *testing.T) {
		st, out, _ := e.do(t, http.MethodPut, "/entities/order/o-7001", callerToken(t, ScopeWrite),
			map[string]any{"attrs": map[string]any{"tenant": "globex", "status": "open"}, "version": 1})
		if st != 200 || out["applied"] != true {
			t.Fatalf("put: %d %v", st, out)
		}
		_, out = e.authorize(t, map[string]any{"principal": principal("usr_alice", "acme"), "action": "read",
			"resource": map[string]any{"type": "order", "id": "o-7001"}})
		if out["allow"] != false || !strings.Contains(out["reason"].(string), "does not match resource tenant globex") {
			t.Fatalf("%v", out)
		}
	})
	t.Run("AZ-02/idor", func(t *testing.T) {
		_, out := e.authorize(t, map[string]any{"principal": principal("usr_bob", "acme"), "action": "delete",
			"resource": order("o-1001", "acme", "open")})
		if out["allow"] != false {
			t.Fatalf("%v", out)
		}
	})
}

func TestAZ03PrincipalFromToken(t *testing.T) {
	e := newEnv(t)
	ask := func(t *testing.T, tok, id string) map[string]any {
		t.Helper()
		st, out := e.authorize(t, map[string]any{"principal": map[string]any{"token": tok}, "action": "read",
			"resource": order(id, "acme", "open")})
		if st != 200 {
			t.Fatalf("status %d: %v", st, out)
		}
		return out
	}
	t.Run("AZ-03/keyed-on-sub", func(t *testing.T) {
		tok := userToken(t, "usr_alice", map[string]any{"tenant": "acme", "acr": "mfa", "auth_time": 1700000000})
		out := ask(t, tok, "o-1001")
		if out["allow"] != true {
			t.Fatalf("%v", out)
		}
		if rs := relationsOf(out); len(rs) == 0 || !strings.HasSuffix(rs[0]["check"].(string), "@user:usr_alice") {
			t.Fatalf("relations %v", out["relations"])
		}
		entries := e.log.Recent(decisionlog.Filter{Limit: 1})
		if len(entries) != 1 || entries[0].ID != out["decision_id"] {
			t.Fatalf("log entries %+v", entries)
		}
		p := entries[0].Principal
		if p.ID != "usr_alice" || p.Issuer != testIssuer || p.TokenHash == "" || p.Attrs["acr"] != "mfa" {
			t.Fatalf("logged principal %+v", p)
		}
		if strings.Contains(fmt.Sprintf("%+v", entries[0]), tok) {
			t.Fatal("token in the decision log")
		}
	})
	t.Run("AZ-03/email-is-not-identity", func(t *testing.T) {
		// Same email as alice, another sub: no relation, no access.
		out := ask(t, userToken(t, "usr_mallory", map[string]any{"tenant": "acme", "email": "alice@example.com"}), "o-1001")
		if out["allow"] != false {
			t.Fatalf("%v", out)
		}
	})
	t.Run("AZ-03/other-issuer", func(t *testing.T) {
		c := map[string]any{"iss": otherIssuer, "sub": "usr_alice", "aud": apiAudience, "exp": 4102444800, "iat": 1700000000}
		out := ask(t, mint(t, otherKey, c), "o-1001")
		if out["allow"] != false || out["reason"] != "principal token refused" {
			t.Fatalf("%v", out)
		}
	})
	t.Run("AZ-03/forged-with-other-key", func(t *testing.T) {
		c := map[string]any{"iss": testIssuer, "sub": "usr_alice", "aud": apiAudience, "exp": 4102444800, "iat": 1700000000}
		out := ask(t, mint(t, otherKey, c), "o-1001")
		if out["allow"] != false || out["reason"] != "principal token refused" {
			t.Fatalf("%v", out)
		}
	})
	t.Run("AZ-03/client-credentials", func(t *testing.T) {
		now := map[string]any{"sub": "orders-web", "client_id": "orders-web", "tenant": "acme"}
		out := ask(t, userToken(t, "orders-web", now), "o-1001")
		if out["allow"] != false {
			t.Fatalf("%v", out)
		}
		if rs := relationsOf(out); len(rs) == 0 || !strings.HasSuffix(rs[0]["check"].(string), "@client:orders-web") {
			t.Fatalf("relations %v", out["relations"])
		}
	})
	t.Run("AZ-03/no-principal-verifier", func(t *testing.T) {
		e2 := newEnv(t, func(o *Options) { o.Principals = nil })
		_, out := e2.authorize(t, map[string]any{"principal": map[string]any{"token": userToken(t, "usr_alice", nil)},
			"action": "read", "resource": order("o-1001", "acme", "open")})
		if out["allow"] != false || !strings.Contains(out["reason"].(string), "not accepted") {
			t.Fatalf("%v", out)
		}
	})
	t.Run("AZ-03/token-with-claims", func(t *testing.T) {
		st, out := e.authorize(t, map[string]any{"principal": map[string]any{"token": "x", "id": "usr_alice"},
			"action": "read", "resource": order("o-1001", "acme", "open")})
		if st != 400 || out["allow"] != false {
			t.Fatalf("%d %v", st, out)
		}
	})
}
