package config

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// delegateSection is a valid gateway section with one delegating route.
func delegateSection() GatewayConfig {
	g := Default().Gateway
	g.Listen = "127.0.0.1:8443"
	g.Authz.URL, g.Authz.ClientID, g.Authz.ClientSecret = "http://127.0.0.1:8002", "demo-gateway", "gateway-authz-secret"
	r := minimalRoute()
	r.Name, r.PathPrefix = "orders-delete", "/orders"
	r.Methods = []string{"DELETE"}
	r.Delegate = &GatewayDelegate{Action: "delete", ResourceType: "order", ResourceIDSegment: 2}
	g.Routes = []GatewayRoute{r}
	return g
}

func TestGatewayDelegateValid(t *testing.T) {
	for name, mod := range map[string]func(g *GatewayConfig){
		"loopback http":  func(*GatewayConfig) {},
		"https":          func(g *GatewayConfig) { g.Authz.URL = "https://authz.internal:8443/base" },
		"localhost":      func(g *GatewayConfig) { g.Authz.URL = "http://localhost:8002" },
		"cache disabled": func(g *GatewayConfig) { g.Authz.CacheTTL = 0 },
		"max bounds": func(g *GatewayConfig) {
			g.Authz.CacheTTL, g.Authz.Timeout = Duration(10*time.Second), Duration(10*time.Second)
		},
		"token endpoint":  func(g *GatewayConfig) { g.Authz.TokenEndpoint = "https://auth.example.com/oauth/token" },
		"namespaced type": func(g *GatewayConfig) { g.Routes[0].Delegate.ResourceType = "Shop::order" },
		"introspection": func(g *GatewayConfig) {
			g.Introspection.ClientID, g.Introspection.ClientSecret = "gw", "s"
			g.Routes[0].Auth.Mode = "introspection"
		},
		"url without routes": func(g *GatewayConfig) { g.Routes = nil },
	} {
		t.Run(name, func(t *testing.T) {
			g := delegateSection()
			mod(&g)
			if ws, err := g.Validate(); err != nil || len(ws) != 0 {
				t.Fatalf("errors %v, warnings %v", err, ws)
			}
		})
	}
}

func TestGatewayDelegateInvalid(t *testing.T) {
	const r0 = "gateway.routes[0]"
	del := func(f func(d *GatewayDelegate)) func(g *GatewayConfig) {
		return func(g *GatewayConfig) { f(g.Routes[0].Delegate) }
	}
	tests := []struct {
		name string
		mod  func(g *GatewayConfig)
		want []string
	}{
		{"delegate/missing action", del(func(d *GatewayDelegate) { d.Action = "" }), []string{r0 + ".delegate.action"}},
		{"delegate/action with space", del(func(d *GatewayDelegate) { d.Action = "de lete" }), []string{r0 + ".delegate.action"}},
		{"delegate/missing resource type", del(func(d *GatewayDelegate) { d.ResourceType = "" }), []string{r0 + ".delegate.resource_type"}},
		{"delegate/segment 0", del(func(d *GatewayDelegate) { d.ResourceIDSegment = 0 }), []string{r0 + ".delegate.resource_id_segment"}},
		{"delegate/segment negative", del(func(d *GatewayDelegate) { d.ResourceIDSegment = -1 }), []string{r0 + ".delegate.resource_id_segment"}},
		{"delegate/segment too large", del(func(d *GatewayDelegate) { d.ResourceIDSegment = 33 }), []string{r0 + ".delegate.resource_id_segment"}},
		{"delegate/empty rule", del(func(d *GatewayDelegate) { *d = GatewayDelegate{} }),
			[]string{r0 + ".delegate.action", r0 + ".delegate.resource_type", r0 + ".delegate.resource_id_segment"}},
		{"delegate/anonymous route", func(g *GatewayConfig) {
			g.Routes[0].Auth = GatewayAuth{Mode: "anonymous"}
		}, []string{r0 + ".delegate"}},
		{"delegate/authz section missing", func(g *GatewayConfig) {
			g.Authz = Default().Gateway.Authz
		}, []string{r0 + ".delegate"}},
		{"authz/no client id", func(g *GatewayConfig) { g.Authz.ClientID = "" }, []string{"gateway.authz.client_id"}},
		{"authz/no client secret", func(g *GatewayConfig) { g.Authz.ClientSecret = "" }, []string{"gateway.authz.client_secret"}},
		{"authz/no audience", func(g *GatewayConfig) { g.Authz.Audience = "" }, []string{"gateway.authz.audience"}},
		{"authz/plain http not loopback", func(g *GatewayConfig) { g.Authz.URL = "http://authz.internal:8002" }, []string{"gateway.authz.url"}},
		{"authz/user info", func(g *GatewayConfig) { g.Authz.URL = "https://u:p@authz.internal" }, []string{"gateway.authz.url"}},
		{"authz/query", func(g *GatewayConfig) { g.Authz.URL = "https://authz.internal/?a=b" }, []string{"gateway.authz.url"}},
		{"authz/relative", func(g *GatewayConfig) { g.Authz.URL = "authz.internal" }, []string{"gateway.authz.url"}},
		{"authz/bad token endpoint", func(g *GatewayConfig) { g.Authz.TokenEndpoint = "ftp://x" }, []string{"gateway.authz.token_endpoint"}},
		{"authz/timeout zero", func(g *GatewayConfig) { g.Authz.Timeout = 0 }, []string{"gateway.authz.timeout"}},
		{"authz/timeout too long", func(g *GatewayConfig) { g.Authz.Timeout = Duration(11 * time.Second) }, []string{"gateway.authz.timeout"}},
		{"authz/cache ttl over AZ-05", func(g *GatewayConfig) { g.Authz.CacheTTL = Duration(11 * time.Second) }, []string{"gateway.authz.cache_ttl"}},
		{"authz/cache ttl negative", func(g *GatewayConfig) { g.Authz.CacheTTL = Duration(-time.Second) }, []string{"gateway.authz.cache_ttl"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := delegateSection()
			tt.mod(&g)
			_, err := g.Validate()
			got := fieldKeys(t, err)
			slices.Sort(got)
			want := slices.Clone(tt.want)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("error keys %v, want %v (err: %v)", got, want, err)
			}
		})
	}
}

func TestGatewayDelegateWarnsOnPrefixSegment(t *testing.T) {
	g := delegateSection()
	g.Routes[0].Delegate.ResourceIDSegment = 1 // "orders" itself
	ws, err := g.Validate()
	if err != nil || !slices.Equal(warnKeys(ws), []string{"gateway.routes[0].delegate.resource_id_segment"}) {
		t.Fatalf("errors %v, warnings %v", err, warnKeys(ws))
	}
}

func TestGatewayAuthzSecretRedacted(t *testing.T) {
	g := delegateSection()
	for _, s := range []string{g.Authz.String(), fmt.Sprint(g.Authz), g.Authz.LogValue().String()} {
		if strings.Contains(s, "gateway-authz-secret") || !strings.Contains(s, "demo-gateway") {
			t.Errorf("not redacted: %s", s)
		}
	}
}
