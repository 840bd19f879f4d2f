package gateway

import (
	"bytes"
	"context"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/gatehouse/gatehouse/internal/gateway/edge"
	"github.com/gatehouse/gatehouse/internal/ratelimit"
	"github.com/gatehouse/gatehouse/sdk/auth"
)

// maxTokenLen caps a bearer token before any decoding (JWT-F01).
const maxTokenLen = 16 << 10

// maxFormPeek is how much of a form body is read to look for a second token
// (GW-04). Larger form bodies are refused when a token is also in the header.
const maxFormPeek = 64 << 10

// input is what the pipeline decides on: the request as the client sent it
// (for the proxy) or as the fronting proxy describes it (authorizer mode).
type input struct {
	method   string
	host     string // Host header as sent
	path     string // escaped path, without query
	rawQuery string
	header   http.Header
	peer     string // the TCP peer, "ip:port"
	body     *http.Request
}

// decision is an allowed request.
type decision struct {
	route  *route
	path   string // normalized
	host   string // normalized
	claims *auth.Claims
	client netip.Addr
	// upstreamToken is what goes to the upstream in Authorization, "" for none.
	upstreamToken string
	// scopes are those of the token the upstream gets (narrowed by an
	// exchange); nil means the caller's.
	scopes []string
	rate   []rateResult
}

type rateResult struct {
	res ratelimit.Result
	lim ratelimit.Limit
}

// denial is a refused request: an HTTP status, a public message and the
// private cause (logged, never sent).
type denial struct {
	status int
	code   string // error code in the JSON body
	msg    string // public
	cause  error  // private; also decides RFC 6750 answers when authErr
	// authErr is answered with auth.WriteError (RFC 6750 challenge).
	authErr bool
	rate    *rateResult
	route   string
	reason  string // short machine reason for logs and metrics
}

func deny(status int, code, msg, reason string, cause error) *denial {
	return &denial{status: status, code: code, msg: msg, reason: reason, cause: cause}
}

// decide runs the whole edge pipeline. It never proxies; it says allow (with
// what the upstream gets) or deny.
func (g *Gateway) decide(ctx context.Context, in input) (_ *decision, den *denial) {
	t := g.table.Load()
	path, err := edge.NormalizePath(in.path)
	if err == nil && strings.IndexByte(path, ';') >= 0 {
		// Path parameters: servlet-style upstreams read /admin;x as /admin,
		// which no /admin rule would see. Refused (GW-03).
		err = edge.ErrBadPath
	}
	if err != nil {
		return nil, deny(http.StatusBadRequest, "invalid_request", "the request path is not acceptable", "bad_path", err)
	}
	if !canonicalMethod(in.method) {
		// Routes name methods in upper case; "delete" would skip a DELETE
		// rule and reach an upstream that upper-cases it (GW-03).
		return nil, deny(http.StatusMethodNotAllowed, "method_not_allowed", "method not allowed", "method", errBadRequest)
	}
	host, ok := edge.HostName(in.host)
	if !ok {
		return nil, deny(http.StatusBadRequest, "invalid_request", "the Host header is not acceptable", "bad_host", errBadRequest)
	}
	rt, wrongMethod := t.match(host, path, in.method)
	if rt == nil {
		if wrongMethod {
			return nil, deny(http.StatusMethodNotAllowed, "method_not_allowed", "method not allowed", "method", errNoRoute)
		}
		return nil, deny(http.StatusNotFound, "not_found", "no route", "no_route", errNoRoute)
	}
	// Every refusal after routing names the route (access log, metrics).
	defer func() {
		if den != nil && den.route == "" {
			den.route = rt.name
		}
	}()
	d := &decision{route: rt, path: path, host: host}
	d.client, _ = edge.ClientIP(in.peer, in.header, g.trusted)
	if den := g.limit(ctx, d, rt.preLimits); den != nil {
		return nil, den
	}

	token, terr := edge.BearerToken(in.header, in.rawQuery, maxTokenLen)
	if terr == nil && in.body != nil && formBodyHasToken(in.body) {
		terr = errors.New("gateway: token in both header and body")
		return nil, deny(http.StatusBadRequest, "invalid_request", "send the token in the Authorization header only", "token_in_body", terr)
	}
	switch {
	case errors.Is(terr, edge.ErrNoToken):
	case terr != nil:
		return nil, deny(http.StatusBadRequest, "invalid_request", "send exactly one bearer token, in the Authorization header only", "bad_authorization", terr)
	}
	if rt.anonymous {
		if rt.token == tokenForward {
			d.upstreamToken = token
		}
		return d, g.limit(ctx, d, rt.postLimits)
	}
	if token == "" {
		return nil, &denial{status: http.StatusUnauthorized, authErr: true, cause: auth.ErrNoToken, reason: "no_token"}
	}
	claims, err := rt.authn.Authenticate(ctx, token)
	if err != nil {
		return nil, &denial{status: http.StatusUnauthorized, authErr: true, cause: err, reason: "invalid_token"}
	}
	if !headerSafe(claims) || claims.Subject == "" && claims.ClientID == "" {
		// No identity to hand to the upstream: an empty X-Auth-Subject
		// must never mean "authenticated" (JWT-C04).
		return nil, &denial{status: http.StatusUnauthorized, authErr: true, cause: auth.ErrInvalidToken, reason: "unsafe_claims"}
	}
	if err := rt.rule.Check(claims); err != nil {
		return nil, &denial{status: http.StatusForbidden, authErr: true, cause: err, reason: "rule"}
	}
	if rt.tenant != nil {
		want := tenantOf(rt.tenant.Source, rt.tenant.Index, host, path)
		if want == "" || claims.Tenant != want {
			return nil, &denial{status: http.StatusForbidden, authErr: true, reason: "tenant",
				cause: &auth.ForbiddenError{Reason: "the token is not for this tenant"}}
		}
	}
	d.claims = claims
	if den := g.limit(ctx, d, rt.postLimits); den != nil {
		return nil, den
	}
	if rt.delegate != nil {
		// After the route's own rules and limits: the cheap refusals come
		// first, and a limited caller cannot load the authorization service.
		if den := g.delegate(ctx, rt, path, token); den != nil {
			return nil, den
		}
	}
	switch rt.token {
	case tokenForward:
		d.upstreamToken = token
	case tokenExchange:
		e, err := g.exchange.exchange(ctx, token, rt.exchange.Audience, rt.exchange.Scopes, claims.Expiry)
		if err != nil {
			return nil, exchangeDenial(err)
		}
		d.upstreamToken = e.token
		d.scopes = narrowScopes(claims.Scopes, rt.exchange.Scopes)
		if e.scopes != nil {
			// The IdP also narrows (to what the gateway client may
			// delegate): the header names only what the token has.
			d.scopes = slices.DeleteFunc(d.scopes, func(s string) bool { return !slices.Contains(e.scopes, s) })
		}
	}
	return d, nil
}

// canonicalMethod reports whether m is a non-empty RFC 9110 token without
// lower-case letters: the only spelling route methods are written in.
func canonicalMethod(m string) bool {
	if m == "" {
		return false
	}
	for i := 0; i < len(m); i++ {
		c := m[i]
		if 'a' <= c && c <= 'z' || !('A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

// narrowScopes is what an exchange leaves of the caller's scopes: those
// asked for that the caller holds, or, when none are asked for, the
// caller's without the OpenID ones the IdP never copies into an exchanged
// token. X-Auth-Scopes then describes the token the upstream really gets.
func narrowScopes(have, asked []string) []string {
	out := make([]string, 0, len(have))
	for _, s := range have {
		if len(asked) > 0 && !slices.Contains(asked, s) || len(asked) == 0 && (s == "openid" || s == "offline_access") {
			continue
		}
		out = append(out, s)
	}
	return out
}

// tenantOf extracts the tenant named by the host label or path segment.
func tenantOf(source string, index int, host, path string) string {
	var parts []string
	switch source {
	case "host_label":
		parts = strings.Split(host, ".")
	case "path_segment":
		parts = strings.Split(strings.TrimPrefix(path, "/"), "/")
	}
	if index < 0 || index >= len(parts) {
		return ""
	}
	return parts[index]
}

// headerSafe reports whether the claims copied into identity headers are
// free of control characters (a header value cannot carry them).
func headerSafe(c *auth.Claims) bool {
	ok := func(s string) bool {
		for i := 0; i < len(s); i++ {
			if s[i] < 0x20 || s[i] == 0x7f {
				return false
			}
		}
		return true
	}
	if !ok(c.Subject) || !ok(c.ClientID) || !ok(c.Tenant) || !ok(c.Issuer) {
		return false
	}
	for _, l := range [][]string{c.Scopes, c.Roles, c.Groups} {
		for _, s := range l {
			if !ok(s) || strings.ContainsAny(s, " ,") {
				return false
			}
		}
	}
	return true
}

// formBodyHasToken peeks at an url-encoded body for an access_token
// parameter (GW-04) and puts the bytes back. A body too large to peek is
// treated as carrying one: the client must choose the header or the body.
func formBodyHasToken(r *http.Request) bool {
	if r.Body == nil || r.Body == http.NoBody {
		return false
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return false
	}
	buf, err := io.ReadAll(io.LimitReader(r.Body, maxFormPeek+1))
	r.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(buf), r.Body), r.Body}
	if err != nil || len(buf) > maxFormPeek {
		return true
	}
	return edge.BodyHasToken(buf)
}

// clientKey is the rate-limit key of a client address: the address for
// IPv4, its /64 for IPv6 (one subscriber usually holds a whole /64, and
// would otherwise get 2^64 buckets).
func clientKey(a netip.Addr) string {
	if a.Is6() && !a.Is4In6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}

// limit applies rate limits in order; the first refusal wins. The results
// of the allowing limits are kept for the RateLimit-* headers.
func (g *Gateway) limit(ctx context.Context, d *decision, ls []limit) *denial {
	for i, l := range ls {
		// Each limit has its own bucket: two limits of the same kind (a
		// burst and an hourly quota) must not advance one timestamp.
		key := d.route.name + "\x00" + l.by + "\x00" + strconv.Itoa(i) + "\x00"
		switch l.by {
		case "ip":
			key += clientKey(d.client)
		case "subject":
			key += d.claims.Issuer + "\x00" + subjectOf(d.claims)
		case "client":
			key += d.claims.Issuer + "\x00" + d.claims.ClientID
		}
		var res ratelimit.Result
		var err error
		if l.shared {
			res, err = g.deps.Shared.Allow(ctx, key, l.limit, l.mode)
		} else {
			res, err = g.local.Allow(ctx, key, l.limit)
		}
		if err != nil {
			g.metrics.rateLimited.WithLabelValues(d.route.name, "unavailable").Inc()
			return &denial{status: http.StatusServiceUnavailable, code: "temporarily_unavailable",
				msg: "rate limiting is unavailable", reason: "ratelimit_unavailable", cause: err, route: d.route.name}
		}
		rr := rateResult{res: res, lim: l.limit}
		if !res.Allowed {
			g.metrics.rateLimited.WithLabelValues(d.route.name, l.by).Inc()
			return &denial{status: http.StatusTooManyRequests, code: "rate_limited", msg: "too many requests",
				reason: "rate_limited", rate: &rr, route: d.route.name}
		}
		d.rate = append(d.rate, rr)
	}
	return nil
}
