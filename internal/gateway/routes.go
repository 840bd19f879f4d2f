package gateway

import (
	"cmp"
	"errors"
	"fmt"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/gateway/edge"
	"github.com/gatehouse/gatehouse/internal/ratelimit"
	"github.com/gatehouse/gatehouse/sdk/auth"
)

// defaultTimeout bounds a proxied request when the route names none.
const defaultTimeout = 30 * time.Second

type tokenMode int

const (
	tokenStrip tokenMode = iota
	tokenForward
	tokenExchange
)

// route is one compiled route; it never changes after compile.
type route struct {
	name      string
	exact     []string // host names; empty with no wildcards: any host
	wildcards []string // ".example.com" for "*.example.com"
	prefix    string
	methods   []string // empty: any
	upstreams []*url.URL
	next      atomic.Uint32
	strip     bool
	timeout   time.Duration
	retries   int
	proxy     *httputil.ReverseProxy

	anonymous bool
	authn     auth.Authenticator
	rule      auth.Rule
	tenant    *config.GatewayTenant

	token    tokenMode
	exchange config.GatewayExchange

	delegate *delegateRule // nil: no delegate rule

	preLimits  []limit // keyed by source address: before authentication
	postLimits []limit // keyed by subject, client or route
	cors       *corsPolicy

	requests *prometheus.CounterVec // code, decision (curried by route)
	duration prometheus.Observer
}

// limit is one compiled rate limit.
type limit struct {
	by     string
	limit  ratelimit.Limit
	shared bool
	mode   ratelimit.FailMode
}

// table is an immutable, ordered set of routes.
type table struct {
	routes []*route
}

// compile turns configured routes into a table. It creates the verifiers
// and introspectors the routes need (kept across reloads, per audience).
func (g *Gateway) compile(cfgs []config.GatewayRoute) (*table, error) {
	var errs []error
	t := &table{}
	for i, c := range cfgs {
		r, err := g.compileRoute(c)
		if err != nil {
			errs = append(errs, fmt.Errorf("gateway.routes[%d] (%s): %w", i, c.Name, err))
			continue
		}
		t.routes = append(t.routes, r)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	// Longer prefixes first; configuration order breaks ties. The host rank
	// depends on the request's host (see match).
	slices.SortStableFunc(t.routes, func(a, b *route) int {
		return cmp.Compare(len(b.prefix), len(a.prefix))
	})
	return t, nil
}

func (g *Gateway) compileRoute(c config.GatewayRoute) (*route, error) {
	r := &route{name: c.Name, prefix: c.PathPrefix, methods: c.Methods, strip: c.StripPrefix,
		timeout: c.Timeout.Std(), retries: c.Retries, tenant: c.Auth.Tenant, exchange: c.Exchange}
	if r.timeout == 0 {
		r.timeout = defaultTimeout
	}
	if p, err := edge.NormalizePath(c.PathPrefix); err != nil || p != c.PathPrefix {
		return nil, errors.New("path_prefix is not in normalized form")
	}
	for _, h := range c.Hosts {
		if w, ok := strings.CutPrefix(h, "*."); ok {
			r.wildcards = append(r.wildcards, "."+w)
		} else {
			r.exact = append(r.exact, h)
		}
	}
	for _, u := range c.Upstreams {
		pu, err := url.Parse(u)
		if err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
			return nil, errors.New("bad upstream URL")
		}
		if c.UpstreamTLS.SPIFFEID != "" && pu.Scheme != "https" {
			return nil, errors.New("upstream_tls.spiffe_id needs https upstreams")
		}
		pu.Path = strings.TrimSuffix(pu.Path, "/")
		pu.RawPath = ""
		r.upstreams = append(r.upstreams, pu)
	}
	switch c.Token {
	case "forward":
		r.token = tokenForward
	case "exchange":
		if g.exchange == nil {
			return nil, errors.New("token exchange is not configured (gateway.token_exchange)")
		}
		r.token = tokenExchange
	default:
		r.token = tokenStrip
	}
	if err := g.compileAuth(r, c.Auth); err != nil {
		return nil, err
	}
	if err := g.compileDelegate(r, c.Delegate); err != nil {
		return nil, err
	}
	for _, rl := range c.RateLimits {
		// Also checked by config validation; a route set given to Reload
		// directly must not reach decide with a key it cannot build.
		switch rl.By {
		case "ip", "route":
		case "subject", "client":
			if r.anonymous {
				return nil, fmt.Errorf("rate limit by %s on an anonymous route", rl.By)
			}
		default:
			return nil, fmt.Errorf("rate limit by %q: want subject, client, route or ip", rl.By)
		}
		l := limit{by: rl.By, shared: rl.Shared, limit: ratelimit.Limit{Rate: rl.Rate, Period: rl.Period.Std(), Burst: rl.Burst}}
		if err := l.limit.Validate(); err != nil {
			return nil, err
		}
		if rl.Shared {
			if g.deps.Shared == nil {
				return nil, errors.New("shared rate limit without gateway.redis")
			}
			m, err := ratelimit.ParseFailMode(rl.OnRedisDown)
			if err != nil {
				return nil, err
			}
			l.mode = m
		}
		if rl.By == "ip" {
			r.preLimits = append(r.preLimits, l)
		} else {
			r.postLimits = append(r.postLimits, l)
		}
	}
	if c.CORS != nil {
		r.cors = newCORS(*c.CORS)
	}
	tr, err := g.transport(c.UpstreamTLS)
	if err != nil {
		return nil, err
	}
	if len(r.upstreams) > 0 {
		r.proxy = g.newProxy(r, tr) // else: an authorizer-only route
	}
	r.requests = g.metrics.requests.MustCurryWith(prometheus.Labels{"route": r.name})
	r.duration = g.metrics.duration.WithLabelValues(r.name)
	return r, nil
}

// compileAuth sets the route's authenticator and rule.
func (g *Gateway) compileAuth(r *route, a config.GatewayAuth) error {
	var rules []auth.Rule
	switch a.Mode {
	case "anonymous":
		r.anonymous = true
		return nil
	case "jwt":
		v, err := g.verifier(a.Audience)
		if err != nil {
			return err
		}
		r.authn = v
	case "introspection":
		in, err := g.introspector(a.Audience)
		if err != nil {
			return err
		}
		r.authn = in
	default:
		return fmt.Errorf("unknown auth mode %q", a.Mode)
	}
	if len(a.ScopesAll) > 0 {
		rules = append(rules, auth.RequireScopes(a.ScopesAll...))
	}
	if len(a.ScopesAny) > 0 {
		rules = append(rules, auth.RequireAnyScope(a.ScopesAny...))
	}
	if len(a.RolesAny) > 0 {
		rules = append(rules, auth.RequireAnyRole(a.RolesAny...))
	}
	if a.EndUser {
		rules = append(rules, auth.RequireEndUser())
	}
	switch len(rules) {
	case 0:
		r.rule = auth.AnyAuthenticated()
	case 1:
		r.rule = rules[0]
	default:
		r.rule = auth.All(rules...)
	}
	return nil
}

// verifier returns the JWT verifier for an audience, creating it once.
func (g *Gateway) verifier(audience string) (*auth.Verifier, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if v, ok := g.verifiers[audience]; ok {
		return v, nil
	}
	issuers := g.cfg.Issuers
	if len(issuers) == 0 {
		issuers = []config.GatewayIssuer{{Issuer: g.deps.Issuer}}
	}
	ics := make([]auth.IssuerConfig, 0, len(issuers))
	for _, is := range issuers {
		ics = append(ics, auth.IssuerConfig{Issuer: is.Issuer, Audience: audience, JWKSURL: is.JWKSURL,
			Algorithms: is.Algorithms, HTTPClient: g.deps.HTTPClient})
	}
	v, err := auth.NewVerifier(auth.VerifierConfig{Issuers: ics, CacheSize: 100_000, MaxTokenLen: maxTokenLen,
		Logger: g.log.With("audience", audience), Now: g.deps.Now})
	if err != nil {
		return nil, fmt.Errorf("jwt verifier: %w", err)
	}
	g.verifiers[audience] = v
	return v, nil
}

// introspector returns the introspection client for an audience.
func (g *Gateway) introspector(audience string) (*auth.Introspector, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if in, ok := g.introspects[audience]; ok {
		return in, nil
	}
	ic := g.cfg.Introspection
	issuer := g.deps.Issuer
	if len(g.cfg.Issuers) > 0 {
		issuer = g.cfg.Issuers[0].Issuer // the first configured issuer answers introspection
	}
	in, err := auth.NewIntrospector(auth.IntrospectorConfig{
		Endpoint: g.endpoint(ic.Endpoint, "/oauth/introspect"), ClientID: ic.ClientID, ClientSecret: ic.ClientSecret,
		Issuer: issuer, Audience: audience, CacheSize: 100_000, CacheTTL: ic.CacheTTL.Std(),
		HTTPClient: g.deps.HTTPClient, Now: g.deps.Now,
	})
	if err != nil {
		return nil, fmt.Errorf("introspection: %w", err)
	}
	g.introspects[audience] = in
	return in, nil
}

// match finds the route for a normalized host and path. When a route
// matches the host and path but not the method, methodMismatch is true.
//
// Only the most specific routes for the host and path (same host rank and
// prefix) are candidates: a method they refuse never falls through to a less
// specific route, such as an anonymous "/" (GW-03). The host rank is how
// the route matched this host: a route listing "example.com" and
// "*.example.com" is a wildcard route for app.example.com.
func (t *table) match(host, path, method string) (r *route, methodMismatch bool) {
	bestRank, bestLen := -1, -1
	for _, rt := range t.routes {
		rk := rt.hostMatch(host)
		if rk < 0 || !edge.HasPathPrefix(path, rt.prefix) {
			continue
		}
		if rk > bestRank || rk == bestRank && len(rt.prefix) > bestLen {
			bestRank, bestLen = rk, len(rt.prefix)
		}
	}
	if bestRank < 0 {
		return nil, false
	}
	for _, rt := range t.routes {
		// Prefixes of one length that both match the path are equal.
		if len(rt.prefix) != bestLen || rt.hostMatch(host) != bestRank || !edge.HasPathPrefix(path, rt.prefix) {
			continue
		}
		if len(rt.methods) > 0 && !slices.Contains(rt.methods, method) {
			methodMismatch = true
			continue
		}
		return rt, false
	}
	return nil, methodMismatch
}

// hostMatch returns how r matches host: 2 by an exact name, 1 by a
// wildcard, 0 as a route for any host, -1 not at all.
func (r *route) hostMatch(host string) int {
	if len(r.exact) == 0 && len(r.wildcards) == 0 {
		return 0
	}
	if slices.Contains(r.exact, host) {
		return 2
	}
	for _, w := range r.wildcards {
		// "*.example.com" matches one or more labels before example.com,
		// never example.com itself.
		if len(host) > len(w) && strings.HasSuffix(host, w) {
			return 1
		}
	}
	return -1
}

// upstreamFor returns the next upstream in turn.
func (r *route) upstreamFor() *url.URL {
	if len(r.upstreams) == 1 {
		return r.upstreams[0]
	}
	return r.upstreams[int(r.next.Add(1))%len(r.upstreams)]
}

// idempotent reports whether a request may be retried on another upstream.
func idempotent(req *http.Request) bool {
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
	}
	return false
}
