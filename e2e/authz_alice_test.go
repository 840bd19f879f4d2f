package e2e

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/examples/demo"
)

// TestAuthzAliceScenarios acts out "Alice and her orders" with the orders
// service delegating to the authorization service (real IdP tokens, real
// HTTP, relationships replicated by orders at start) and the gateway
// deciding DELETE at the edge; then the decision log explains every answer.
func TestAuthzAliceScenarios(t *testing.T) {
	forEachAuthzBackend(t, azSetup{}, func(t *testing.T, az *azEnv) {
		w := startAzWorld(t, az)
		tokens := map[string]string{"alice": w.alice.login(t, "alice"), "bob": w.alice.login(t, "bob"),
			"carol": w.alice.login(t, "carol")}
		w.waitPrincipals(t, tokens["alice"])
		reasons := map[string]string{} // case name -> error_description
		cases := []struct {
			name, who, method, path string
			status                  int
			ids                     string // for lists
			viaGateway              bool
		}{
			{"alice/reads-her-orders", "alice", "GET", "/orders", 200, "o-1001,o-1002", false},
			{"alice/reads-bobs-order-as-his-teams-manager", "alice", "GET", "/orders/o-2001", 200, "", false},
			{"alice/lists-bobs-orders-as-his-teams-manager", "alice", "GET", "/orders?owner=usr_bob", 200, "o-2001", false},
			{"bob/cannot-read-alices-order", "bob", "GET", "/orders/o-1001", 404, "", false},
			{"bob/cannot-list-alices-orders", "bob", "GET", "/orders?owner=usr_alice", 403, "", false},
			{"alice/cannot-delete-bobs-order", "alice", "DELETE", "/orders/o-2001", 403, "", false},
			{"alice/cannot-pay-bobs-order", "alice", "POST", "/orders/o-2001/pay", 403, "", false},
			{"carol/admin-reads-alices-order", "carol", "GET", "/orders/o-1001", 200, "", false},
			{"carol/admin-cannot-pay-alices-order", "carol", "POST", "/orders/o-1001/pay", 403, "", false},
			{"bob/pays-his-order", "bob", "POST", "/orders/o-2001/pay", 201, "", false},
			{"gateway/alice-cannot-delete-bobs-order", "alice", "DELETE", "/orders/o-2001", 403, "", true},
			{"gateway/bob-cannot-delete-alices-order", "bob", "DELETE", "/orders/o-1001", 403, "", true},
			{"gateway/carol-admin-deletes-alices-order", "carol", "DELETE", "/orders/o-1002", 204, "", true},
			{"carol/admin-deletes-bobs-order", "carol", "DELETE", "/orders/o-2001", 204, "", false},
			{"alice/her-deleted-order-is-gone", "alice", "GET", "/orders/o-1002", 404, "", false},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				base := w.ordersURL
				if c.viaGateway {
					base = w.gw.URL
				}
				before := w.ordersLog.count()
				r := call(t, c.method, base+c.path, tokens[c.who], "")
				if r.status != c.status {
					t.Fatalf("%s %s as %s: %d, want %d: %.300s", c.method, c.path, c.who, r.status, c.status, r.raw)
				}
				if c.ids != "" && orderIDs(r) != c.ids {
					t.Errorf("orders %q, want %q", orderIDs(r), c.ids)
				}
				if r.status == http.StatusForbidden {
					desc := str(r.body["error_description"])
					if desc == "" || strings.HasPrefix(desc, "only the owner") {
						t.Errorf("error_description %q is not the authorization service's reason", desc)
					}
					reasons[c.name] = desc
				}
				if c.viaGateway && c.status == http.StatusForbidden {
					if r.body["error"] != "access_denied" {
						t.Errorf("gateway error %v, want access_denied", r.body["error"])
					}
					if n := w.ordersLog.count() - before; n != 0 {
						t.Errorf("orders was called %d times after the gateway refused", n)
					}
				}
			})
		}
		t.Run("demo/NewOrders-with-Authz-replicates", func(t *testing.T) {
			// gatehouse dev's wiring: demo.NewOrders with Config.Authz
			// delegates to sdk/authz and replicates at start. Its client has
			// sdk/authz's 250ms timeout (its first token included), so a
			// loaded machine retries until a generous deadline, as a
			// restarting service would; a wrong answer still fails below.
			o, err := demo.NewOrders(demo.Config{Issuer: w.Issuer, OrdersURL: w.ordersURL, Authz: demo.AuthzConfig{URL: w.authz.URL,
				Audience: authzAudience, ClientID: authzOrdersApp, ClientSecret: w.Secrets[authzOrdersApp]}})
			if err != nil {
				t.Fatal(err)
			}
			defer o.Close()
			if o.Replicate == nil {
				t.Fatal("orders with Config.Authz has no Replicate")
			}
			var rev string
			deadline := time.Now().Add(30 * time.Second)
			for tries := 1; ; tries++ {
				if rev, err = o.Replicate(t.Context()); err == nil {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("Replicate still failing after %d tries in 30s: %v", tries, err)
				}
				time.Sleep(200 * time.Millisecond)
			}
			if azRevNum(t, rev) < azRevNum(t, w.revision) {
				t.Errorf("revision %s is older than the first replication's %s", rev, w.revision)
			}
		})
		assertAliceDecisionLog(t, w, tokens, reasons)
		assertAuthzAttacks(t, w, tokens["alice"])
		e := az.Env
		e.assertNoSecretsLogged()
	})
}

// assertAliceDecisionLog checks what GET /azDecisions tells about the
// scenario: reasons, determining policies, relation paths, principals keyed
// on sub.
func assertAliceDecisionLog(t *testing.T, w *azWorld, tokens, reasons map[string]string) {
	ops := w.opsHTTP(t)
	base := w.authz.URL
	find := func(t *testing.T, principal, action, order string, allow bool) map[string]any {
		t.Helper()
		for _, d := range azDecisions(t, ops, base, url.Values{"principal": {principal}, "action": {action}, "limit": {"500"}}) {
			res, _ := d["resource"].(map[string]any)
			if str(res["id"]) == order && d["allow"] == allow {
				return d
			}
		}
		t.Fatalf("no logged decision %s %s order %s allow=%v", principal, action, order, allow)
		return nil
	}
	t.Run("log/manager-read-explained-by-team-path", func(t *testing.T) {
		d := find(t, "usr_alice", "read", "o-2001", true)
		if p := azStrs(d["policies"]); !slices.Equal(p, []string{"owner-or-team-manager-reads"}) {
			t.Errorf("policies %v", p)
		}
		if !strings.Contains(str(d["reason"]), "owner-or-team-manager-reads") {
			t.Errorf("reason %q", d["reason"])
		}
		if str(d["policy_version"]) == "" || str(d["revision"]) == "" {
			t.Errorf("policy_version %v revision %v", d["policy_version"], d["revision"])
		}
		want := []string{"order:o-2001#team@team:team_usr_alice", "team:team_usr_alice#manager@user:usr_alice"}
		found := false
		rels, _ := d["relations"].([]any)
		for _, x := range rels {
			rc, _ := x.(map[string]any)
			if str(rc["check"]) == "order:o-2001#view@user:usr_alice" {
				found = true
				if rc["allowed"] != true || !slices.Equal(azStrs(rc["path"]), want) {
					t.Errorf("view check %v, want allowed via %v", rc, want)
				}
			}
		}
		if !found {
			t.Errorf("no view relation check in %v", rels)
		}
	})
	t.Run("log/denials-carry-the-reason-the-caller-saw", func(t *testing.T) {
		for name, d := range map[string]map[string]any{
			"alice/cannot-delete-bobs-order":         find(t, "usr_alice", "delete", "o-2001", false),
			"gateway/bob-cannot-delete-alices-order": find(t, "usr_bob", "delete", "o-1001", false),
			"alice/cannot-pay-bobs-order":            find(t, "usr_alice", "pay", "o-2001", false),
		} {
			if got := str(d["reason"]); got == "" || got != reasons[name] {
				t.Errorf("%s: logged reason %q, the caller saw %q", name, got, reasons[name])
			}
		}
		if d := find(t, "usr_bob", "read", "o-1001", false); str(d["reason"]) == "" {
			t.Error("bob's refused read has no reason")
		}
	})
	t.Run("log/admin-and-owner-policies", func(t *testing.T) {
		if p := azStrs(find(t, "usr_carol", "delete", "o-1002", true)["policies"]); !slices.Contains(p, "admins-delete") {
			t.Errorf("carol's delete: policies %v", p)
		}
		if p := azStrs(find(t, "usr_carol", "read", "o-1001", true)["policies"]); !slices.Contains(p, "admins-read") {
			t.Errorf("carol's read: policies %v", p)
		}
		if p := azStrs(find(t, "usr_bob", "pay", "o-2001", true)["policies"]); !slices.Equal(p, []string{"owner-pays"}) {
			t.Errorf("bob's payment: policies %v", p)
		}
	})
	t.Run("AZ-03/principal-is-sub-never-email", func(t *testing.T) {
		r := azDo(t, ops, "GET", base+"/decisions?limit=1000", nil)
		if r.status != http.StatusOK {
			t.Fatalf("decisions: %d", r.status)
		}
		for _, tok := range tokens {
			if strings.Contains(r.raw, tok) {
				t.Error("a principal's token appears in the decision log")
			}
		}
		if strings.Contains(r.raw, "@example.com") {
			t.Error("an email appears in the decision log")
		}
		list, _ := r.body["decisions"].([]any)
		if len(list) < 10 {
			t.Fatalf("only %d decisions logged", len(list))
		}
		for _, x := range list {
			d, _ := x.(map[string]any)
			p, _ := d["principal"].(map[string]any)
			id := str(p["id"])
			if !slices.Contains([]string{"usr_alice", "usr_bob", "usr_carol"}, id) || str(p["type"]) != "user" {
				t.Errorf("logged principal %v, want a user keyed on sub", p)
			}
			if str(p["issuer"]) != w.Issuer || str(p["token_hash"]) == "" {
				t.Errorf("principal %s: issuer %v token_hash %v", id, p["issuer"], p["token_hash"])
			}
		}
	})
	t.Run("AZ-scope/decisions-need-authz-audit", func(t *testing.T) {
		gwc := w.authzHTTP(t, authzGatewayApp, "authz:check")
		if r := azDo(t, gwc, "GET", base+"/decisions", nil); r.status != http.StatusForbidden {
			t.Fatalf("decisions with authz:check only: %d %.200s", r.status, r.raw)
		}
	})
}
