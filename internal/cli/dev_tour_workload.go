package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/gatehouse/gatehouse/examples/billing"
	"github.com/gatehouse/gatehouse/examples/demo"
	"github.com/gatehouse/gatehouse/sdk/auth"
	"github.com/gatehouse/gatehouse/sdk/workload"
)

// svidInfo is one workload identity shown by the tour.
type svidInfo struct {
	id      string
	how     string
	expires time.Time // zero when unknown
}

// workloadCheck is one call dev makes at start and reports: what it shows,
// the outcome expected ("201", "401", "refused") and the one seen.
type workloadCheck struct {
	ok     bool // ✓ an allowed call, ✗ a refusal
	desc   string
	want   string
	got    string
	detail string
}

func (c workloadCheck) print(w io.Writer) {
	mark := "✗"
	if c.ok {
		mark = "✓"
	}
	if c.got != c.want {
		mark = "!" // never expected: say so loudly
	}
	fmt.Fprintf(w, "    %s %-58s expected %s, got %s\n", mark, c.desc, c.want, c.got)
	if c.detail != "" {
		fmt.Fprintf(w, "      %s\n", c.detail)
	}
}

// workloadReport is what the tour's workload step prints: filled by
// checkWorkload at start; nil before (the static parts are printed alone).
type workloadReport struct {
	fingerprint string // hex SHA-256 of the CA root
	svids       []svidInfo
	checks      []workloadCheck
	billingJoin string // a fresh join token for `go run ./examples/cmd/billing`
}

// svidOf describes src's current SVID.
func svidOf(src workload.Source, how string) svidInfo {
	s, err := src.GetX509SVID()
	if err != nil || len(s.Certificates) == 0 {
		return svidInfo{id: "(none: " + how + ")", how: how}
	}
	return svidInfo{id: s.ID.String(), how: how, expires: s.Certificates[0].NotAfter}
}

// errText is the cause of a client error without the request's URL.
func errText(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return err.Error()
}

// checkWorkload makes the tour's workload calls with the services' own
// identities: payments towards orders (refused by orders' policy), orders
// without a user token (mTLS accepted, the JWT still required), billing
// with its join-token identity and its own token (allowed), and the same
// join token again (refused).
func checkWorkload(ctx context.Context, w *devWorkload, orders, payments *workload.CASource, urls demoURLs) *workloadReport {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	rep := &workloadReport{fingerprint: w.ca.RootFingerprint, billingJoin: w.tokens.billing}
	rep.svids = append(rep.svids, svidOf(orders, "client credentials of "+devOrdersClient),
		svidOf(payments, "join token (single use)"))
	ordersID, _ := spiffeid.FromString(devSPIFFEID(demo.OrdersPath))
	paymentsID, _ := spiffeid.FromString(devSPIFFEID(demo.PaymentsPath))

	// payments -> orders: nothing allows it; a deny rule forbids it.
	c := workloadCheck{desc: "payments -> orders, with payments' SVID: orders refuses", want: "refused"}
	c.got, c.detail = call(ctx, payments, demo.OrdersPath, http.MethodGet, urls.orders+"/orders", nil)
	if c.got == "refused" {
		d := orders.Policy().Decide(paymentsID, ordersID, http.MethodGet, "/orders")
		c.detail = "orders' policy: " + d.Reason + "; payments saw: " + c.detail
	}
	rep.checks = append(rep.checks, c)

	// orders -> payments without a user: the connection is allowed, the
	// request is not (two identities, both checked).
	c = workloadCheck{desc: "orders -> payments, mTLS but no user token", want: "401"}
	c.got, c.detail = call(ctx, orders, demo.PaymentsPath, http.MethodPost, urls.payments+"/payments",
		strings.NewReader(`{"order_id":"o-1001"}`))
	if c.got == "401" {
		c.detail = "the connection was accepted (policy orders-pays); payments still wants the user's token"
	}
	rep.checks = append(rep.checks, c)

	// billing: its own identity from a join token, its own token inside.
	c = workloadCheck{ok: true, desc: "billing (join token identity) -> payments, its own token", want: "201"}
	bid, err := demo.NewIdentity(ctx, w.ca, demo.Credential{JoinToken: w.tokens.billingCheck})
	if err != nil {
		c.got, c.detail = "error", errText(err)
		rep.svids = append(rep.svids, svidInfo{id: devSPIFFEID(demo.BillingPath) + " (none)", how: "join token"})
	} else {
		rep.svids = append(rep.svids, svidOf(bid, "join token (single use)"))
		c.got, c.detail = payInvoice(ctx, w, bid, urls.payments)
		_ = bid.Close()
	}
	rep.checks = append(rep.checks, c)

	// The same join token again.
	c = workloadCheck{desc: "the same join token again", want: "401"}
	if again, err := demo.NewIdentity(ctx, w.ca, demo.Credential{JoinToken: w.tokens.billingCheck}); err == nil {
		_ = again.Close()
		c.got = "accepted"
	} else {
		c.got, c.detail = "error", errText(err)
		if strings.Contains(err.Error(), "401 invalid_token") {
			c.got = "401"
		}
	}
	rep.checks = append(rep.checks, c)
	return rep
}

// call makes one request with src's SVID to the service at peerPath and
// returns its status ("refused" when the connection is) and a detail.
func call(ctx context.Context, id demo.Identity, peerPath, method, u string, body io.Reader) (string, string) {
	rt, err := demo.ClientTransport(id, peerPath)
	if err != nil {
		return "error", err.Error()
	}
	defer rt.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return "error", err.Error()
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Transport: rt, Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return "refused", errText(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	return fmt.Sprint(resp.StatusCode), strings.TrimSpace(string(b))
}

// payInvoice runs the billing job for one invoice with identity id.
func payInvoice(ctx context.Context, w *devWorkload, id demo.Identity, paymentsURL string) (string, string) {
	ts, err := auth.NewClientCredentials(auth.ClientCredentialsConfig{TokenURL: w.issuer + "/oauth/token",
		ClientID: w.billingCred.ClientID, ClientSecret: w.billingCred.ClientSecret, Scopes: []string{"payments:write"},
		Audience: []string{paymentsAudience}})
	if err != nil {
		return "error", err.Error()
	}
	rt, err := demo.ClientTransport(id, demo.PaymentsPath)
	if err != nil {
		return "error", err.Error()
	}
	defer rt.CloseIdleConnections()
	res, err := billing.Run(ctx, billing.Config{TokenSource: ts, PaymentsURL: paymentsURL,
		HTTPClient: &http.Client{Transport: rt, Timeout: 10 * time.Second}, Invoices: []billing.Invoice{{ID: "inv-0", AmountCents: 100}}})
	switch {
	case err != nil:
		return "error", err.Error()
	case res[0].Err != nil:
		return "refused", errText(res[0].Err)
	}
	return fmt.Sprint(res[0].Status), "paid " + res[0].PaymentID + ": " + devSPIFFEID(demo.BillingPath) +
		" on the connection, demo-billing's token inside"
}

// printWorkloadTour prints the workload identity step: the identities, the
// checks made at start, a payment through the gateway and the billing job
// with its own join token.
func printWorkloadTour(w io.Writer, f devFlags, d demoURLs, g string) {
	rep := d.workload
	fp := "(see the CA's bundle)"
	if rep != nil && rep.fingerprint != "" {
		fp = rep.fingerprint
	}
	fmt.Fprintf(w, `
 11. Workload identity (mTLS): inside, nothing trusts the network. Each
    service holds a short-lived X.509 SVID from the workload CA
    %[1]s (trust domain %[2]s); every call between
    services is mutual TLS, and the CA's policy says who may call whom
    (default deny; a deny rule wins). The user's token travels beside it:
    payments checks both. The gateway reaches orders and payments with its
    own SVID; payments asks orders who owns an order through the gateway.
    CA root (SHA-256): %[3]s

`, httpsURL(f.caListen), devTrustDomain, fp)
	if rep != nil {
		for _, s := range rep.svids {
			exp := "expiry unknown"
			if !s.expires.IsZero() {
				exp = "expires " + s.expires.UTC().Format(time.RFC3339)
			}
			fmt.Fprintf(w, "    SVID %-36s %s, %s\n", s.id, exp, s.how)
		}
		fmt.Fprintf(w, "\n    Checked at start with the services' own SVIDs:\n\n")
		for _, c := range rep.checks {
			c.print(w)
		}
	}
	fmt.Fprintf(w, `
    Through the gateway (gateway -> orders -> payments, every hop mTLS,
    alice's token alongside); the answer names the service payments saw,
    "paid_by_service":"%[1]s":

`, devSPIFFEID(demo.OrdersPath))
	printSteps(w, workloadSteps(g))
	if rep != nil && rep.billingJoin != "" {
		fmt.Fprintf(w, `
    Step 8's billing job gets its own identity the same way: its command
    carries a fresh join token (single use, valid 1h; make more with
    go run ./cmd/gatehouse join-tokens create --spiffe-id %[1]s).
`, devSPIFFEID(demo.BillingPath))
	}
}

// workloadSteps are the workload step's api calls.
func workloadSteps(g string) []tourStep {
	return []tourStep{
		{true, "alice pays o-1002: orders' SVID and her token reach payments", 201, `api "$ALICE" -X POST ` + g + `/orders/o-1002/pay`},
	}
}

// billingCommand is the command running examples/cmd/billing against the
// dev services (over mTLS, with the printed join token, when they use it).
func billingCommand(f devFlags, st devState, d demoURLs) string {
	env := "DEMO_BILLING_SECRET=" + st.DemoBillingSecret
	flags := billingFlags(f.issuer, d)
	if d.workload != nil && d.workload.billingJoin != "" {
		env += " DEMO_BILLING_JOIN_TOKEN=" + d.workload.billingJoin
		flags += " -ca-url " + httpsURL(f.caListen) + " -ca-fingerprint " + d.workload.fingerprint
	}
	return env + " go run ./examples/cmd/billing" + flags
}
