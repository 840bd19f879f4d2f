package cli

import (
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/config"
)

// TestDevTourGoesThroughGateway: every printed step is an api call through
// the gateway (or the external authorizer), parses with the runner's
// subset of sh, and a ✓ expects a 2xx, a ✗ a 4xx.
func TestDevTourGoesThroughGateway(t *testing.T) {
	f := devFlags{issuer: "http://localhost:8080", adminListen: "127.0.0.1:8081", demoListen: "127.0.0.1:8090", dataDir: "d",
		gatewayListen: "127.0.0.1:8000", authorizerListen: "0.0.0.0:8001", authzListen: "127.0.0.1:8002", caListen: "127.0.0.1:8003",
		ordersListen: "127.0.0.1:8091"}
	st := devState{AdminToken: "gha_x", DemoServiceSecret: "ghs_s", DemoBillingSecret: "ghs_b"}
	var b strings.Builder
	printTour(&b, f, st, demoURLs{orders: "http://127.0.0.1:8091", payments: "http://127.0.0.1:8092"})
	tour := b.String()
	vars := map[string]string{"ALICE": "a", "BOB": "b", "CAROL": "c", "SERVICE": "s", "BILLING": "x", "AUTHZ": "z"}
	steps := parseTour(t, tour)
	if len(steps) < 15 {
		t.Fatalf("%d steps:\n%s", len(steps), tour)
	}
	for _, s := range steps {
		if s.ok != (s.want/100 == 2) || s.want/100 != 2 && s.want/100 != 4 {
			t.Errorf("%q: mark and status %d disagree", s.desc, s.want)
		}
		if !strings.Contains(s.cmd, "http://127.0.0.1:8000/") && !strings.Contains(s.cmd, "http://127.0.0.1:8001/forward-auth") &&
			!strings.Contains(s.cmd, "http://127.0.0.1:8002/") {
			t.Errorf("%q bypasses the gateway: %s", s.desc, s.cmd)
		}
		cmd := s.cmd
		if m := tourLoopRE.FindStringSubmatch(cmd); m != nil {
			cmd = m[1] + "1" + m[3]
		}
		words, err := shellWords(cmd, vars)
		if err != nil {
			t.Fatalf("%q: %v", s.cmd, err)
		}
		if _, err := apiRequest(words); err != nil {
			t.Fatalf("%q: %v", s.cmd, err)
		}
	}
	for _, want := range []string{tourHelper, "demo-service:ghs_s", "demo-billing:ghs_b", "realm=\"gatehouse\"",
		"http://127.0.0.1:8001/forward-auth", "http://127.0.0.1:8001/envoy", "-> 429", "Host: globex.localhost"} {
		if !strings.Contains(tour, want) {
			t.Errorf("tour lacks %q", want)
		}
	}
	// Without the gateway the Alice tour says so and prints no step.
	b.Reset()
	f.gatewayListen = ""
	printTour(&b, f, st, demoURLs{orders: "http://127.0.0.1:8091", payments: "http://127.0.0.1:8092"})
	if got := parseTour(t, b.String()); len(got) != 0 || !strings.Contains(b.String(), "gateway is disabled") {
		t.Errorf("gateway off: %d steps", len(got))
	}
}

// TestDevGatewayRoutes pins the dev gateway's routes: what each decides at
// the edge and what the upstream gets.
func TestDevGatewayRoutes(t *testing.T) {
	f := devFlags{issuer: "http://localhost:8080", gatewayListen: "127.0.0.1:8000", authorizerListen: "127.0.0.1:8001"}
	g := devGateway(f, devState{DemoGatewaySecret: "ghs_g"}, demoURLs{orders: "http://127.0.0.1:8091", payments: "http://127.0.0.1:8092"})
	if g.TokenExchange.ClientID != devGatewayClient || g.TokenExchange.ClientSecret != "ghs_g" {
		t.Errorf("token exchange client %+v", g.TokenExchange.ClientID)
	}
	byName := map[string]config.GatewayRoute{}
	for _, r := range g.Routes {
		byName[r.Name] = r
	}
	for _, tc := range []struct {
		name, prefix, token, aud, scope, upstream string
		methods                                   []string
		tenant, endUser                           bool
	}{
		{"orders-read", "/orders", "exchange", ordersAudience, "orders:read", "http://127.0.0.1:8091", []string{"GET", "HEAD"}, false, false},
		{"orders-write", "/orders", "forward", ordersAudience, "orders:write", "http://127.0.0.1:8091", []string{"POST", "DELETE"}, false, false},
		{"tenant-orders", "/orders", "forward", ordersAudience, "orders:read", "http://127.0.0.1:8091", []string{"GET"}, true, false},
		{"discovery", "/.well-known/openid-configuration", "strip", "", "", f.issuer, []string{"GET"}, false, false},
		{"payments", "/payments", "forward", paymentsAudience, "payments:write", "http://127.0.0.1:8092", []string{"POST"}, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, ok := byName[tc.name]
			if !ok {
				t.Fatal("missing")
			}
			if r.PathPrefix != tc.prefix || r.Token != tc.token || r.Auth.Audience != tc.aud || !slices.Equal(r.Methods, tc.methods) ||
				!slices.Equal(r.Upstreams, []string{tc.upstream}) || (r.Auth.Tenant != nil) != tc.tenant || r.Auth.EndUser != tc.endUser {
				t.Errorf("%+v", r)
			}
			if tc.scope != "" && !slices.Equal(r.Auth.ScopesAll, []string{tc.scope}) {
				t.Errorf("scopes %v", r.Auth.ScopesAll)
			}
			if tc.token == "exchange" && (r.Exchange.Audience != ordersAudience || !slices.Equal(r.Exchange.Scopes, []string{"orders:read"})) {
				t.Errorf("exchange %+v", r.Exchange)
			}
		})
	}
	if len(g.Routes) != 5 {
		t.Errorf("%d routes", len(g.Routes))
	}
	rec := devGatewayClientRecord([]byte("h"))
	if !slices.Equal(rec.GrantTypes, []string{"urn:ietf:params:oauth:grant-type:token-exchange", "client_credentials"}) ||
		!slices.Equal(rec.Scopes, []string{"orders:read", "authz:check"}) ||
		!slices.Equal(rec.Audiences, []string{ordersAudience, devAuthzAudience, devCAAudience}) || rec.Public ||
		rec.SPIFFEID != "spiffe://gatehouse.local/gateway" {
		t.Errorf("demo-gateway client %+v", rec)
	}
	if g.Authz.URL != "" {
		t.Errorf("no authorization service, yet gateway.authz is %+v", g.Authz)
	}
	// With the authorization service, deletes are delegated at the edge.
	f.authzListen = "127.0.0.1:8002"
	g = devGateway(f, devState{DemoGatewaySecret: "ghs_g"}, demoURLs{orders: "http://127.0.0.1:8091", payments: "http://127.0.0.1:8092"})
	var names []string
	for _, r := range g.Routes {
		names = append(names, r.Name+" "+strings.Join(r.Methods, ","))
	}
	if want := []string{"orders-read GET,HEAD", "orders-write POST", "orders-delete DELETE", "tenant-orders GET", "discovery GET",
		"payments POST"}; !slices.Equal(names, want) {
		t.Fatalf("routes %v, want %v", names, want)
	}
	d := g.Routes[2].Delegate
	if d == nil || d.Action != "delete" || d.ResourceType != "order" || d.ResourceIDSegment != 2 ||
		g.Authz.URL != "http://127.0.0.1:8002" || g.Authz.ClientID != devGatewayClient || g.Authz.ClientSecret != "ghs_g" ||
		g.Authz.Audience != devAuthzAudience {
		t.Fatalf("delegate %+v, authz %+v", d, g.Authz)
	}
	cfg := config.Default()
	cfg.Gateway = g
	if _, err := cfg.Gateway.Validate(); err != nil {
		t.Fatalf("dev gateway does not validate: %v", err)
	}
}

// TestShellWords: the runner's sh subset, and what it refuses.
func TestShellWords(t *testing.T) {
	vars := map[string]string{"ALICE": "tok en", "B_2": "x"}
	for _, tc := range []struct {
		in   string
		want []string
		err  bool
	}{
		{in: `api "$ALICE" http://h/orders`, want: []string{"api", "tok en", "http://h/orders"}},
		{in: `api "" -d '{"a":"$B_2"}'  'u?x=1'`, want: []string{"api", "", "-d", `{"a":"$B_2"}`, "u?x=1"}},
		{in: `a$B_2"b"'c'`, want: []string{"axbc"}},
		{in: `api "$NOPE"`, err: true},
		{in: `api '$ALICE`, err: true},
		{in: `api "$ALICE`, err: true},
		{in: `api $(rm -rf /)`, err: true},
		{in: "api `id`", err: true},
		{in: `api x; rm y`, err: true},
		{in: `api x | sh`, err: true},
		{in: `api "\$x"`, err: true},
		{in: `api $`, err: true},
	} {
		got, err := shellWords(tc.in, vars)
		if (err != nil) != tc.err || !tc.err && !slices.Equal(got, tc.want) {
			t.Errorf("%s: %q %v", tc.in, got, err)
		}
	}
}

// FuzzShellWords: the tour runner's splitter never panics, and a quoted
// single word round-trips.
func FuzzShellWords(f *testing.F) {
	for _, s := range []string{`api "$ALICE" -X DELETE http://h/o`, `'a b' "c$ALICE"`, `"`, `$`, "a\tb"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		words, err := shellWords(s, map[string]string{"ALICE": "v"})
		if err == nil {
			for _, w := range words {
				if w == "" && !strings.Contains(s, `""`) && !strings.Contains(s, `''`) {
					t.Fatalf("empty word from %q", s)
				}
			}
		}
		if !strings.ContainsRune(s, '\'') {
			got, err := shellWords("'"+s+"'", nil)
			if err != nil || len(got) != 1 || got[0] != s {
				t.Fatalf("%q: %q %v", s, got, err)
			}
		}
	})
}

// TestREADMETourMatchesDevTour: every api line of README.md is a step the
// default `gatehouse dev` prints, with the same mark and status, and the
// README's helper is the tour's.
func TestREADMETourMatchesDevTour(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	f := devFlags{issuer: defaultLoginIssuer, adminListen: "127.0.0.1:8081", demoListen: "127.0.0.1:8090", dataDir: "gatehouse-data",
		gatewayListen: "127.0.0.1:8000", authorizerListen: "127.0.0.1:8001", caListen: "127.0.0.1:8003", ordersListen: "127.0.0.1:8091"}
	var tour strings.Builder
	printTour(&tour, f, devState{}, demoURLs{orders: "http://127.0.0.1:8091", payments: "http://127.0.0.1:8092"})
	steps := parseTour(t, tour.String())
	if !strings.Contains(readme, "\n"+tourHelper+"\n") {
		t.Error("README's api helper differs from the tour's")
	}
	lineRE := regexp.MustCompile(`^(api .+?)\s+# ([✓✗]) (\d{3})\b`)
	n := 0
	for _, line := range strings.Split(readme, "\n") {
		if !strings.HasPrefix(line, "api ") {
			continue
		}
		m := lineRE.FindStringSubmatch(line)
		if m == nil {
			t.Errorf("README line without a ✓/✗ status: %s", line)
			continue
		}
		n++
		want, _ := strconv.Atoi(m[3])
		if !slices.ContainsFunc(steps, func(s parsedStep) bool { return s.cmd == m[1] && s.want == want && s.ok == (m[2] == "✓") }) {
			t.Errorf("README step not in the tour (or another status): %s", line)
		}
	}
	if n < 8 {
		t.Errorf("only %d README tour lines", n)
	}
}
