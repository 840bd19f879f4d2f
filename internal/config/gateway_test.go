package config

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

// validGatewaySection is a full gateway section that validates without
// errors or warnings: every route feature once.
func validGatewaySection() GatewayConfig {
	g := Default().Gateway
	g.Listen, g.AuthorizerListen = "127.0.0.1:8443", "127.0.0.1:9191"
	g.TrustedProxies = []string{"10.0.0.0/8", "192.0.2.1", "2001:db8::/32"}
	g.Issuers = []GatewayIssuer{{Issuer: "https://auth.example.com", Algorithms: []string{"ES256", "EdDSA"}},
		{Issuer: "https://other.example.com", JWKSURL: "https://other.example.com/keys"}}
	g.Introspection.ClientID, g.Introspection.ClientSecret = "gateway", "introspection-secret"
	g.TokenExchange = GatewayTokenExchange{TokenEndpoint: "https://auth.example.com/oauth/token", ClientID: "gateway", ClientSecret: "exchange-secret"}
	g.Redis.Addr = "127.0.0.1:6379"
	g.Routes = []GatewayRoute{
		{Name: "orders", Hosts: []string{"api.example.com", "*.tenants.example.com"}, PathPrefix: "/orders",
			Methods: []string{"GET", "POST"}, Upstreams: []string{"http://orders:8080", "https://orders-2.internal:8443/base"},
			StripPrefix: true, Timeout: Duration(10 * time.Second), Retries: 2,
			Auth: GatewayAuth{Mode: "jwt", Audience: "https://api.example.com", ScopesAll: []string{"orders:read"},
				ScopesAny: []string{"a", "b"}, RolesAny: []string{"clerk"}, EndUser: true,
				Tenant: &GatewayTenant{Source: "host_label", Index: 0}},
			Token: "exchange", Exchange: GatewayExchange{Audience: "https://orders.internal", Scopes: []string{"orders:read"}},
			RateLimits: []GatewayRateRule{
				{By: "subject", Rate: 100, Period: Duration(time.Minute), Burst: 20},
				{By: "ip", Rate: 10, Period: Duration(time.Second), Shared: true, OnRedisDown: "open"},
				{By: "client", Rate: 1000, Period: Duration(time.Hour), Shared: true, OnRedisDown: "closed"},
			},
			CORS: &GatewayCORS{AllowedOrigins: []string{"https://app.example.com", "http://localhost:3000"},
				AllowedMethods: []string{"GET", "POST"}, AllowedHeaders: []string{"Authorization", "Content-Type"},
				AllowCredentials: true, MaxAge: Duration(time.Hour)}},
		{Name: "reports_v2", PathPrefix: "/reports/v2", Upstreams: []string{"http://reports"}, Token: "forward",
			Auth: GatewayAuth{Mode: "introspection", Audience: "https://api.example.com"}},
		{Name: "public", PathPrefix: "/", Upstreams: []string{"http://web"}, Token: "strip",
			Auth:       GatewayAuth{Mode: "anonymous"},
			RateLimits: []GatewayRateRule{{By: "ip", Rate: 50, Period: Duration(time.Second)}, {By: "route", Rate: 5000, Period: Duration(time.Second)}},
			CORS:       &GatewayCORS{AllowedOrigins: []string{"*"}}},
	}
	return g
}

// minimalRoute is a valid route to modify in one case.
func minimalRoute() GatewayRoute {
	return GatewayRoute{Name: "r", PathPrefix: "/r", Upstreams: []string{"http://up:8080"}, Token: "strip",
		Auth: GatewayAuth{Mode: "jwt", Audience: "https://api.example.com"}}
}

// fieldKeys returns the key of every FieldError in err, in order.
func fieldKeys(t *testing.T, err error) []string {
	t.Helper()
	if err == nil {
		return nil
	}
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	var keys []string
	for _, e := range errs {
		var fe *FieldError
		if !errors.As(e, &fe) {
			t.Fatalf("not a FieldError: %v", e)
		}
		keys = append(keys, fe.Key)
	}
	return keys
}

func TestGatewayValidExample(t *testing.T) {
	g := validGatewaySection()
	ws, err := g.Validate()
	if err != nil || len(ws) != 0 {
		t.Fatalf("errors %v, warnings %v", err, ws)
	}
}

func TestGatewayInvalid(t *testing.T) {
	const r0 = "gateway.routes[0]"
	route := func(f func(r *GatewayRoute)) func(g *GatewayConfig) {
		return func(g *GatewayConfig) {
			r := minimalRoute()
			f(&r)
			g.Routes = []GatewayRoute{r}
		}
	}
	rate := func(f func(l *GatewayRateRule)) func(r *GatewayRoute) {
		return func(r *GatewayRoute) {
			l := GatewayRateRule{By: "ip", Rate: 10, Period: Duration(time.Second)}
			f(&l)
			r.RateLimits = []GatewayRateRule{l}
		}
	}
	cors := func(f func(c *GatewayCORS)) func(r *GatewayRoute) {
		return func(r *GatewayRoute) {
			c := GatewayCORS{AllowedOrigins: []string{"https://app.example.com"}}
			f(&c)
			r.CORS = &c
		}
	}
	tests := []struct {
		name string
		mod  func(g *GatewayConfig)
		want []string
	}{
		// Route names.
		{"name/empty", route(func(r *GatewayRoute) { r.Name = "" }), []string{r0 + ".name"}},
		{"name/upper-case", route(func(r *GatewayRoute) { r.Name = "Orders" }), []string{r0 + ".name"}},
		{"name/space", route(func(r *GatewayRoute) { r.Name = "my route" }), []string{r0 + ".name"}},
		{"name/leading dash", route(func(r *GatewayRoute) { r.Name = "-r" }), []string{r0 + ".name"}},
		{"name/dot", route(func(r *GatewayRoute) { r.Name = "a.b" }), []string{r0 + ".name"}},
		{"name/too long", route(func(r *GatewayRoute) { r.Name = strings.Repeat("a", 64) }), []string{r0 + ".name"}},
		{"name/duplicate", func(g *GatewayConfig) {
			g.Routes = []GatewayRoute{minimalRoute(), minimalRoute()}
			g.Routes[1].PathPrefix = "/other"
		}, []string{"gateway.routes[1].name"}},
		// Path prefixes (GW-03: compared in normalized form).
		{"GW-03/path_prefix dotdot", route(func(r *GatewayRoute) { r.PathPrefix = "/a/../b" }), []string{r0 + ".path_prefix"}},
		{"GW-03/path_prefix trailing dotdot", route(func(r *GatewayRoute) { r.PathPrefix = "/a/.." }), []string{r0 + ".path_prefix"}},
		{"GW-03/path_prefix dot", route(func(r *GatewayRoute) { r.PathPrefix = "/./a" }), []string{r0 + ".path_prefix"}},
		{"GW-03/path_prefix double slash", route(func(r *GatewayRoute) { r.PathPrefix = "//a" }), []string{r0 + ".path_prefix"}},
		{"GW-03/path_prefix encoded slash", route(func(r *GatewayRoute) { r.PathPrefix = "/a%2f" }), []string{r0 + ".path_prefix"}},
		{"GW-03/path_prefix encoded letter", route(func(r *GatewayRoute) { r.PathPrefix = "/%61" }), []string{r0 + ".path_prefix"}},
		{"GW-03/path_prefix backslash", route(func(r *GatewayRoute) { r.PathPrefix = `/a\b` }), []string{r0 + ".path_prefix"}},
		{"GW-03/path_prefix query", route(func(r *GatewayRoute) { r.PathPrefix = "/a?b" }), []string{r0 + ".path_prefix"}},
		{"GW-03/path_prefix fragment", route(func(r *GatewayRoute) { r.PathPrefix = "/a#b" }), []string{r0 + ".path_prefix"}},
		{"GW-03/path_prefix space", route(func(r *GatewayRoute) { r.PathPrefix = "/a b" }), []string{r0 + ".path_prefix"}},
		{"GW-03/path_prefix control", route(func(r *GatewayRoute) { r.PathPrefix = "/a\x00" }), []string{r0 + ".path_prefix"}},
		{"GW-03/path_prefix non-ASCII", route(func(r *GatewayRoute) { r.PathPrefix = "/caf\u00e9" }), []string{r0 + ".path_prefix"}},
		{"GW-03/path_prefix parameter", route(func(r *GatewayRoute) { r.PathPrefix = "/a;b" }), []string{r0 + ".path_prefix"}},
		{"path_prefix/relative", route(func(r *GatewayRoute) { r.PathPrefix = "a" }), []string{r0 + ".path_prefix"}},
		{"path_prefix/empty", route(func(r *GatewayRoute) { r.PathPrefix = "" }), []string{r0 + ".path_prefix"}},
		// Hosts.
		{"hosts/upper-case", route(func(r *GatewayRoute) { r.Hosts = []string{"API.example.com"} }), []string{r0 + ".hosts[0]"}},
		{"hosts/wildcard upper-case", route(func(r *GatewayRoute) { r.Hosts = []string{"ok.example", "*.Example.com"} }), []string{r0 + ".hosts[1]"}},
		{"hosts/port", route(func(r *GatewayRoute) { r.Hosts = []string{"api.example.com:443"} }), []string{r0 + ".hosts[0]"}},
		{"hosts/empty", route(func(r *GatewayRoute) { r.Hosts = []string{""} }), []string{r0 + ".hosts[0]"}},
		{"hosts/bare wildcard", route(func(r *GatewayRoute) { r.Hosts = []string{"*."} }), []string{r0 + ".hosts[0]"}},
		{"hosts/inner wildcard", route(func(r *GatewayRoute) { r.Hosts = []string{"*.*.example.com"} }), []string{r0 + ".hosts[0]"}},
		{"hosts/user info", route(func(r *GatewayRoute) { r.Hosts = []string{"u@example.com"} }), []string{r0 + ".hosts[0]"}},
		// Upstreams.
		{"upstreams/user info", route(func(r *GatewayRoute) { r.Upstreams = []string{"http://u:p@up"} }), []string{r0 + ".upstreams[0]"}},
		{"upstreams/query", route(func(r *GatewayRoute) { r.Upstreams = []string{"http://up?x=1"} }), []string{r0 + ".upstreams[0]"}},
		{"upstreams/empty query", route(func(r *GatewayRoute) { r.Upstreams = []string{"http://up?"} }), []string{r0 + ".upstreams[0]"}},
		{"upstreams/fragment", route(func(r *GatewayRoute) { r.Upstreams = []string{"http://up#f"} }), []string{r0 + ".upstreams[0]"}},
		{"upstreams/empty fragment", route(func(r *GatewayRoute) { r.Upstreams = []string{"http://up#"} }), []string{r0 + ".upstreams[0]"}},
		{"upstreams/ftp", route(func(r *GatewayRoute) { r.Upstreams = []string{"http://ok", "ftp://up"} }), []string{r0 + ".upstreams[1]"}},
		{"upstreams/no scheme", route(func(r *GatewayRoute) { r.Upstreams = []string{"up:8080"} }), []string{r0 + ".upstreams[0]"}},
		{"upstreams/no host", route(func(r *GatewayRoute) { r.Upstreams = []string{"http:///x"} }), []string{r0 + ".upstreams[0]"}},
		{"upstreams/none with a proxy listener", route(func(r *GatewayRoute) { r.Upstreams = nil }), []string{r0 + ".upstreams"}},
		{"methods/lower-case", route(func(r *GatewayRoute) { r.Methods = []string{"get"} }), []string{r0 + ".methods[0]"}},
		{"timeout", route(func(r *GatewayRoute) { r.Timeout = Duration(11 * time.Minute) }), []string{r0 + ".timeout"}},
		{"retries", route(func(r *GatewayRoute) { r.Retries = 6 }), []string{r0 + ".retries"}},
		{"upstream_tls/cert without key", route(func(r *GatewayRoute) { r.UpstreamTLS.CertFile = "c.pem" }), []string{r0 + ".upstream_tls"}},
		// Authentication.
		{"auth/mode missing", route(func(r *GatewayRoute) { r.Auth.Mode = "" }), []string{r0 + ".auth.mode"}},
		{"auth/mode unknown", route(func(r *GatewayRoute) { r.Auth.Mode = "oauth" }), []string{r0 + ".auth.mode"}},
		{"auth/mode case", route(func(r *GatewayRoute) { r.Auth.Mode = "JWT" }), []string{r0 + ".auth.mode"}},
		{"auth/jwt without audience", route(func(r *GatewayRoute) { r.Auth.Audience = "" }), []string{r0 + ".auth.audience"}},
		{"auth/introspection without client", func(g *GatewayConfig) {
			route(func(r *GatewayRoute) { r.Auth.Mode = "introspection" })(g)
			g.Introspection.ClientSecret = ""
		}, []string{r0 + ".auth.mode"}},
		{"auth/anonymous with scopes", route(func(r *GatewayRoute) { r.Auth = GatewayAuth{Mode: "anonymous", ScopesAll: []string{"x"}} }), []string{r0 + ".auth"}},
		{"auth/anonymous with audience", route(func(r *GatewayRoute) { r.Auth.Mode = "anonymous" }), []string{r0 + ".auth"}},
		{"auth/anonymous with end_user", route(func(r *GatewayRoute) { r.Auth = GatewayAuth{Mode: "anonymous", EndUser: true} }), []string{r0 + ".auth"}},
		{"auth/tenant", route(func(r *GatewayRoute) { r.Auth.Tenant = &GatewayTenant{Source: "header", Index: 17} }),
			[]string{r0 + ".auth.tenant.source", r0 + ".auth.tenant.index"}},
		{"auth/scope with space", route(func(r *GatewayRoute) { r.Auth.ScopesAll = []string{"ok", "a b"} }), []string{r0 + ".auth.scopes_all[1]"}},
		{"auth/empty scope", route(func(r *GatewayRoute) { r.Auth.ScopesAny = []string{""} }), []string{r0 + ".auth.scopes_any[0]"}},
		{"auth/role with quote", route(func(r *GatewayRoute) { r.Auth.RolesAny = []string{`a"b`} }), []string{r0 + ".auth.roles_any[0]"}},
		// Token handling.
		{"token/missing", route(func(r *GatewayRoute) { r.Token = "" }), []string{r0 + ".token"}},
		{"token/unknown", route(func(r *GatewayRoute) { r.Token = "pass" }), []string{r0 + ".token"}},
		{"token/exchange settings without exchange", route(func(r *GatewayRoute) { r.Exchange.Audience = "https://x" }), []string{r0 + ".exchange"}},
		{"token/exchange without audience", route(func(r *GatewayRoute) { r.Token = "exchange" }), []string{r0 + ".exchange.audience"}},
		{"token/exchange without client", func(g *GatewayConfig) {
			route(func(r *GatewayRoute) { r.Token, r.Exchange.Audience = "exchange", "https://x" })(g)
			g.TokenExchange.ClientID = ""
		}, []string{r0 + ".token"}},
		{"token/exchange without secret", func(g *GatewayConfig) {
			route(func(r *GatewayRoute) { r.Token, r.Exchange.Audience = "exchange", "https://x" })(g)
			g.TokenExchange.ClientSecret = ""
		}, []string{r0 + ".token"}},
		{"token/exchange scope with space", route(func(r *GatewayRoute) {
			r.Token, r.Exchange = "exchange", GatewayExchange{Audience: "https://x", Scopes: []string{"orders:read orders:admin"}}
		}), []string{r0 + ".exchange.scopes[0]"}},
		{"token/exchange on anonymous", route(func(r *GatewayRoute) {
			r.Auth, r.Token, r.Exchange.Audience = GatewayAuth{Mode: "anonymous"}, "exchange", "https://x"
		}), []string{r0 + ".token"}},
		// Rate limits.
		{"rate/by subject on anonymous", route(func(r *GatewayRoute) {
			r.Auth = GatewayAuth{Mode: "anonymous"}
			rate(func(l *GatewayRateRule) { l.By = "subject" })(r)
		}), []string{r0 + ".rate_limits[0].by"}},
		{"rate/by client on anonymous", route(func(r *GatewayRoute) {
			r.Auth = GatewayAuth{Mode: "anonymous"}
			rate(func(l *GatewayRateRule) { l.By = "client" })(r)
		}), []string{r0 + ".rate_limits[0].by"}},
		{"rate/by unknown", route(rate(func(l *GatewayRateRule) { l.By = "user" })), []string{r0 + ".rate_limits[0].by"}},
		{"rate/rate 0", route(rate(func(l *GatewayRateRule) { l.Rate = 0 })), []string{r0 + ".rate_limits[0].rate"}},
		{"rate/rate too high", route(rate(func(l *GatewayRateRule) { l.Rate = 1_000_001 })), []string{r0 + ".rate_limits[0].rate"}},
		{"rate/faster than 1/µs", route(rate(func(l *GatewayRateRule) { l.Rate, l.Period = 1_000_000, Duration(time.Millisecond) })),
			[]string{r0 + ".rate_limits[0].rate"}},
		{"rate/refill too long", route(rate(func(l *GatewayRateRule) { l.Rate, l.Period, l.Burst = 1, Duration(24*time.Hour), 1_000_000 })),
			[]string{r0 + ".rate_limits[0].burst"}},
		{"rate/period 0", route(rate(func(l *GatewayRateRule) { l.Period = 0 })), []string{r0 + ".rate_limits[0].period"}},
		{"rate/burst negative", route(rate(func(l *GatewayRateRule) { l.Burst = -1 })), []string{r0 + ".rate_limits[0].burst"}},
		{"rate/shared without redis", func(g *GatewayConfig) {
			route(rate(func(l *GatewayRateRule) { l.Shared, l.OnRedisDown = true, "open" }))(g)
			g.Redis.Addr = ""
		}, []string{r0 + ".rate_limits[0].shared"}},
		{"rate/on_redis_down missing", route(rate(func(l *GatewayRateRule) { l.Shared = true })), []string{r0 + ".rate_limits[0].on_redis_down"}},
		{"rate/on_redis_down invalid", route(rate(func(l *GatewayRateRule) { l.Shared, l.OnRedisDown = true, "Open" })),
			[]string{r0 + ".rate_limits[0].on_redis_down"}},
		{"rate/on_redis_down with non-shared", route(rate(func(l *GatewayRateRule) { l.OnRedisDown = "closed" })),
			[]string{r0 + ".rate_limits[0].on_redis_down"}},
		// CORS.
		{"cors/* with credentials", route(cors(func(c *GatewayCORS) { c.AllowedOrigins, c.AllowCredentials = []string{"*"}, true })),
			[]string{r0 + ".cors"}},
		{"cors/no origin", route(cors(func(c *GatewayCORS) { c.AllowedOrigins = nil })), []string{r0 + ".cors.allowed_origins"}},
		{"cors/origin with path", route(cors(func(c *GatewayCORS) { c.AllowedOrigins = []string{"https://app.example.com/"} })),
			[]string{r0 + ".cors.allowed_origins[0]"}},
		{"cors/origin without scheme", route(cors(func(c *GatewayCORS) { c.AllowedOrigins = []string{"app.example.com"} })),
			[]string{r0 + ".cors.allowed_origins[0]"}},
		{"cors/null origin", route(cors(func(c *GatewayCORS) { c.AllowedOrigins = []string{"null"} })), []string{r0 + ".cors.allowed_origins[0]"}},
		{"cors/origin with user", route(cors(func(c *GatewayCORS) { c.AllowedOrigins = []string{"https://u@app.example.com"} })),
			[]string{r0 + ".cors.allowed_origins[0]"}},
		{"cors/origin with fragment", route(cors(func(c *GatewayCORS) { c.AllowedOrigins = []string{"https://app.example.com#x"} })),
			[]string{r0 + ".cors.allowed_origins[0]"}},
		{"cors/origin with empty query", route(cors(func(c *GatewayCORS) { c.AllowedOrigins = []string{"https://app.example.com?"} })),
			[]string{r0 + ".cors.allowed_origins[0]"}},
		{"cors/lower-case method", route(cors(func(c *GatewayCORS) { c.AllowedMethods = []string{"get"} })), []string{r0 + ".cors.allowed_methods[0]"}},
		// Section keys.
		{"trusted_proxies", func(g *GatewayConfig) { g.TrustedProxies = []string{"10.0.0.0/8", "proxy.local"} }, []string{"gateway.trusted_proxies[1]"}},
		{"issuers", func(g *GatewayConfig) {
			g.Issuers = []GatewayIssuer{{Issuer: "auth.example.com", JWKSURL: "file:///keys", Algorithms: []string{"none"}}}
		}, []string{"gateway.issuers[0].issuer", "gateway.issuers[0].jwks_url", "gateway.issuers[0].algorithms[0]"}},
		{"tls", func(g *GatewayConfig) { g.TLS.CertFile = "c.pem" }, []string{"gateway.tls"}},
		{"listen", func(g *GatewayConfig) { g.Listen = "8443" }, []string{"gateway.listen"}},
		{"introspection cache_ttl", func(g *GatewayConfig) { g.Introspection.CacheTTL = Duration(2 * time.Minute) }, []string{"gateway.introspection.cache_ttl"}},
		{"redis addr without port", func(g *GatewayConfig) { g.Redis.Addr = "redis" }, []string{"gateway.redis.addr"}},
		{"redis addr bad port", func(g *GatewayConfig) { g.Redis.Addr = "redis:99999" }, []string{"gateway.redis.addr"}},
		{"redis addr without host", func(g *GatewayConfig) { g.Redis.Addr = ":6379" }, []string{"gateway.redis.addr"}},
		{"endpoints", func(g *GatewayConfig) {
			g.Introspection.Endpoint, g.TokenExchange.TokenEndpoint = "auth.example.com/introspect", "https://u:p@auth.example.com/token"
		}, []string{"gateway.introspection.endpoint", "gateway.token_exchange.token_endpoint"}},
		{"redis timeout", func(g *GatewayConfig) { g.Redis.Timeout = 0 }, []string{"gateway.redis.timeout"}},
		{"redis cool_off", func(g *GatewayConfig) { g.Redis.CoolOff = Duration(-time.Second) }, []string{"gateway.redis.cool_off"}},
		{"upstream pool", func(g *GatewayConfig) { g.Upstream.MaxIdleConnsPerHost = 0 }, []string{"gateway.upstream.max_idle_conns_per_host"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := validGatewaySection()
			tc.mod(&g)
			_, err := g.Validate()
			if got := fieldKeys(t, err); !slices.Equal(got, tc.want) {
				t.Fatalf("keys %q, want %q\n%v", got, tc.want, err)
			}
		})
	}
}

// TestGatewayAllErrorsAtOnce: every problem of every route is reported in
// one pass, in order.
func TestGatewayAllErrorsAtOnce(t *testing.T) {
	g := validGatewaySection()
	g.TrustedProxies = []string{"nope"}
	g.Routes = append(g.Routes, GatewayRoute{Name: "orders", Hosts: []string{"A.example.com:80"}, PathPrefix: "/a/../b",
		Upstreams: []string{"ftp://x"}, Auth: GatewayAuth{Mode: "anonymous", ScopesAll: []string{"x"}}, Token: "exchange",
		RateLimits: []GatewayRateRule{{By: "subject", Rate: 0, Period: Duration(time.Second), OnRedisDown: "open"}},
		CORS:       &GatewayCORS{AllowedOrigins: []string{"*"}, AllowCredentials: true}})
	_, err := g.Validate()
	const k = "gateway.routes[3]"
	want := []string{"gateway.trusted_proxies[0]", k + ".name", k + ".path_prefix", k + ".hosts[0]", k + ".upstreams[0]",
		k + ".auth", k + ".token", k + ".exchange.audience", k + ".rate_limits[0].by", k + ".rate_limits[0].rate",
		k + ".rate_limits[0].on_redis_down", k + ".cors"}
	if got := fieldKeys(t, err); !slices.Equal(got, want) {
		t.Fatalf("keys\n%q\nwant\n%q", got, want)
	}
	for _, secret := range []string{"introspection-secret", "exchange-secret"} {
		if strings.Contains(err.Error(), secret) {
			t.Fatal("a secret in an error message")
		}
	}
}

func TestGatewayAuthorizerOnly(t *testing.T) {
	g := validGatewaySection()
	g.Listen = ""
	for i := range g.Routes {
		g.Routes[i].Upstreams = nil // no proxy: routes need no upstream
	}
	if ws, err := g.Validate(); err != nil || len(ws) != 0 {
		t.Fatalf("errors %v, warnings %v", err, ws)
	}
	g.AuthorizerListen = ""
	ws, err := g.Validate()
	if err != nil || len(ws) != 1 || ws[0].Key != "gateway.routes" {
		t.Fatalf("routes without any listener: errors %v, warnings %v", err, ws)
	}
}

func TestGatewayWarnings(t *testing.T) {
	g := validGatewaySection()
	g.Listen, g.AuthorizerListen = "0.0.0.0:8443", ":9191"
	ws, err := g.Validate()
	var keys []string
	for _, w := range ws {
		keys = append(keys, w.Key)
	}
	if err != nil || !slices.Equal(keys, []string{"gateway.listen", "gateway.authorizer_listen"}) {
		t.Fatalf("errors %v, warnings %q", err, keys)
	}
}

// TestGatewayOnlyConfig: with idp.listen and admin.listen empty the process
// runs the gateway alone: no storage or secrets needed, but a gateway
// listener is.
func TestGatewayOnlyConfig(t *testing.T) {
	base := func() Config {
		c := Default()
		c.Issuer = "https://auth.example.com"
		c.IDP.Listen, c.Admin.Listen = "", ""
		c.Gateway = validGatewaySection()
		return c
	}
	c := base()
	if !c.GatewayOnly() {
		t.Fatal("not gateway-only")
	}
	if ws, err := c.Validate(); err != nil || len(ws) != 0 {
		t.Fatalf("gateway-only: errors %v, warnings %v", err, ws)
	}
	c = base()
	c.Gateway.Listen = ""
	if _, err := c.Validate(); err != nil {
		t.Fatalf("authorizer-only gateway: %v", err) // routes keep upstreams: allowed without a proxy
	}
	c = base()
	c.Gateway.Listen, c.Gateway.AuthorizerListen = "", ""
	c.Gateway.Routes = nil
	_, err := c.Validate()
	if got := fieldKeys(t, err); !slices.Equal(got, []string{"idp.listen"}) {
		t.Fatalf("nothing to run: keys %q (%v)", got, err)
	}
	c = base()
	c.Gateway.Routes[0].Name = "Bad" // the gateway section is still validated
	_, err = c.Validate()
	if got := fieldKeys(t, err); !slices.Equal(got, []string{"gateway.routes[0].name"}) {
		t.Fatalf("keys %q", got)
	}
	c = base()
	c.IDP.Listen = "127.0.0.1:8080" // not gateway-only: storage and secrets are required again
	_, err = c.Validate()
	got := fieldKeys(t, err)
	if c.GatewayOnly() || !slices.ContainsFunc(got, func(k string) bool { return strings.HasPrefix(k, "storage.") }) {
		t.Fatalf("with the IdP: keys %q", got)
	}
}
