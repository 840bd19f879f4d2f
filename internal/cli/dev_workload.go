package cli

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/gatehouse/gatehouse/examples/demo"
	"github.com/gatehouse/gatehouse/internal/app"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/secret"
	"github.com/gatehouse/gatehouse/internal/storage"
	"github.com/gatehouse/gatehouse/sdk/workload"
)

// devTrustDomain is the SPIFFE trust domain of `gatehouse dev`.
const devTrustDomain = "gatehouse.local"

// devCAAudience is the audience of the client-credentials tokens the dev CA
// accepts (ca.client_audience).
var devCAAudience = config.Default().CA.ClientAudience

// devSPIFFEID is the SPIFFE ID of a dev workload, e.g. devSPIFFEID("/orders").
func devSPIFFEID(path string) string { return "spiffe://" + devTrustDomain + path }

// mtls reports whether the demo services talk mutual TLS: the CA runs and
// so do the gateway (the services' front door, also payments' way to
// orders) and orders.
func (f devFlags) mtls() bool {
	return f.caListen != "" && f.gatewayListen != "" && f.ordersListen != ""
}

// devCA returns the dev workload CA and its policy: the gateway calls
// orders and payments, orders pays, billing pays. Nothing lets payments call
// orders (default deny); an explicit deny rule says so too, and would win
// over any allow rule added later.
func devCA(f devFlags) config.CAConfig {
	c := config.Default().CA
	c.Listen = f.caListen
	c.TrustDomain = devTrustDomain
	gw, orders, payments, billing := devSPIFFEID(demo.GatewayPath), devSPIFFEID(demo.OrdersPath),
		devSPIFFEID(demo.PaymentsPath), devSPIFFEID(demo.BillingPath)
	c.Policy = []workload.Rule{
		{Name: "gateway-calls-orders", Effect: "allow", From: []string{gw}, To: []string{orders}, Paths: []string{"/orders", "/orders/*"}},
		{Name: "gateway-calls-payments", Effect: "allow", From: []string{gw}, To: []string{payments}, Paths: []string{"/payments"},
			Methods: []string{"POST"}},
		{Name: "orders-pays", Effect: "allow", From: []string{orders}, To: []string{payments}, Paths: []string{"/payments"},
			Methods: []string{"POST"}},
		{Name: "billing-pays", Effect: "allow", From: []string{billing}, To: []string{payments}, Paths: []string{"/payments"},
			Methods: []string{"POST"}},
		{Name: "payments-never-calls-orders", Effect: "deny", From: []string{payments}, To: []string{orders}},
	}
	return c
}

// devGatewayWorkload is gateway.workload in dev: the gateway's own SVID
// with demo-gateway's client credentials; trust and trust domain come from
// the CA in the same process.
func devGatewayWorkload(f devFlags, st devState) config.GatewayWorkload {
	w := config.Default().Gateway.Workload
	w.CAURL = httpsURL(f.caListen)
	w.ClientID, w.ClientSecret = devGatewayClient, st.DemoGatewaySecret
	w.Audience = devCAAudience
	return w
}

// httpsURL is https://addr, with 127.0.0.1 for a wildcard host.
func httpsURL(addr string) string {
	u := loopbackURL(addr)
	if u == "" {
		return ""
	}
	return "https://" + u[len("http://"):]
}

// devJoinTokens are the single-use join tokens dev makes at start.
type devJoinTokens struct {
	payments     string // payments' first SVID
	billingCheck string // the tour's billing check (used at start, then shown refused)
	billing      string // printed for `go run ./examples/cmd/billing`
}

// devJoinTokenTTL bounds the printed billing token: long enough to read the
// tour first.
const devJoinTokenTTL = time.Hour

// createJoinTokens stores fresh join tokens as the admin API does: random,
// kept only as their keyed hash.
func createJoinTokens(ctx context.Context, a *app.App) (devJoinTokens, error) {
	now := time.Now()
	mk := func(path string) (string, error) {
		tok := secret.New()
		err := a.Store.CreateJoinToken(ctx, storage.JoinToken{Hash: hex.EncodeToString(a.Secrets.Sum(tok)), SPIFFEID: devSPIFFEID(path),
			CreatedAt: now, ExpiresAt: now.Add(devJoinTokenTTL)})
		if err != nil {
			return "", fmt.Errorf("join token for %s: %w", path, err)
		}
		return tok, nil
	}
	var t devJoinTokens
	var err error
	if t.payments, err = mk(demo.PaymentsPath); err != nil {
		return t, err
	}
	if t.billingCheck, err = mk(demo.BillingPath); err != nil {
		return t, err
	}
	t.billing, err = mk(demo.BillingPath)
	return t, err
}

// devWorkload is what the demo services need for mutual TLS in dev.
type devWorkload struct {
	ca          demo.CA
	issuer      string
	ordersCreds demo.Credential
	tokens      devJoinTokens
	billingCred demo.Credential // demo-billing's client credentials (its token for payments)
}

// identities gets orders' SVID (client credentials of demo-orders) and
// payments' (its join token), waiting for their first policy.
func (w *devWorkload) identities(ctx context.Context) (orders, payments *workload.CASource, err error) {
	ictx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if orders, err = demo.NewIdentity(ictx, w.ca, w.ordersCreds); err != nil {
		return nil, nil, fmt.Errorf("orders' SVID: %w", err)
	}
	if payments, err = demo.NewIdentity(ictx, w.ca, demo.Credential{JoinToken: w.tokens.payments}); err != nil {
		_ = orders.Close()
		return nil, nil, fmt.Errorf("payments' SVID: %w", err)
	}
	for _, s := range []*workload.CASource{orders, payments} {
		if err := waitPolicy(ictx, s); err != nil {
			_, _ = orders.Close(), payments.Close()
			return nil, nil, err
		}
	}
	return orders, payments, nil
}

// waitPolicy waits until s has fetched a policy (until then it denies all).
func waitPolicy(ctx context.Context, s *workload.CASource) error {
	for s.Policy() == nil {
		select {
		case <-ctx.Done():
			return errors.New("the workload policy was not fetched from the CA in time")
		case <-s.Updated():
		case <-time.After(100 * time.Millisecond):
		}
	}
	return nil
}

// devClientSPIFFEIDs are the demo clients' workload identities.
var devClientSPIFFEIDs = map[string]string{
	devOrdersClient:  devSPIFFEID(demo.OrdersPath),
	devGatewayClient: devSPIFFEID(demo.GatewayPath),
}

// upgradeDemoClients gives demo clients of an older data directory their
// SPIFFE ID and the CA audience (seeding never overwrites a client), so an
// old data directory keeps working; it reports the clients it changed.
func upgradeDemoClients(ctx context.Context, a *app.App) ([]string, error) {
	var changed []string
	for _, id := range []string{devOrdersClient, devGatewayClient} {
		c, err := a.Store.GetClient(ctx, id)
		if err != nil {
			if errors.Is(err, storage.ErrNotFound) {
				continue
			}
			return changed, err
		}
		if c.SPIFFEID == devClientSPIFFEIDs[id] && slices.Contains(c.Audiences, devCAAudience) {
			continue
		}
		err = a.Store.UpdateClient(ctx, id, func(c storage.Client) (storage.Client, error) {
			c.SPIFFEID = devClientSPIFFEIDs[id]
			if !slices.Contains(c.Audiences, devCAAudience) {
				c.Audiences = append(c.Audiences, devCAAudience)
			}
			c.UpdatedAt = time.Now()
			return c, nil
		})
		if err != nil {
			return changed, fmt.Errorf("client %s: %w", id, err)
		}
		changed = append(changed, id)
	}
	return changed, nil
}

// withWorkloadIdentity registers the demo client c (demo-orders or
// demo-gateway) with its SPIFFE ID and lets it ask tokens for the CA.
func withWorkloadIdentity(c storage.Client) storage.Client {
	if id, ok := devClientSPIFFEIDs[c.ID]; ok {
		c.SPIFFEID = id
		if !slices.Contains(c.Audiences, devCAAudience) {
			c.Audiences = append(slices.Clip(c.Audiences), devCAAudience)
		}
	}
	return c
}

// newDevWorkload prepares the services' mutual TLS: join tokens for
// payments and billing, orders' client credentials, the CA's address.
func newDevWorkload(ctx context.Context, a *app.App, f devFlags, st devState) (*devWorkload, error) {
	tokens, err := createJoinTokens(ctx, a)
	if err != nil {
		return nil, err
	}
	fp, err := caFingerprint(a)
	if err != nil {
		return nil, err
	}
	return &devWorkload{
		ca:     demo.CA{URL: httpsURL(f.caListen), TrustDomain: devTrustDomain, RootFingerprint: fp},
		issuer: f.issuer, tokens: tokens,
		ordersCreds: demo.Credential{Issuer: f.issuer, ClientID: devOrdersClient, ClientSecret: st.DemoOrdersSecret, Audience: devCAAudience},
		billingCred: demo.Credential{ClientID: "demo-billing", ClientSecret: st.DemoBillingSecret},
	}, nil
}

// caFingerprint is the pinned root of the CA in this process.
func caFingerprint(a *app.App) (string, error) {
	fp := a.CAFingerprint()
	if fp == "" {
		return "", errors.New("workload CA: no root yet (is ca.listen set?)")
	}
	return fp, nil
}

// gatewaySVID describes the gateway's own identity (gateway.workload),
// with its expiry when the app tells it (it logs it in any case).
func gatewaySVID(a *app.App) svidInfo {
	info := svidInfo{id: devSPIFFEID(demo.GatewayPath), how: "client credentials of " + devGatewayClient + " (gateway.workload)"}
	if g, ok := any(a).(interface {
		GatewaySVID() (*x509svid.SVID, error)
	}); ok {
		if s, err := g.GatewaySVID(); err == nil && len(s.Certificates) > 0 {
			info.id, info.expires = s.ID.String(), s.Certificates[0].NotAfter
		}
	}
	return info
}

// waitGatewayReady polls the gateway's readiness (its keys and its own
// SVID), bounded, so the tour's first steps work at once.
func waitGatewayReady(ctx context.Context, gatewayURL string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var last error
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, gatewayURL+"/readyz", nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("readyz answered %d", resp.StatusCode)
		}
		last = err
		select {
		case <-ctx.Done():
			return last
		case <-time.After(100 * time.Millisecond):
		}
	}
}
