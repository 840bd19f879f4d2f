package workload_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/gatehouse/gatehouse/sdk/workload"
)

var (
	ordersID   = spiffeid.RequireFromString("spiffe://gatehouse.local/orders")
	paymentsID = spiffeid.RequireFromString("spiffe://gatehouse.local/payments")
	shopID     = spiffeid.RequireFromString("spiffe://gatehouse.local/shop")
	foreignID  = spiffeid.RequireFromString("spiffe://evil.local/orders")
)

func ordersPolicy(t testing.TB) *workload.Policy {
	return mustPolicy(t,
		workload.Rule{Name: "orders-pays", Effect: "allow", From: []string{ordersID.String()}, To: []string{paymentsID.String()},
			Paths: []string{"/payments", "/payments/*"}, Methods: []string{"POST", "GET"}},
		workload.Rule{Name: "shop-orders", Effect: "allow", From: []string{shopID.String()}, To: []string{ordersID.String()},
			Paths: []string{"/orders", "/orders/*", "/a b", "/x:y"}},
	)
}

func TestMT03ExactPath(t *testing.T) {
	p := ordersPolicy(t)
	tests := []struct {
		method, path string
		allow        bool
	}{
		{"GET", "/orders", true},
		{"GET", "/orders/1", true},
		{"GET", "/orders/1/items", true},
		{"GET", "/orders/", false}, // "/orders/*" needs one or more segments
		{"GET", "/orders-admin", false},
		{"GET", "/ordersadmin", false},
		{"GET", "/orders-admin/1", false},
		{"GET", "/Orders", false},
		{"GET", "/admin", false},
		{"GET", "/", false},
		{"GET", "", false},
		{"GET", "orders", false},
		{"GET", "//orders", false},
		{"GET", "/orders//1", false},
		{"GET", "/orders/./1", false},
		{"GET", "/orders/../admin", false},
		{"GET", "/orders/..", false},
		{"GET", "/orders/.", false},
		{"GET", "/orders/%2e%2e/admin", false},
		{"GET", "/orders/%2E%2E/admin", false},
		{"GET", "/orders/%2e/x", false},
		{"GET", "/orders%2Fadmin", false},
		{"GET", "/orders%2fadmin", false},
		{"GET", "/orders/1%2F..%2F..%2Fadmin", false},
		{"GET", "/orders\\..\\admin", false},
		{"GET", "/orders/%5c..%5cadmin", false},
		{"GET", "/orders/%5C", false},
		{"GET", "/%6Frders", false}, // needless escape of "o"
		{"GET", "/orders/%zz", false},
		{"GET", "/orders/%2", false},
		{"GET", "/orders/1 2", false},
		{"GET", "/orders/\x00", false},
		{"GET", "/orders/é", false},
		{"GET", "/orders?x=1", false}, // one segment "orders?x=1": no pattern matches
		{"GET", "/a%20b", true},       // matched decoded: "/a b"
		{"GET", "/x%3Ay", true},       // matched decoded: "/x:y"
		{"GET", "/x%3ay", true},       // either hex case decodes to ":"
		{"get", "/orders", false},     // methods are upper-case
		{"G ET", "/orders", false},
		{"", "/orders", false},
	}
	for _, tc := range tests {
		d := p.Decide(shopID, ordersID, tc.method, tc.path)
		if d.Allow != tc.allow {
			t.Errorf("%s %q: allow = %v (%s), want %v", tc.method, tc.path, d.Allow, d.Reason, tc.allow)
		}
		if d.Reason == "" {
			t.Errorf("%s %q: empty reason", tc.method, tc.path)
		}
	}
	// Methods are enforced where listed.
	if d := p.Decide(ordersID, paymentsID, "DELETE", "/payments"); d.Allow {
		t.Errorf("DELETE allowed: %+v", d)
	}
	if d := p.Decide(ordersID, paymentsID, "POST", "/payments"); !d.Allow || d.Rule != "orders-pays" || !strings.Contains(d.Reason, `"orders-pays"`) {
		t.Errorf("POST /payments: %+v", d)
	}
}

func TestMT03DenyWins(t *testing.T) {
	p := mustPolicy(t,
		workload.Rule{Name: "all-shop", Effect: "allow", From: []string{"spiffe://gatehouse.local/*"}, To: []string{ordersID.String()}},
		workload.Rule{Name: "no-admin", Effect: "deny", From: []string{shopID.String()}, To: []string{"spiffe://gatehouse.local/*"},
			Paths: []string{"/admin", "/admin/*"}},
		workload.Rule{Name: "no-delete", Effect: "deny", From: []string{"spiffe://gatehouse.local/*"}, To: []string{ordersID.String()},
			Methods: []string{"DELETE"}},
	)
	tests := []struct {
		caller       spiffeid.ID
		method, path string
		allow        bool
		rule         string
	}{
		{shopID, "GET", "/orders", true, "all-shop"},
		{shopID, "GET", "/admin", false, "no-admin"},
		{shopID, "GET", "/admin/users", false, "no-admin"},
		{shopID, "DELETE", "/orders/1", false, "no-delete"},
		{paymentsID, "GET", "/admin", true, "all-shop"},
		{paymentsID, "DELETE", "/admin", false, "no-delete"},
		{foreignID, "GET", "/orders", false, ""},
	}
	for _, tc := range tests {
		d := p.Decide(tc.caller, ordersID, tc.method, tc.path)
		if d.Allow != tc.allow || d.Rule != tc.rule {
			t.Errorf("%s %s %s: %+v, want allow=%v rule=%q", tc.caller, tc.method, tc.path, d, tc.allow, tc.rule)
		}
	}
	// Deny rules with paths or methods do not refuse the connection; one
	// with neither does.
	if !p.MayConnect(shopID, ordersID) {
		t.Error("shop may not connect to orders")
	}
	p2 := mustPolicy(t, append(p.Rules(), workload.Rule{Name: "ban-shop", Effect: "deny", From: []string{shopID.String()}, To: []string{ordersID.String()}})...)
	if p2.MayConnect(shopID, ordersID) {
		t.Error("connection-level deny ignored")
	}
	if d := p2.Decide(shopID, ordersID, "GET", "/orders"); d.Allow || d.Rule != "ban-shop" {
		t.Errorf("ban-shop: %+v", d)
	}
	if !p2.MayConnect(paymentsID, ordersID) {
		t.Error("payments lost access")
	}
}

func TestPolicyDefaultDeny(t *testing.T) {
	var nilPolicy *workload.Policy
	empty := mustPolicy(t)
	p := ordersPolicy(t)
	for name, pol := range map[string]*workload.Policy{"nil": nilPolicy, "empty": empty, "orders": p} {
		if d := pol.Decide(foreignID, ordersID, "GET", "/orders"); d.Allow || d.Rule != "" || d.Reason == "" {
			t.Errorf("%s: %+v", name, d)
		}
		if pol.MayConnect(foreignID, ordersID) {
			t.Errorf("%s: MayConnect", name)
		}
	}
	d := p.Decide(ordersID, shopID, "GET", "/x")
	want := "no rule allows spiffe://gatehouse.local/orders to call spiffe://gatehouse.local/shop GET /x"
	if d.Reason != want {
		t.Errorf("reason %q, want %q", d.Reason, want)
	}
	if d := p.Decide(spiffeid.ID{}, ordersID, "GET", "/orders"); d.Allow {
		t.Error("zero caller allowed")
	}
	if nilPolicy.Version() != "" || nilPolicy.Rules() != nil || nilPolicy.For(ordersID) != nil {
		t.Error("nil policy accessors")
	}
}

func TestPolicySetsWithinTrustDomain(t *testing.T) {
	p := mustPolicy(t,
		workload.Rule{Name: "ns", Effect: "allow", From: []string{"spiffe://gatehouse.local/ns/team/*"}, To: []string{"spiffe://gatehouse.local/*"}},
	)
	target := spiffeid.RequireFromString("spiffe://other.local/ns/team/x")
	tests := []struct {
		caller, target string
		allow          bool
	}{
		{"spiffe://gatehouse.local/ns/team/a", "spiffe://gatehouse.local/db", true},
		{"spiffe://gatehouse.local/ns/team/a/b/c", "spiffe://gatehouse.local/db/x", true},
		{"spiffe://gatehouse.local/ns/team", "spiffe://gatehouse.local/db", false},
		{"spiffe://gatehouse.local/ns/teamx/a", "spiffe://gatehouse.local/db", false},
		{"spiffe://gatehouse.local/ns/teama", "spiffe://gatehouse.local/db", false},
		{"spiffe://other.local/ns/team/a", "spiffe://gatehouse.local/db", false},
		{"spiffe://gatehouse.local.evil/ns/team/a", "spiffe://gatehouse.local/db", false},
		{"spiffe://gatehouse.local/ns/team/a", target.String(), false},
		{"spiffe://gatehouse.local/ns/team/a", "spiffe://gatehouse.localx/db", false},
	}
	for _, tc := range tests {
		c, tg := spiffeid.RequireFromString(tc.caller), spiffeid.RequireFromString(tc.target)
		if got := p.MayConnect(c, tg); got != tc.allow {
			t.Errorf("MayConnect(%s, %s) = %v", c, tg, got)
		}
		if got := p.Decide(c, tg, "GET", "/").Allow; got != tc.allow {
			t.Errorf("Decide(%s, %s) = %v", c, tg, got)
		}
	}
}

func TestNewPolicyReportsEveryProblem(t *testing.T) {
	rules := []workload.Rule{
		{Name: "ok", Effect: "allow", From: []string{"spiffe://td/a"}, To: []string{"spiffe://td/*"}},
		{Name: "ok", Effect: "permit", From: nil, To: []string{"spiffe://td/a*"}},
		{Name: "", Effect: "allow", From: []string{"spiffe://td"}, To: []string{"spiffe://TD/a"},
			Paths: []string{"orders", "/a/*/b", "/a//b", "/a/../b", "/a/%2e", "/a*", "/a/", "/*"}, Methods: []string{"get", "PO ST", ""}},
		{Name: "x", Effect: "deny", From: []string{"https://td/a", "spiffe://td/*/x", "spiffe://td/a/./b"}, To: []string{}},
	}
	_, err := workload.NewPolicy(rules)
	if err == nil || !errors.Is(err, workload.ErrInvalidPolicy) {
		t.Fatalf("err = %v", err)
	}
	for _, want := range []string{
		"rules[1].name: duplicate", "rules[1].effect", "rules[1].from: at least one", "rules[1].to[0]",
		"rules[2].name: required", "rules[2].from[0]", "rules[2].to[0]",
		"rules[2].paths[0]", "rules[2].paths[1]", "rules[2].paths[2]", "rules[2].paths[3]", "rules[2].paths[4]", "rules[2].paths[5]",
		"rules[2].methods[0]", "rules[2].methods[1]", "rules[2].methods[2]",
		"rules[3].from[0]", "rules[3].from[1]", "rules[3].from[2]", "rules[3].to: at least one",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q:\n%v", want, err)
		}
	}
	for _, notWant := range []string{"rules[0].", "rules[2].paths[6]", "rules[2].paths[7]"} {
		if strings.Contains(err.Error(), notWant) {
			t.Errorf("error mentions %q:\n%v", notWant, err)
		}
	}
	many := make([]workload.Rule, workload.MaxPolicyRules+1)
	if _, err := workload.NewPolicy(many); err == nil {
		t.Error("too many rules accepted")
	}
}

func TestPolicyVersionAndJSON(t *testing.T) {
	p := ordersPolicy(t)
	if len(p.Version()) != 64 {
		t.Fatalf("version %q", p.Version())
	}
	if q := ordersPolicy(t); q.Version() != p.Version() {
		t.Fatal("version not deterministic")
	}
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	q, err := workload.DecodePolicy(b)
	if err != nil {
		t.Fatalf("DecodePolicy(MarshalJSON): %v\n%s", err, b)
	}
	if q.Version() != p.Version() || fmt.Sprint(q.Rules()) != fmt.Sprint(p.Rules()) {
		t.Fatal("round trip changed the policy")
	}
	// Rules returns a copy.
	r := p.Rules()
	r[0].From[0] = "spiffe://gatehouse.local/evil"
	if p.Rules()[0].From[0] != ordersID.String() {
		t.Fatal("Rules exposes internal state")
	}
	// An empty policy encodes its rules as [].
	e, _ := json.Marshal(mustPolicy(t))
	if !strings.Contains(string(e), `"rules":[]`) {
		t.Fatalf("empty policy JSON %s", e)
	}
	if _, err := workload.DecodePolicy(e); err != nil {
		t.Fatal(err)
	}
}

func TestDecodePolicyIsStrict(t *testing.T) {
	good, _ := json.Marshal(ordersPolicy(t))
	v := ordersPolicy(t).Version()
	rule := `{"name":"a","effect":"allow","from":["spiffe://td/a"],"to":["spiffe://td/b"]}`
	vr := mustPolicy(t, workload.Rule{Name: "a", Effect: "allow", From: []string{"spiffe://td/a"}, To: []string{"spiffe://td/b"}}).Version()
	ok := `{"version":"` + vr + `","rules":[` + rule + `]}`
	if _, err := workload.DecodePolicy([]byte(ok)); err != nil {
		t.Fatalf("valid document refused: %v", err)
	}
	bad := map[string]string{
		"wrong version":          strings.Replace(string(good), v, strings.Repeat("0", 64), 1),
		"no version":             `{"rules":[]}`,
		"no rules":               `{"version":"` + v + `"}`,
		"null rules":             `{"version":"x","rules":null}`,
		"unknown member":         `{"version":"` + vr + `","rules":[` + rule + `],"extra":1}`,
		"unknown rule member":    `{"version":"` + vr + `","rules":[` + strings.Replace(rule, `"name"`, `"x":1,"name"`, 1) + `]}`,
		"duplicate member":       `{"version":"` + vr + `","version":"` + vr + `","rules":[` + rule + `]}`,
		"duplicate rule member":  `{"version":"` + vr + `","rules":[` + strings.Replace(rule, `"name":"a"`, `"name":"a","name":"a"`, 1) + `]}`,
		"case variant":           `{"Version":"` + vr + `","rules":[` + rule + `]}`,
		"case variant in rule":   `{"version":"` + vr + `","rules":[` + strings.Replace(rule, `"effect"`, `"Effect"`, 1) + `]}`,
		"case variant duplicate": `{"version":"` + vr + `","VERSION":"` + vr + `","rules":[` + rule + `]}`,
		"trailing data":          ok + `{}`,
		"not an object":          `[]`,
		"rules not array":        `{"version":"` + vr + `","rules":{}}`,
		"from not array":         `{"version":"` + vr + `","rules":[` + strings.Replace(rule, `["spiffe://td/a"]`, `"spiffe://td/a"`, 1) + `]}`,
		"name not string":        `{"version":"` + vr + `","rules":[` + strings.Replace(rule, `"a"`, `1`, 1) + `]}`,
		"invalid rule":           `{"version":"` + vr + `","rules":[` + strings.Replace(rule, "allow", "permit", 1) + `]}`,
		"invalid UTF-8":          `{"version":"` + vr + "\xff" + `","rules":[]}`,
		"empty":                  ``,
	}
	for name, doc := range bad {
		if _, err := workload.DecodePolicy([]byte(doc)); err == nil {
			t.Errorf("%s: accepted", name)
		} else if !errors.Is(err, workload.ErrInvalidPolicy) {
			t.Errorf("%s: error does not wrap ErrInvalidPolicy: %v", name, err)
		}
	}
}

func TestPolicyFor(t *testing.T) {
	p := mustPolicy(t,
		workload.Rule{Name: "a", Effect: "allow", From: []string{shopID.String()}, To: []string{ordersID.String()}},
		workload.Rule{Name: "b", Effect: "allow", From: []string{shopID.String()}, To: []string{paymentsID.String()}},
		workload.Rule{Name: "c", Effect: "deny", From: []string{foreignID.String()}, To: []string{"spiffe://gatehouse.local/*"}},
		workload.Rule{Name: "d", Effect: "allow", From: []string{shopID.String()}, To: []string{"spiffe://evil.local/*"}},
	)
	q := p.For(ordersID)
	var names []string
	for _, r := range q.Rules() {
		names = append(names, r.Name)
	}
	if strings.Join(names, ",") != "a,c" {
		t.Fatalf("For(orders) = %v", names)
	}
	if q.Version() == p.Version() {
		t.Fatal("filtered policy has the same version")
	}
	if _, err := workload.DecodePolicy(must(json.Marshal(q))); err != nil {
		t.Fatal(err)
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

func BenchmarkDecide(b *testing.B) {
	rules := make([]workload.Rule, 0, 1000)
	for i := range 1000 {
		rules = append(rules, workload.Rule{
			Name: fmt.Sprintf("r%d", i), Effect: "allow",
			From:  []string{fmt.Sprintf("spiffe://gatehouse.local/svc%d", i)},
			To:    []string{fmt.Sprintf("spiffe://gatehouse.local/svc%d", (i+1)%1000)},
			Paths: []string{"/api/v1/items", "/api/v1/items/*"}, Methods: []string{"GET", "POST"},
		})
	}
	rules = append(rules,
		workload.Rule{Name: "deny-admin", Effect: "deny", From: []string{"spiffe://gatehouse.local/*"}, To: []string{"spiffe://gatehouse.local/*"}, Paths: []string{"/admin/*"}},
		workload.Rule{Name: "shop", Effect: "allow", From: []string{"spiffe://gatehouse.local/ns/shop/*"}, To: []string{"spiffe://gatehouse.local/svc500"}})
	p := mustPolicy(b, rules...)
	caller := spiffeid.RequireFromString("spiffe://gatehouse.local/svc499")
	target := spiffeid.RequireFromString("spiffe://gatehouse.local/svc500")
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if d := p.Decide(caller, target, "GET", "/api/v1/items/42"); !d.Allow {
			b.Fatal(d.Reason)
		}
	}
}
