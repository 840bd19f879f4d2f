package gateway

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/gatehouse/gatehouse/internal/ratelimit"
)

// Authorizer paths on the gateway.authorizer_listen listener.
const (
	// ForwardAuthPath serves nginx auth_request, Traefik ForwardAuth and
	// Caddy forward_auth: the original request is described by
	// X-Forwarded-Method, X-Forwarded-Host and X-Forwarded-Uri (nginx:
	// X-Original-Method / X-Original-URI are accepted too).
	ForwardAuthPath = "/forward-auth"
	// EnvoyPrefix serves Envoy's HTTP ext_authz (path_prefix: /envoy): the
	// original method, Host and path arrive as the request's own.
	EnvoyPrefix = "/envoy"
)

// AuthorizerHandler serves the same decisions as the proxy for a proxy in
// front: 200 with the identity headers to copy on allow, or the refusal
// (401 / 403 / 429 / 503, with WWW-Authenticate and RateLimit-*).
//
// Every identity header is always present in an allow answer, empty when the
// token has no such claim, so a proxy that copies them overwrites whatever
// the client sent (GW-01). With token: exchange the answer's Authorization
// header carries the internal token; with token: strip it is empty.
func (g *Gateway) AuthorizerHandler() http.Handler {
	return http.HandlerFunc(g.serveAuthorizer)
}

func (g *Gateway) serveAuthorizer(w http.ResponseWriter, r *http.Request) {
	start := g.deps.Now()
	reqID := g.requestID(r, g.peerTrusted(r.RemoteAddr))
	w.Header().Set(HeaderReqID, reqID)
	in, ok := authorizerInput(r)
	if !ok {
		writeJSON(w, http.StatusBadRequest, "invalid_request", "the original request is not described (see docs/gateway.md)")
		g.accessLog(r, reqID, "-", http.StatusBadRequest, start, nil, "authorizer_bad_request")
		return
	}
	d, den := g.decide(r.Context(), in)
	if den != nil {
		status := g.writeDenial(w, den)
		name := den.route
		if name == "" {
			name = "-"
		}
		g.metrics.denied.WithLabelValues(name, den.reason).Inc()
		g.logAccess(in.method, in.path, r.RemoteAddr, reqID, name, status, start, nil, den.reason)
		return
	}
	h := w.Header()
	for _, rr := range d.rate {
		ratelimit.WriteHeaders(h, rr.res, rr.lim)
	}
	for _, name := range []string{HeaderSubject, HeaderClient, HeaderScopes, HeaderRoles, HeaderTenant, HeaderIssuer, HeaderKind} {
		h[name] = []string{""}
	}
	setIdentity(h, d.claims, d.scopes)
	h.Set(HeaderRoute, d.route.name)
	switch d.route.token {
	case tokenExchange:
		h.Set("Authorization", "Bearer "+d.upstreamToken)
	case tokenStrip:
		h["Authorization"] = []string{""}
	}
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	d.route.requests.WithLabelValues("2xx", "allow").Inc()
	g.logAccess(in.method, in.path, r.RemoteAddr, reqID, d.route.name, http.StatusOK, start, d.claims, "allow")
}

// authorizerInput describes the original request from a forward-auth call
// or an Envoy ext_authz call.
func authorizerInput(r *http.Request) (input, bool) {
	in := input{header: r.Header, peer: r.RemoteAddr}
	if rest, ok := strings.CutPrefix(r.URL.EscapedPath(), EnvoyPrefix); ok && (rest == "" || rest[0] == '/') {
		if rest == "" {
			rest = "/"
		}
		in.method, in.host, in.path, in.rawQuery = r.Method, r.Host, rest, r.URL.RawQuery
		return in, true
	}
	if r.URL.EscapedPath() != ForwardAuthPath {
		return in, false
	}
	in.method = one(r.Header, "X-Forwarded-Method", "X-Original-Method")
	in.host = one(r.Header, "X-Forwarded-Host")
	uri := one(r.Header, "X-Forwarded-Uri", "X-Original-Uri")
	if in.method == "" || in.host == "" || uri == "" || uri[0] != '/' {
		return in, false
	}
	u, err := url.ParseRequestURI(uri)
	if err != nil || u.Fragment != "" {
		in.path = "" // refused by NormalizePath
		return in, true
	}
	in.path, in.rawQuery = u.EscapedPath(), u.RawQuery
	if strings.ContainsAny(uri, "#") {
		in.path = ""
	}
	return in, true
}

// one returns the single value among all the headers names; "" when none
// or more than one is present, in any combination (a description given
// twice, e.g. X-Forwarded-Uri sent by the client next to the X-Original-URI
// set by nginx, is ambiguous and refused).
func one(h http.Header, names ...string) string {
	var val string
	n := 0
	for _, name := range names {
		for _, v := range h.Values(name) {
			val = v
			n++
		}
	}
	if n != 1 {
		return ""
	}
	return val
}
