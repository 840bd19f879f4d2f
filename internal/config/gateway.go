package config

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// GatewayConfig is the "gateway" section: the authenticated entry point in
// front of the services, and the external authorizer for nginx, Envoy,
// Traefik and Caddy. It is off unless listen or authorizer_listen is set.
// Only "routes" is reloaded while running (see docs/gateway.md); the other
// keys need a restart.
type GatewayConfig struct {
	Listen           string                `yaml:"listen"`            // proxy listener; empty disables
	TLS              TLSConfig             `yaml:"tls"`               // TLS of the proxy listener
	AuthorizerListen string                `yaml:"authorizer_listen"` // external-authorizer listener; empty disables
	TrustedProxies   []string              `yaml:"trusted_proxies"`   // CIDRs whose X-Forwarded-For is believed (GW-02)
	Issuers          []GatewayIssuer       `yaml:"issuers"`           // JWT issuers; empty: this Gatehouse's issuer
	Introspection    GatewayIntrospection  `yaml:"introspection"`     // for routes with auth.mode introspection
	TokenExchange    GatewayTokenExchange  `yaml:"token_exchange"`    // for routes with token: exchange
	Authz            GatewayAuthz          `yaml:"authz"`             // for routes with a delegate rule
	Workload         GatewayWorkload       `yaml:"workload"`          // the gateway's own SVID, for routes with upstream_tls.spiffe_id
	Redis            GatewayRedis          `yaml:"redis"`             // shared rate limits
	AccessLog        bool                  `yaml:"access_log"`        // one JSON line per request (never tokens)
	Routes           []GatewayRoute        `yaml:"routes"`
	ReloadInterval   Duration              `yaml:"reload_interval"` // how often serve re-reads the file for route changes; 0 disables
	Upstream         GatewayUpstreamLimits `yaml:"upstream"`
}

// GatewayIssuer is one trusted JWT issuer of the gateway.
type GatewayIssuer struct {
	Issuer     string   `yaml:"issuer"`
	JWKSURL    string   `yaml:"jwks_url"`   // default: from discovery
	Algorithms []string `yaml:"algorithms"` // default RS256, ES256, EdDSA
}

// GatewayIntrospection is "gateway.introspection" (RFC 7662).
type GatewayIntrospection struct {
	Endpoint     string   `yaml:"endpoint"` // default: <issuer>/oauth/introspect
	ClientID     string   `yaml:"client_id"`
	ClientSecret string   `yaml:"client_secret"`
	CacheTTL     Duration `yaml:"cache_ttl"`
}

// GatewayTokenExchange is "gateway.token_exchange" (RFC 8693).
type GatewayTokenExchange struct {
	TokenEndpoint string `yaml:"token_endpoint"` // default: <issuer>/oauth/token
	ClientID      string `yaml:"client_id"`
	ClientSecret  string `yaml:"client_secret"`
}

// GatewayAuthz is "gateway.authz": how the gateway reaches the
// authorization service for routes with a delegate rule. The gateway calls
// it with its own client-credentials token for Audience.
type GatewayAuthz struct {
	URL           string   `yaml:"url"`            // base URL; empty: no route may delegate
	TokenEndpoint string   `yaml:"token_endpoint"` // default: <issuer>/oauth/token
	ClientID      string   `yaml:"client_id"`
	ClientSecret  string   `yaml:"client_secret"`
	Audience      string   `yaml:"audience"`  // the authz service's audience
	Timeout       Duration `yaml:"timeout"`   // per decision; then the request is refused
	CacheTTL      Duration `yaml:"cache_ttl"` // decision cache; 0 disables
}

// GatewayRedis is "gateway.redis": where shared rate limits live.
type GatewayRedis struct {
	Addr     string   `yaml:"addr"` // host:port; empty: no shared limits
	Password string   `yaml:"password"`
	DB       int      `yaml:"db"`
	Timeout  Duration `yaml:"timeout"`  // per check; then the route's on_redis_down applies
	CoolOff  Duration `yaml:"cool_off"` // after a failure, Redis is skipped this long
}

// GatewayUpstreamLimits is "gateway.upstream": connection pooling.
type GatewayUpstreamLimits struct {
	MaxIdleConnsPerHost int      `yaml:"max_idle_conns_per_host"`
	IdleConnTimeout     Duration `yaml:"idle_conn_timeout"`
	DialTimeout         Duration `yaml:"dial_timeout"`
}

// GatewayRoute is one route: which requests, where to, and what they need.
type GatewayRoute struct {
	Name        string            `yaml:"name"`
	Hosts       []string          `yaml:"hosts"`       // exact names or "*.example.com"; empty: any host
	PathPrefix  string            `yaml:"path_prefix"` // segment prefix: /orders matches /orders/1, not /orders-admin
	Methods     []string          `yaml:"methods"`     // empty: any
	Upstreams   []string          `yaml:"upstreams"`   // http(s)://host:port[/base]; several are used in turn
	StripPrefix bool              `yaml:"strip_prefix"`
	Timeout     Duration          `yaml:"timeout"`
	Retries     int               `yaml:"retries"` // idempotent methods only, on connection failure
	UpstreamTLS GatewayTLS        `yaml:"upstream_tls"`
	Auth        GatewayAuth       `yaml:"auth"`
	Token       string            `yaml:"token"` // forward | strip | exchange
	Exchange    GatewayExchange   `yaml:"exchange"`
	RateLimits  []GatewayRateRule `yaml:"rate_limits"`
	CORS        *GatewayCORS      `yaml:"cors"`
	Delegate    *GatewayDelegate  `yaml:"delegate"` // ask gateway.authz after the route's rules
}

// GatewayDelegate is a route's delegate rule: the caller's token is the
// principal, the resource is (ResourceType, the path segment
// ResourceIDSegment), and the authorization service decides Action.
type GatewayDelegate struct {
	Action            string `yaml:"action"`
	ResourceType      string `yaml:"resource_type"`
	ResourceIDSegment int    `yaml:"resource_id_segment"` // 1-based segment of the normalized path
}

// GatewayTLS is a route's upstream TLS: CA bundle and client certificate
// files, or SPIFFEID: mTLS with the gateway's own SVID, the upstream must
// present exactly this SPIFFE ID (excludes the files).
type GatewayTLS struct {
	CAFile     string `yaml:"ca_file"`
	CertFile   string `yaml:"cert_file"`
	KeyFile    string `yaml:"key_file"`
	ServerName string `yaml:"server_name"`
	SPIFFEID   string `yaml:"spiffe_id"`
}

// GatewayAuth is a route's edge authentication and coarse rules.
type GatewayAuth struct {
	Mode      string         `yaml:"mode"`     // jwt | introspection | anonymous (required)
	Audience  string         `yaml:"audience"` // the API the token must be for (jwt, introspection)
	ScopesAll []string       `yaml:"scopes_all"`
	ScopesAny []string       `yaml:"scopes_any"`
	RolesAny  []string       `yaml:"roles_any"`
	EndUser   bool           `yaml:"end_user"` // refuse client-credentials tokens
	Tenant    *GatewayTenant `yaml:"tenant"`
}

// GatewayTenant names where the request's tenant is: the token's tenant
// claim must equal it.
type GatewayTenant struct {
	Source string `yaml:"source"` // host_label | path_segment
	Index  int    `yaml:"index"`  // 0-based label of the host, or segment of the path
}

// GatewayExchange is what token: exchange asks the IdP for.
type GatewayExchange struct {
	Audience string   `yaml:"audience"`
	Scopes   []string `yaml:"scopes"` // empty: the token's scopes (the IdP narrows)
}

// GatewayRateRule is one rate limit of a route.
type GatewayRateRule struct {
	By          string   `yaml:"by"` // subject | client | route | ip
	Rate        int      `yaml:"rate"`
	Period      Duration `yaml:"period"`
	Burst       int      `yaml:"burst"`
	Shared      bool     `yaml:"shared"`        // across replicas, in Redis
	OnRedisDown string   `yaml:"on_redis_down"` // open (local limits) | closed (503)
}

// GatewayCORS is a route's CORS policy. Absent: CORS requests get no CORS
// headers (the browser refuses them).
type GatewayCORS struct {
	AllowedOrigins   []string `yaml:"allowed_origins"` // exact origins; "*" only without credentials
	AllowedMethods   []string `yaml:"allowed_methods"`
	AllowedHeaders   []string `yaml:"allowed_headers"`
	ExposedHeaders   []string `yaml:"exposed_headers"`
	AllowCredentials bool     `yaml:"allow_credentials"`
	MaxAge           Duration `yaml:"max_age"`
}

// SetDefaults sets the documented defaults of the section.
func (g *GatewayConfig) SetDefaults() {
	*g = GatewayConfig{
		AccessLog:      true,
		ReloadInterval: 2 * second,
		Introspection:  GatewayIntrospection{CacheTTL: 10 * second},
		Authz: GatewayAuthz{Audience: "gatehouse-authz", Timeout: Duration(250 * time.Millisecond),
			CacheTTL: second},
		Redis:    GatewayRedis{Timeout: Duration(50 * time.Millisecond), CoolOff: second},
		Workload: GatewayWorkload{Audience: "gatehouse-ca"},
		Upstream: GatewayUpstreamLimits{MaxIdleConnsPerHost: 256, IdleConnTimeout: 90 * second,
			DialTimeout: 5 * second},
	}
}

// Enabled reports whether a gateway listener is configured.
func (g *GatewayConfig) Enabled() bool { return g.Listen != "" || g.AuthorizerListen != "" }

// Validate checks the section alone (routes included).
func (g *GatewayConfig) Validate() ([]Warning, error) {
	var r report
	g.validate(&r)
	return r.result()
}

// String redacts the secrets of the section.
func (g GatewayIntrospection) String() string {
	return fmt.Sprintf("{Endpoint:%s ClientID:%s ClientSecret:REDACTED}", g.Endpoint, g.ClientID)
}

// LogValue redacts the secrets of the section.
func (g GatewayIntrospection) LogValue() slog.Value { return slog.StringValue(g.String()) }

// String redacts the secrets of the section.
func (g GatewayTokenExchange) String() string {
	return fmt.Sprintf("{TokenEndpoint:%s ClientID:%s ClientSecret:REDACTED}", g.TokenEndpoint, g.ClientID)
}

// LogValue redacts the secrets of the section.
func (g GatewayTokenExchange) LogValue() slog.Value { return slog.StringValue(g.String()) }

// String redacts the secrets of the section.
func (g GatewayAuthz) String() string {
	return fmt.Sprintf("{URL:%s TokenEndpoint:%s ClientID:%s ClientSecret:REDACTED Audience:%s}",
		g.URL, g.TokenEndpoint, g.ClientID, g.Audience)
}

// LogValue redacts the secrets of the section.
func (g GatewayAuthz) LogValue() slog.Value { return slog.StringValue(g.String()) }

// String redacts the password.
func (g GatewayRedis) String() string {
	return fmt.Sprintf("{Addr:%s DB:%d Password:REDACTED}", g.Addr, g.DB)
}

// LogValue redacts the password.
func (g GatewayRedis) LogValue() slog.Value { return slog.StringValue(g.String()) }

var routeName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

func (g *GatewayConfig) validate(r *report) {
	if g.Listen != "" {
		if loopback, ok := validateListen(r, "gateway.listen", g.Listen); ok && !loopback && !g.TLS.Enabled() {
			r.warnf("gateway.listen", "serving plain HTTP on a non-loopback address: put TLS in front or set gateway.tls")
		}
	}
	if (g.TLS.CertFile == "") != (g.TLS.KeyFile == "") {
		r.errorf("gateway.tls", "cert_file and key_file must be set together")
	}
	if g.AuthorizerListen != "" {
		if loopback, ok := validateListen(r, "gateway.authorizer_listen", g.AuthorizerListen); ok && !loopback {
			r.warnf("gateway.authorizer_listen", "the external authorizer must be reachable only by your proxy; this address is not loopback")
		}
	}
	for i, p := range g.TrustedProxies {
		if _, err := parsePrefix(p); err != nil {
			r.errorf(fmt.Sprintf("gateway.trusted_proxies[%d]", i), "not an IP address or CIDR")
		}
	}
	for i, is := range g.Issuers {
		k := fmt.Sprintf("gateway.issuers[%d]", i)
		if u, err := url.Parse(is.Issuer); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			r.errorf(k+".issuer", "must be an absolute http(s) URL")
		}
		if is.JWKSURL != "" {
			if u, err := url.Parse(is.JWKSURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
				r.errorf(k+".jwks_url", "must be an absolute http(s) URL")
			}
		}
		for j, a := range is.Algorithms {
			oneOf(r, fmt.Sprintf("%s.algorithms[%d]", k, j), a, "RS256", "ES256", "EdDSA", "PS256", "ES384", "RS384", "RS512", "PS384", "PS512")
		}
	}
	for _, e := range []struct{ key, ep string }{{"gateway.introspection.endpoint", g.Introspection.Endpoint},
		{"gateway.token_exchange.token_endpoint", g.TokenExchange.TokenEndpoint},
		{"gateway.authz.token_endpoint", g.Authz.TokenEndpoint}} {
		key, ep := e.key, e.ep
		if ep == "" {
			continue
		}
		if u, err := url.Parse(ep); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || strings.Contains(ep, "#") {
			r.errorf(key, "must be an absolute http(s) URL without user info or fragment")
		}
	}
	if a := g.Redis.Addr; a != "" {
		if host, port, err := net.SplitHostPort(a); err != nil || host == "" || !validPort(port) {
			r.errorf("gateway.redis.addr", "must be host:port")
		}
	}
	if g.Introspection.CacheTTL.Std() < 0 || g.Introspection.CacheTTL.Std() > time.Minute {
		r.errorf("gateway.introspection.cache_ttl", "must be between 0s and 1m0s (it bounds how long a revoked token is still accepted)")
	}
	if g.Redis.Timeout.Std() <= 0 || g.Redis.Timeout.Std() > 5*time.Second {
		r.errorf("gateway.redis.timeout", "must be between 1ms and 5s")
	}
	if g.Redis.CoolOff.Std() < 0 || g.Redis.CoolOff.Std() > time.Minute {
		r.errorf("gateway.redis.cool_off", "must be between 0s and 1m0s")
	}
	g.validateAuthz(r)
	if g.ReloadInterval.Std() < 0 {
		r.errorf("gateway.reload_interval", "must not be negative")
	}
	if g.Upstream.MaxIdleConnsPerHost < 1 || g.Upstream.MaxIdleConnsPerHost > 10000 {
		r.errorf("gateway.upstream.max_idle_conns_per_host", "must be between 1 and 10000")
	}
	if g.Upstream.DialTimeout.Std() <= 0 {
		r.errorf("gateway.upstream.dial_timeout", "must be positive")
	}
	if g.Upstream.IdleConnTimeout.Std() <= 0 {
		r.errorf("gateway.upstream.idle_conn_timeout", "must be positive")
	}
	names := map[string]bool{}
	for i := range g.Routes {
		g.validateRoute(r, fmt.Sprintf("gateway.routes[%d]", i), &g.Routes[i], names)
	}
	if len(g.Routes) > 0 && !g.Enabled() {
		r.warnf("gateway.routes", "routes are configured but neither gateway.listen nor gateway.authorizer_listen is set")
	}
}

func (g *GatewayConfig) validateRoute(r *report, k string, rt *GatewayRoute, names map[string]bool) {
	if !routeName.MatchString(rt.Name) {
		r.errorf(k+".name", "required: lower-case letters, digits, '-' and '_' (at most 63)")
	} else if names[rt.Name] {
		r.errorf(k+".name", "duplicate route name %q", rt.Name)
	}
	names[rt.Name] = true
	if !strings.HasPrefix(rt.PathPrefix, "/") || !pathChars(rt.PathPrefix) ||
		strings.Contains(rt.PathPrefix, "//") || strings.Contains(rt.PathPrefix+"/", "/../") || strings.Contains(rt.PathPrefix+"/", "/./") {
		r.errorf(k+".path_prefix", "must be a normalized absolute path (starts with /, no //, . or .. segments; only letters, digits and -._~!$&'()*+,=:@)")
	}
	if len(rt.PathPrefix) > 1 && strings.HasSuffix(rt.PathPrefix, "/") {
		r.warnf(k+".path_prefix", "ends with /: it does not match %s itself, which falls to other routes; write it without the slash", strings.TrimSuffix(rt.PathPrefix, "/"))
	}
	for j, h := range rt.Hosts {
		hk := fmt.Sprintf("%s.hosts[%d]", k, j)
		name := strings.TrimPrefix(h, "*.")
		if name == "" || name != strings.ToLower(name) || strings.ContainsAny(name, ":/@* ") ||
			strings.HasSuffix(name, ".") || strings.HasPrefix(name, ".") || strings.Contains(name, "..") {
			r.errorf(hk, "must be a lower-case host name without port or trailing dot, optionally starting with *.")
		}
	}
	for j, m := range rt.Methods {
		if m != strings.ToUpper(m) || m == "" || strings.ContainsAny(m, " \t/") {
			r.errorf(fmt.Sprintf("%s.methods[%d]", k, j), "must be an upper-case HTTP method")
		}
	}
	if len(rt.Upstreams) == 0 && g.Listen != "" {
		r.errorf(k+".upstreams", "at least one upstream URL is required (only authorizer-only gateways may omit it)")
	}
	for j, up := range rt.Upstreams {
		u, err := url.Parse(up)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || strings.ContainsAny(up, "?#") {
			r.errorf(fmt.Sprintf("%s.upstreams[%d]", k, j), "must be an http(s) URL with a host and no user, query or fragment")
		}
	}
	if rt.Timeout.Std() < 0 || rt.Timeout.Std() > 10*time.Minute {
		r.errorf(k+".timeout", "must be between 0s (default 30s) and 10m0s")
	}
	if rt.Retries < 0 || rt.Retries > 5 {
		r.errorf(k+".retries", "must be between 0 and 5")
	}
	ut := rt.UpstreamTLS
	if (ut.CertFile == "") != (ut.KeyFile == "") {
		r.errorf(k+".upstream_tls", "cert_file and key_file must be set together")
	}
	a := rt.Auth
	switch a.Mode {
	case "jwt", "introspection":
		if a.Audience == "" {
			r.errorf(k+".auth.audience", "required for auth mode %s: the API the token must be for", a.Mode)
		}
		if a.Mode == "introspection" && (g.Introspection.ClientID == "" || g.Introspection.ClientSecret == "") {
			r.errorf(k+".auth.mode", "introspection needs gateway.introspection.client_id and client_secret")
		}
	case "anonymous":
		if len(a.ScopesAll)+len(a.ScopesAny)+len(a.RolesAny) > 0 || a.Tenant != nil || a.EndUser || a.Audience != "" {
			r.errorf(k+".auth", "an anonymous route cannot have audience, scopes, roles, end_user or tenant rules")
		}
		if rt.Token == "exchange" {
			r.errorf(k+".token", "an anonymous route has no token to exchange")
		}
	case "":
		r.errorf(k+".auth.mode", "required: jwt, introspection or anonymous")
	default:
		r.errorf(k+".auth.mode", "must be jwt, introspection or anonymous")
	}
	for _, l := range []struct {
		field string
		list  []string
	}{{"auth.scopes_all", a.ScopesAll}, {"auth.scopes_any", a.ScopesAny}, {"auth.roles_any", a.RolesAny},
		{"exchange.scopes", rt.Exchange.Scopes}} {
		field := l.field
		for j, sc := range l.list {
			if !scopeToken(sc) {
				r.errorf(fmt.Sprintf("%s.%s[%d]", k, field, j), "must be one scope or role: printable ASCII without spaces, quotes or backslashes")
			}
		}
	}
	if t := a.Tenant; t != nil {
		oneOf(r, k+".auth.tenant.source", t.Source, "host_label", "path_segment")
		if t.Index < 0 || t.Index > 16 {
			r.errorf(k+".auth.tenant.index", "must be between 0 and 16")
		}
	}
	switch rt.Token {
	case "forward", "strip":
		if rt.Exchange.Audience != "" || len(rt.Exchange.Scopes) > 0 {
			r.errorf(k+".exchange", "only with token: exchange")
		}
	case "exchange":
		if rt.Exchange.Audience == "" {
			r.errorf(k+".exchange.audience", "required with token: exchange")
		}
		if g.TokenExchange.ClientID == "" || g.TokenExchange.ClientSecret == "" {
			r.errorf(k+".token", "exchange needs gateway.token_exchange.client_id and client_secret")
		}
	default:
		r.errorf(k+".token", "must be forward, strip or exchange")
	}
	for j, rl := range rt.RateLimits {
		rk := fmt.Sprintf("%s.rate_limits[%d]", k, j)
		oneOf(r, rk+".by", rl.By, "subject", "client", "route", "ip")
		if (rl.By == "subject" || rl.By == "client") && a.Mode == "anonymous" {
			r.errorf(rk+".by", "an anonymous route has no %s; use ip or route", rl.By)
		}
		if rl.Rate < 1 || rl.Rate > 1_000_000 {
			r.errorf(rk+".rate", "must be between 1 and 1000000")
		}
		if rl.Period.Std() < time.Millisecond || rl.Period.Std() > 24*time.Hour {
			r.errorf(rk+".period", "must be between 1ms and 24h0m0s")
		}
		if rl.Burst < 0 || rl.Burst > 1_000_000 {
			r.errorf(rk+".burst", "must be between 0 (= rate) and 1000000")
		}
		// The limiter's own bounds (ratelimit.Limit.Validate): at most one
		// event per µs, and a full refill within 100 years.
		if rl.Rate >= 1 && rl.Rate <= 1_000_000 && rl.Burst >= 0 && rl.Burst <= 1_000_000 && rl.Period.Std() >= time.Millisecond {
			interval := rl.Period.Std() / time.Duration(rl.Rate)
			burst := rl.Burst
			if burst == 0 {
				burst = rl.Rate
			}
			if interval < time.Microsecond {
				r.errorf(rk+".rate", "at most one event per microsecond (rate per period)")
			} else if burst > 0 && int64(burst) > int64(100*365*24*time.Hour)/int64(interval) {
				r.errorf(rk+".burst", "a full bucket must refill within 100 years")
			}
		}
		if rl.Shared && g.Redis.Addr == "" {
			r.errorf(rk+".shared", "needs gateway.redis.addr")
		}
		if rl.Shared {
			oneOf(r, rk+".on_redis_down", rl.OnRedisDown, "open", "closed")
		} else if rl.OnRedisDown != "" {
			r.errorf(rk+".on_redis_down", "only for shared limits")
		}
	}
	if d := rt.Delegate; d != nil {
		g.validateDelegate(r, k, rt, d)
	}
	if c := rt.CORS; c != nil {
		if len(c.AllowedOrigins) == 0 {
			r.errorf(k+".cors.allowed_origins", "at least one origin")
		}
		for j, o := range c.AllowedOrigins {
			ok := o == "*"
			if u, err := url.Parse(o); err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" && u.Path == "" &&
				u.User == nil && !strings.ContainsAny(o, "?#") {
				ok = true
			}
			if !ok {
				r.errorf(fmt.Sprintf("%s.cors.allowed_origins[%d]", k, j), "must be an origin (scheme://host[:port]) or *")
			}
		}
		if c.AllowCredentials && slices.Contains(c.AllowedOrigins, "*") {
			r.errorf(k+".cors", "allow_credentials cannot be combined with the * origin")
		}
		for j, m := range c.AllowedMethods {
			if m != strings.ToUpper(m) || m == "" {
				r.errorf(fmt.Sprintf("%s.cors.allowed_methods[%d]", k, j), "must be an upper-case HTTP method")
			}
		}
		for j, h := range c.AllowedHeaders {
			if h == "" || h != http.CanonicalHeaderKey(h) && !strings.Contains(h, "_") && strings.ToLower(h) != h {
				r.errorf(fmt.Sprintf("%s.cors.allowed_headers[%d]", k, j), "must be a header name")
			}
		}
	}
}

// validateAuthz checks gateway.authz: the client settings are required once
// a URL is set (a route's delegate rule needs the URL).
func (g *GatewayConfig) validateAuthz(r *report) {
	a := g.Authz
	if a.URL != "" {
		u, err := url.Parse(a.URL)
		if err != nil || u.Host == "" || u.User != nil || strings.ContainsAny(a.URL, "?#") ||
			!(u.Scheme == "https" || u.Scheme == "http" && isLoopbackHost(u.Hostname())) {
			r.errorf("gateway.authz.url", "must be an https URL (http only on a loopback host) without user info, query or fragment")
		}
		if a.ClientID == "" {
			r.errorf("gateway.authz.client_id", "required with gateway.authz.url: the gateway's client at the IdP")
		}
		if a.ClientSecret == "" {
			r.errorf("gateway.authz.client_secret", "required with gateway.authz.url")
		}
		if !scopeToken(a.Audience) {
			r.errorf("gateway.authz.audience", "required with gateway.authz.url: one audience, without spaces")
		}
	}
	if a.Timeout.Std() < time.Millisecond || a.Timeout.Std() > 10*time.Second {
		r.errorf("gateway.authz.timeout", "must be between 1ms and 10s")
	}
	if a.CacheTTL.Std() < 0 || a.CacheTTL.Std() > 10*time.Second {
		r.errorf("gateway.authz.cache_ttl", "must be between 0s (no cache) and 10s (the AZ-05 freshness bound)")
	}
}

// validateDelegate checks a route's delegate rule.
func (g *GatewayConfig) validateDelegate(r *report, k string, rt *GatewayRoute, d *GatewayDelegate) {
	if !scopeToken(d.Action) {
		r.errorf(k+".delegate.action", "required: the action to ask about, printable ASCII without spaces")
	}
	if !scopeToken(d.ResourceType) {
		r.errorf(k+".delegate.resource_type", "required: the resource type, printable ASCII without spaces")
	}
	if d.ResourceIDSegment < 1 || d.ResourceIDSegment > 32 {
		r.errorf(k+".delegate.resource_id_segment", "must be between 1 and 32 (1-based path segment holding the resource id)")
	} else if prefixSegs := strings.Count(strings.Trim(rt.PathPrefix, "/"), "/") + 1; rt.PathPrefix != "/" && d.ResourceIDSegment <= prefixSegs {
		r.warnf(k+".delegate.resource_id_segment", "names a segment of path_prefix %s: every request asks about the same resource", rt.PathPrefix)
	}
	if rt.Auth.Mode == "anonymous" {
		r.errorf(k+".delegate", "an anonymous route has no caller token to delegate with")
	}
	if g.Authz.URL == "" {
		r.errorf(k+".delegate", "needs gateway.authz.url, client_id and client_secret")
	}
}

// scopeToken reports whether s is one RFC 6749 scope-token (%x21 / %x23-5B /
// %x5D-7E).
func scopeToken(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return s != ""
}

func validPort(p string) bool {
	n, err := strconv.Atoi(p)
	return err == nil && n >= 1 && n <= 65535 && strconv.Itoa(n) == p
}

// pathChars reports whether p has only RFC 3986 pchar characters and '/',
// without '%' (a prefix is compared in normalized form) and ';' (path
// parameters are refused at the edge, GW-03).
func pathChars(p string) bool {
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-._~!$&'()*+,=:@/", c) >= 0 {
			continue
		}
		return false
	}
	return true
}

func parsePrefix(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}
