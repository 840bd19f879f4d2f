package cli

import (
	"strings"

	"github.com/gatehouse/gatehouse/examples/demo"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/storage"
)

// devGatewayClient is the gateway's own client at the IdP in dev mode: it
// exchanges users' tokens for narrower internal ones (RFC 8693).
const devGatewayClient = "demo-gateway"

// devGateway returns the dev gateway: the demo services behind one door,
// with the coarse rules (scopes, tenant) decided at the edge and the
// fine-grained ones (whose order is it) left to the services.
func devGateway(f devFlags, st devState, urls demoURLs) config.GatewayConfig {
	g := config.Default().Gateway
	g.Listen = f.gatewayListen
	g.AuthorizerListen = f.authorizerListen
	g.TrustedProxies = []string{"127.0.0.1/32", "::1/128"} // the README's nginx runs on loopback
	g.TokenExchange = config.GatewayTokenExchange{ClientID: devGatewayClient, ClientSecret: st.DemoGatewaySecret}
	g.ReloadInterval = 0
	if urls.orders == "" {
		return g
	}
	perUser := []config.GatewayRateRule{{By: "subject", Rate: 20, Period: config.Duration(1e9), Burst: 40}}
	perIP := []config.GatewayRateRule{{By: "ip", Rate: 50, Period: config.Duration(1e9), Burst: 100}}
	orders := config.GatewayAuth{Mode: "jwt", Audience: ordersAudience}
	read, write, tenant := orders, orders, orders
	read.ScopesAll = []string{"orders:read"}
	write.ScopesAll = []string{"orders:write"}
	tenant.ScopesAll = []string{"orders:read"}
	tenant.Tenant = &config.GatewayTenant{Source: "host_label", Index: 0}
	g.Routes = []config.GatewayRoute{
		// Reads get an internal token for the orders API only, with
		// orders:read only: the services behind never see the user's
		// broader token.
		{Name: "orders-read", PathPrefix: "/orders", Methods: []string{"GET", "HEAD"}, Upstreams: []string{urls.orders},
			Auth: read, Token: "exchange", Exchange: config.GatewayExchange{Audience: ordersAudience, Scopes: []string{"orders:read"}},
			RateLimits: append(perIP, perUser...)},
		// Writes forward the user's token: paying an order calls payments
		// with it (token propagation needs the payments audience).
		{Name: "orders-write", PathPrefix: "/orders", Methods: []string{"POST", "DELETE"}, Upstreams: []string{urls.orders},
			Auth: write, Token: "forward", RateLimits: append(perIP, perUser...)},
		// <tenant>.localhost: the token's tenant must be the host's first label.
		{Name: "tenant-orders", Hosts: []string{"*.localhost"}, PathPrefix: "/orders", Methods: []string{"GET"},
			Upstreams: []string{urls.orders}, Auth: tenant, Token: "forward"},
		// Anonymous: the IdP's discovery document, public by nature.
		{Name: "discovery", PathPrefix: "/.well-known/openid-configuration", Methods: []string{"GET"}, Upstreams: []string{f.issuer},
			Auth: config.GatewayAuth{Mode: "anonymous"}, Token: "strip", RateLimits: perIP},
	}
	if f.authzListen != "" {
		// Deletes are also decided at the edge: the gateway asks the
		// authorization service "may this token delete order <id>?"
		// before orders sees the request (orders asks again, as any
		// service behind a gateway should).
		g.Authz = config.GatewayAuthz{URL: loopbackURL(f.authzListen), ClientID: devGatewayClient, ClientSecret: st.DemoGatewaySecret,
			Audience: devAuthzAudience, Timeout: g.Authz.Timeout, CacheTTL: g.Authz.CacheTTL}
		g.Routes[1].Methods = []string{"POST"}
		g.Routes = append(g.Routes[:2], append([]config.GatewayRoute{{Name: "orders-delete", PathPrefix: "/orders",
			Methods: []string{"DELETE"}, Upstreams: []string{urls.orders}, Auth: write, Token: "forward",
			RateLimits: append(perIP, perUser...),
			Delegate:   &config.GatewayDelegate{Action: "delete", ResourceType: "order", ResourceIDSegment: 2}}}, g.Routes[2:]...)...)
	}
	if urls.payments != "" {
		pay := config.GatewayAuth{Mode: "jwt", Audience: paymentsAudience, ScopesAll: []string{"payments:write"}, EndUser: true}
		g.Routes = append(g.Routes, config.GatewayRoute{Name: "payments", PathPrefix: "/payments", Methods: []string{"POST"},
			Upstreams: []string{urls.payments}, Auth: pay, Token: "forward", RateLimits: append(perIP, perUser...)})
	}
	if f.mtls() {
		// The services talk mutual TLS: the gateway reaches them with its
		// own SVID and must find exactly the service's SPIFFE ID.
		g.Workload = devGatewayWorkload(f, st)
		for i, r := range g.Routes {
			switch {
			case len(r.Upstreams) != 1 || !strings.HasPrefix(r.Upstreams[0], "https://"):
			case r.Upstreams[0] == urls.orders:
				g.Routes[i].UpstreamTLS.SPIFFEID = devSPIFFEID(demo.OrdersPath)
			case r.Upstreams[0] == urls.payments:
				g.Routes[i].UpstreamTLS.SPIFFEID = devSPIFFEID(demo.PaymentsPath)
			}
		}
	}
	return g
}

// devGatewayClientRecord is the demo-gateway client registration: token
// exchange for reads, its own token for the authorization service, and its
// workload identity (an SVID from the CA with its client credentials).
func devGatewayClientRecord(secretHash []byte) storage.Client {
	return storage.Client{ID: devGatewayClient, Name: "Demo gateway (token exchange, delegated decisions, mTLS to the services)",
		SecretHash: secretHash, GrantTypes: []string{"urn:ietf:params:oauth:grant-type:token-exchange", "client_credentials"},
		Scopes: []string{"orders:read", "authz:check"}, Audiences: []string{ordersAudience, devAuthzAudience, devCAAudience},
		SPIFFEID: devSPIFFEID(demo.GatewayPath)}
}
