package cli

import (
	"fmt"
	"io"
	"strings"
)

// defaultLoginIssuer is the -issuer default of examples/login and
// examples/cmd/billing; the tour names the flag only when it differs.
const defaultLoginIssuer = "http://localhost:8080"

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

// printAliceTour prints the "Alice and her orders" section.
func printAliceTour(w io.Writer, f devFlags, st devState, d demoURLs) {
	flag := ""
	if f.issuer != defaultLoginIssuer {
		flag = " -issuer " + f.issuer
	}
	o, p := d.orders, d.payments
	fmt.Fprintf(w, `
 Alice and her orders: demo microservices protected by the Go SDK (examples/)
--------------------------------------------------------------------------------
 orders      %[1]s   o-1001 o-1002 (alice), o-2001 (bob), o-3001 (carol)
 payments    %[2]s
 Each service validates tokens itself with the SDK (keys from the JWKS);
 orders calls payments with the user's token, and payments checks again.
 Their data is in memory: restart gatehouse dev to reset it.

 5. Sign in from the terminal, once per user. Open the URL it prints; the
    login page is shown every time, so one browser can sign in as each user:
    ALICE=$(go run ./examples/login%[3]s)    # sign in as alice
    BOB=$(go run ./examples/login%[3]s)      # sign in as bob
    CAROL=$(go run ./examples/login%[3]s)    # sign in as carol

 6. Try it. First paste this helper (curl with a token, then the status):
    api() { t=$1; shift; curl -s -w '  -> HTTP %%{http_code}\n' -H "Authorization: Bearer $t" "$@"; }

    ✓ alice reads her orders                                         -> 200
      api "$ALICE" %[1]s/orders
    ✓ alice pays o-1001 (orders -> payments -> orders, her token)    -> 201
      api "$ALICE" -X POST %[1]s/orders/o-1001/pay
    ✗ alice cannot delete bob's order                                -> 403
      api "$ALICE" -X DELETE %[1]s/orders/o-2001
    ✓ alice sees bob's orders as his manager                         -> 200
      api "$ALICE" '%[1]s/orders?owner=usr_bob'
    ✗ ...but cannot pay them: payments checks the owner itself       -> 403
      api "$ALICE" -d '{"order_id":"o-2001"}' %[2]s/payments
    ✗ bob cannot see alice's orders                                  -> 403
      api "$BOB" '%[1]s/orders?owner=usr_alice'
    ✗ ...nor one of them (unknown and hidden orders look the same)   -> 404
      api "$BOB" %[1]s/orders/o-1001
    ✓ carol (admin) deletes any order                                -> 204
      api "$CAROL" -X DELETE %[1]s/orders/o-2001

 7. The billing job has no user: its own token, for payments only.
    BILLING=$(curl -s -u demo-billing:%[4]s \
      -d grant_type=client_credentials -d scope=payments:write \
      -d resource=%[5]s %[6]s/oauth/token \
      | sed 's/.*"access_token":"\([^"]*\)".*/\1/')

    ✓ billing creates a payment                                      -> 201
      api "$BILLING" -d '{"invoice_id":"inv-1","amount_cents":1200}' %[2]s/payments
    ✗ billing cannot read orders (its token is not for orders)       -> 401
      api "$BILLING" %[1]s/orders

    Or run the job (SDK client credentials, pays inv-1..inv-3):
    DEMO_BILLING_SECRET=%[4]s go run ./examples/cmd/billing%[7]s
================================================================================
`, o, p, flag, st.DemoBillingSecret, paymentsAudience, f.issuer, billingFlags(f.issuer, d))
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
