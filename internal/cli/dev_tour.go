package cli

import (
	"fmt"
	"io"
	"net"
	"strings"
)

// defaultLoginIssuer is the -issuer default of examples/login and
// examples/cmd/billing; the tour names the flag only when it differs.
const defaultLoginIssuer = "http://localhost:8080"

// tourHelper is the shell function every tour step uses: curl with a bearer
// token when one is given, then the status. It works in bash and zsh.
const tourHelper = `api() { t=$1; shift; if [ -n "$t" ]; then set -- -H "Authorization: Bearer $t" "$@"; fi; curl -s -w '  -> HTTP %{http_code}\n' "$@"; }`

// tourStep is one ✓/✗ line of the tour: what it shows, the status it must
// answer, and the shell command (an api call, or a loop of them).
type tourStep struct {
	ok   bool
	desc string
	want int
	cmd  string
}

func (s tourStep) print(w io.Writer) {
	mark := "✗"
	if s.ok {
		mark = "✓"
	}
	fmt.Fprintf(w, "    %s %-62s -> %d\n      %s\n", mark, s.desc, s.want, s.cmd)
}

func printSteps(w io.Writer, steps []tourStep) {
	for _, s := range steps {
		s.print(w)
	}
}

// printTour prints what to try. demo holds the base URLs of the demo
// services; empty when they are disabled.
func printTour(w io.Writer, f devFlags, st devState, demo demoURLs) {
	fmt.Fprintf(w, `
================================================================================
 Gatehouse dev mode is running (NOT for production: generated secrets, http).
================================================================================
 Identity provider   %[1]s
   discovery         %[1]s/.well-known/openid-configuration
   JWKS              %[1]s/.well-known/jwks.json
 Admin API           http://%[2]s/admin/v1   (OpenAPI: /admin/v1/openapi.yaml)
   admin token       %[3]s
 Metrics             http://%[2]s/metrics
 Data directory      %[4]s  (delete it to start over)

 Demo users          alice / %[5]s   (role user, manager of bob; tenant acme)
                     bob   / %[6]s  (role user; tenant acme)
                     carol / %[10]s (role admin; tenant acme)

 1. A token for a service (client credentials):
    curl -s -u demo-service:%[7]s -d grant_type=client_credentials \
         -d scope=orders:read %[1]s/oauth/token

 2. Introspect it as a resource server (paste the access_token):
    curl -s -u demo-api:%[8]s -d token=ACCESS_TOKEN %[1]s/oauth/introspect

 3. Sign in with a browser: open http://%[9]s/ and sign in as alice.
    The demo app uses golang.org/x/oauth2 + go-oidc: code flow with PKCE,
    consent, ID token verification, refresh, userinfo and sign-out.

 4. Manage it: GATEHOUSE_ADMIN_TOKEN=%[3]s go run ./cmd/gatehouse clients list
================================================================================
`, f.issuer, f.adminListen, st.AdminToken, f.dataDir, demoAlicePassword, demoBobPassword,
		st.DemoServiceSecret, st.DemoAPISecret, f.demoListen, demoCarolPassword)
	if demo.orders != "" {
		printAliceTour(w, f, st, demo)
	}
}

// loopbackURL is http://addr, with 127.0.0.1 for a wildcard host; "" for "".
func loopbackURL(addr string) string {
	if addr == "" {
		return ""
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "http://" + addr
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// printAliceTour prints the "Alice and her orders" section: every request
// goes through the gateway.
func printAliceTour(w io.Writer, f devFlags, st devState, d demoURLs) {
	flag := ""
	if f.issuer != defaultLoginIssuer {
		flag = " -issuer " + f.issuer
	}
	g := loopbackURL(f.gatewayListen)
	fmt.Fprintf(w, `
 Alice and her orders: demo microservices behind the API gateway (examples/)
--------------------------------------------------------------------------------
 gateway     %[3]s   the one door: /orders, /payments, discovery
 orders      %[1]s   o-1001 o-1002 (alice), o-2001 (bob), o-3001 (carol)
 payments    %[2]s
 The gateway decides the coarse things at the edge (a valid token for the
 API, its scope, the tenant of the host, rate limits) and answers those
 refusals itself, WWW-Authenticate realm="gatehouse": the services never see
 them. The services decide the fine-grained things with the Go SDK (whose
 order is it, the manager of its owner, the admin role). Reads reach orders
 with an internal token from an RFC 8693 exchange (orders only, orders:read
 only); writes carry the user's token, which orders propagates to payments.
 Their data is in memory: restart gatehouse dev to reset it.

 5. Sign in from the terminal, once per user. Open the URL it prints; the
    login page is shown every time, so one browser can sign in as each user:
    ALICE=$(go run ./examples/login%[4]s)    # sign in as alice
    BOB=$(go run ./examples/login%[4]s)      # sign in as bob
    CAROL=$(go run ./examples/login%[4]s)    # sign in as carol
`, d.orders, d.payments, g, flag)
	if g == "" {
		fmt.Fprintf(w, `
 The gateway is disabled (--gateway-listen ""): call the services directly.
================================================================================
`)
		return
	}
	fmt.Fprintf(w, `
 6. At the edge: the gateway decides, the services are not called. Paste
    this helper first (curl with a token if one is given, then the status),
    and a service token that may read orders but not write them:
    %[1]s
    SERVICE=$(curl -s -u demo-service:%[2]s \
      -d grant_type=client_credentials -d scope=orders:read %[3]s/oauth/token \
      | sed 's/.*"access_token":"\([^"]*\)".*/\1/')

`, tourHelper, st.DemoServiceSecret, f.issuer)
	printSteps(w, edgeSteps(g))
	fmt.Fprintf(w, `
 7. In the services: the gateway lets these through, orders and payments
    decide who may see, change or pay which order.

`)
	printSteps(w, serviceSteps(g))
	fmt.Fprintf(w, `
 8. The billing job has no user: its own token, for payments only.
    BILLING=$(curl -s -u demo-billing:%[1]s \
      -d grant_type=client_credentials -d scope=payments:write \
      -d resource=%[2]s %[3]s/oauth/token \
      | sed 's/.*"access_token":"\([^"]*\)".*/\1/')

`, st.DemoBillingSecret, paymentsAudience, f.issuer)
	printSteps(w, billingSteps(g))
	fmt.Fprintf(w, `
    The job itself runs inside, next to payments (service to service, not
    through the gateway; SDK client credentials, pays inv-1..inv-3):
    %[1]s
`, billingCommand(f, st, d))
	a := loopbackURL(f.authorizerListen)
	if a != "" {
		fmt.Fprintf(w, `
 9. Behind nginx (auth_request), Traefik (ForwardAuth) or Caddy
    (forward_auth) instead: the same decisions from the external authorizer
    %[1]s/forward-auth (Envoy ext_authz: %[1]s/envoy).
    On 200, copy its X-Auth-* headers and Authorization to the upstream.

`, a)
		printSteps(w, authorizerSteps(a, g))
	}
	fmt.Fprintf(w, `
 Rate limits at the edge: 20 requests/s per user (burst 40), 50/s per address.

`)
	printSteps(w, rateSteps(g))
	if f.authzListen != "" {
		printAuthzTour(w, f, st)
	}
	if f.mtls() {
		printWorkloadTour(w, f, d, g)
	}
	fmt.Fprintf(w, `
================================================================================
`)
}

// edgeSteps are refused or allowed by the gateway itself.
func edgeSteps(g string) []tourStep {
	return []tourStep{
		{false, "no token: refused at the edge", 401, `api "" ` + g + `/orders`},
		{false, "orders:read only: cannot delete (insufficient_scope)", 403, `api "$SERVICE" -X DELETE ` + g + `/orders/o-1001`},
		{true, "alice on her tenant's host (acme)", 200, `api "$ALICE" -H 'Host: acme.localhost' ` + g + `/orders`},
		{false, "...not on another tenant's host", 403, `api "$ALICE" -H 'Host: globex.localhost' ` + g + `/orders`},
		{true, "discovery is public", 200, `api "" -o /dev/null ` + g + `/.well-known/openid-configuration`},
	}
}

// serviceSteps pass the edge; the services decide. Their order matters:
// paying and deleting change the in-memory data.
func serviceSteps(g string) []tourStep {
	o := g + "/orders"
	return []tourStep{
		{true, "alice reads her orders (an orders:read-only token)", 200, `api "$ALICE" ` + o},
		{true, "alice sees bob's orders as his manager", 200, `api "$ALICE" '` + o + `?owner=usr_bob'`},
		{false, "...not carol's order (hidden looks unknown)", 404, `api "$ALICE" ` + o + `/o-3001`},
		{false, "bob cannot see alice's orders", 403, `api "$BOB" '` + o + `?owner=usr_alice'`},
		{false, "...nor one of them", 404, `api "$BOB" ` + o + `/o-1001`},
		{false, "alice cannot delete bob's order", 403, `api "$ALICE" -X DELETE ` + o + `/o-2001`},
		{true, "alice pays o-1001 (orders -> payments, her token)", 201, `api "$ALICE" -X POST ` + o + `/o-1001/pay`},
		{false, "...not bob's: payments checks the owner itself", 403, `api "$ALICE" -d '{"order_id":"o-2001"}' ` + g + `/payments`},
		{true, "carol (admin) reads alice's orders", 200, `api "$CAROL" '` + o + `?owner=usr_alice'`},
		{true, "carol (admin) deletes any order", 204, `api "$CAROL" -X DELETE ` + o + `/o-2001`},
	}
}

// billingSteps: a client token is refused at the edge.
func billingSteps(g string) []tourStep {
	return []tourStep{
		{false, "billing cannot read orders (its token is not for orders)", 401, `api "$BILLING" ` + g + `/orders`},
		{false, "billing cannot pay through the gateway (end users only)", 403,
			`api "$BILLING" -d '{"invoice_id":"inv-1","amount_cents":1200}' ` + g + `/payments`},
	}
}

// authorizerSteps describe the original request in X-Forwarded-* headers.
func authorizerSteps(a, g string) []tourStep {
	fwd := `-H 'X-Forwarded-Method: GET' -H 'X-Forwarded-Host: ` + strings.TrimPrefix(g, "http://") +
		`' -H 'X-Forwarded-Uri: /orders' `
	return []tourStep{
		{true, "alice may GET /orders: 200 and her X-Auth-* headers", 200, `api "$ALICE" -i ` + fwd + a + `/forward-auth`},
		{false, "no token", 401, `api "" ` + fwd + a + `/forward-auth`},
	}
}

// rateSteps flood bob's per-user limit with one curl (its URL globbing
// reuses the connection: quick enough on any laptop); last, as it empties
// his bucket.
func rateSteps(g string) []tourStep {
	return []tourStep{
		{false, "60 quick reads by bob (curl [1-60]): the last are refused", 429,
			`api "$BOB" '` + g + `/orders?n=[1-60]' | grep -o 'HTTP [0-9]*' | sort | uniq -c`},
	}
}

// billingFlags are the flags examples/cmd/billing needs beyond its defaults.
func billingFlags(issuer string, d demoURLs) string {
	var b strings.Builder
	if issuer != defaultLoginIssuer {
		b.WriteString(" -issuer " + issuer)
	}
	if d.payments != "http://127.0.0.1:8092" {
		b.WriteString(" -payments-url " + d.payments)
	}
	if d.orders != "http://127.0.0.1:8091" {
		b.WriteString(" -orders-url " + d.orders)
	}
	return b.String()
}
