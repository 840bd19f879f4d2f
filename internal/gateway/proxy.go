package gateway

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/gateway/edge"
	"github.com/gatehouse/gatehouse/internal/ratelimit"
	"github.com/gatehouse/gatehouse/sdk/auth"
)

// Identity headers the gateway sets on proxied requests and on allowed
// authorizer answers. Every inbound variant of them is removed first.
const (
	HeaderSubject  = "X-Auth-Subject"
	HeaderClient   = "X-Auth-Client"
	HeaderScopes   = "X-Auth-Scopes" // space-separated
	HeaderRoles    = "X-Auth-Roles"  // space-separated
	HeaderTenant   = "X-Auth-Tenant"
	HeaderIssuer   = "X-Auth-Issuer"
	HeaderKind     = "X-Auth-Kind" // "user" or "client"
	HeaderRoute    = "X-Auth-Route"
	HeaderReqID    = "X-Request-Id"
	headerRealIP   = "X-Forwarded-For"
	headerFwdHost  = "X-Forwarded-Host"
	headerFwdProto = "X-Forwarded-Proto"
)

// identityHeaders are protected from Connection-header removal (GW-05).
var identityHeaders = []string{HeaderSubject, HeaderClient, HeaderScopes, HeaderRoles, HeaderTenant,
	HeaderIssuer, HeaderKind, HeaderRoute, HeaderReqID, "Authorization"}

// spoofableHeaders describe the client, the original URL or the method to
// an upstream; from a client they would let it pick its own address (GW-02)
// or a path or method the route's rules never saw (GW-03). Never forwarded.
var spoofableHeaders = []string{"X-Real-Ip", "True-Client-Ip", "X-Client-Ip", "X-Original-Url", "X-Rewrite-Url",
	"X-Original-Uri", "X-Forwarded-Uri", "X-Forwarded-Path", "X-Forwarded-Prefix", "X-Forwarded-Method",
	"X-Original-Method", "X-Http-Method-Override", "X-Http-Method", "X-Method-Override", "X-Forwarded-Port",
	"X-Forwarded-Server", "X-Forwarded-Ssl", "X-Forwarded-Scheme", "Front-End-Https", "X-Url-Scheme"}

type ctxKey struct{}

// copyBuffers are the 32 KiB buffers ReverseProxy copies bodies with,
// reused instead of allocated per request.
var copyBuffers = &bufferPool{pool: sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}}

type bufferPool struct{ pool sync.Pool }

func (p *bufferPool) Get() []byte  { return *p.pool.Get().(*[]byte) }
func (p *bufferPool) Put(b []byte) { p.pool.Put(&b) }

// proxied is what Rewrite needs from the decision.
type proxied struct {
	d      *decision
	reqID  string
	scheme string
	status int
	rel    string // escaped path after the upstream's base path
}

// ServeHTTP is the gateway's proxy handler.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := g.deps.Now()
	peerTrusted := g.peerTrusted(r.RemoteAddr)
	reqID := g.requestID(r, peerTrusted)
	w.Header().Set(HeaderReqID, reqID)
	in := input{method: r.Method, host: r.Host, path: r.URL.EscapedPath(), rawQuery: r.URL.RawQuery,
		header: r.Header, peer: r.RemoteAddr, body: r}
	if r.URL.RawPath == "" && r.URL.Path == "" || r.URL.Opaque != "" || r.URL.Fragment != "" ||
		strings.IndexByte(r.RequestURI, '#') >= 0 {
		// "*" (OPTIONS), an absolute-form oddity, or a fragment (which the
		// server leaves in the path and EscapedPath would turn into %23):
		// refused by NormalizePath (GW-03).
		in.path = ""
	}
	d, den := g.decide(r.Context(), in)
	var rt *route
	if d != nil {
		rt = d.route
		if rt.proxy == nil { // an authorizer-only route
			d, den = nil, deny(http.StatusNotFound, "not_found", "no route", "no_route", errNoRoute)
		}
	}
	// CORS preflight is answered by the gateway when the route has a policy;
	// it carries no credentials, so it is decided before authentication.
	if den != nil && r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
		if prt, _ := g.table.Load().match(hostOrEmpty(r.Host), normalizedOrEmpty(in.path), r.Header.Get("Access-Control-Request-Method")); prt != nil && prt.cors != nil {
			prt.cors.preflight(w, r)
			g.accessLog(r, reqID, prt.name, http.StatusNoContent, start, nil, "preflight")
			return
		}
	}
	if den != nil {
		if prt, _ := g.table.Load().match(hostOrEmpty(r.Host), normalizedOrEmpty(in.path), r.Method); prt != nil && prt.cors != nil {
			prt.cors.actual(w, r)
		}
		status := g.writeDenial(w, den)
		name := den.route
		if name == "" {
			name = "-"
		}
		g.metrics.denied.WithLabelValues(name, den.reason).Inc()
		g.accessLog(r, reqID, name, status, start, nil, den.reason)
		if den.cause != nil && den.status >= 500 {
			g.log.Warn("gateway refused a request", "request_id", reqID, "reason", den.reason, "err", den.cause)
		}
		return
	}
	if rt.cors != nil {
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			rt.cors.preflight(w, r)
			g.accessLog(r, reqID, rt.name, http.StatusNoContent, start, d.claims, "preflight")
			return
		}
		rt.cors.actual(w, r)
	}
	for _, rr := range d.rate {
		ratelimit.WriteHeaders(w.Header(), rr.res, rr.lim)
	}
	ctx, cancel := context.WithTimeout(r.Context(), rt.timeout)
	defer cancel()
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	p := &proxied{d: d, reqID: reqID, scheme: scheme}
	rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
	rt.proxy.ServeHTTP(rec, r.WithContext(context.WithValue(ctx, ctxKey{}, p)))
	status := rec.status
	if p.status != 0 {
		status = p.status
	}
	rt.requests.WithLabelValues(codeClass(status), "allow").Inc()
	rt.duration.Observe(g.deps.Now().Sub(start).Seconds())
	g.accessLog(r, reqID, rt.name, status, start, d.claims, "allow")
}

func hostOrEmpty(h string) string {
	n, _ := edge.HostName(h)
	return n
}

func normalizedOrEmpty(p string) string {
	n, err := edge.NormalizePath(p)
	if err != nil {
		return "\x00" // matches no route
	}
	return n
}

func (g *Gateway) peerTrusted(remote string) bool {
	if len(g.trusted) == 0 {
		return false
	}
	ap, err := netipAddrPort(remote)
	if err != nil {
		return false
	}
	for _, p := range g.trusted {
		if p.Contains(ap) {
			return true
		}
	}
	return false
}

// newProxy builds the route's reverse proxy.
func (g *Gateway) newProxy(r *route, tr http.RoundTripper) *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite:   func(pr *httputil.ProxyRequest) { g.rewrite(r, pr) },
		Transport: &retryTransport{base: tr, route: r},
		// Zero: ReverseProxy flushes at once for streaming answers (SSE,
		// unknown length) and buffers the rest into as few writes as it can.
		FlushInterval: 0,
		BufferPool:    copyBuffers,
		ErrorHandler: func(w http.ResponseWriter, req *http.Request, err error) {
			status, code, msg := http.StatusBadGateway, "bad_gateway", "the upstream service did not answer"
			switch {
			case errors.Is(err, context.DeadlineExceeded):
				status, code = http.StatusGatewayTimeout, "upstream_timeout"
			case errors.Is(err, errNoWorkloadSVID):
				status, code, msg = http.StatusServiceUnavailable, "temporarily_unavailable", "the gateway has no workload identity yet"
				w.Header().Set("Retry-After", "1")
			}
			if errors.Is(req.Context().Err(), context.Canceled) {
				status = 499 // client went away; nothing is written
			}
			if p, ok := req.Context().Value(ctxKey{}).(*proxied); ok {
				p.status = status // 499 writes nothing the recorder would see
			}
			g.metrics.upstreamErrors.WithLabelValues(r.name).Inc()
			g.log.Warn("upstream error", "route", r.name, "status", status, "err", err)
			if status != 499 {
				writeJSON(w, status, code, msg)
			}
		},
		ModifyResponse: func(resp *http.Response) error {
			// An upstream cannot set the gateway's own identity headers on
			// the answer (authorizer-mode proxies copy response headers).
			edge.ScrubIdentityHeaders(resp.Header, false)
			resp.Header.Del(HeaderReqID) // the gateway's id is already set
			if r.cors != nil {
				// The route's policy is the only source of CORS headers: an
				// upstream's "*" must not reach a refused origin.
				for k := range resp.Header {
					if strings.HasPrefix(k, "Access-Control-") {
						delete(resp.Header, k)
					}
				}
			}
			return nil
		},
		ErrorLog: nil,
	}
}

// rewrite builds the outbound request (after ReverseProxy removed the
// hop-by-hop headers and the inbound X-Forwarded-*).
func (g *Gateway) rewrite(r *route, pr *httputil.ProxyRequest) {
	p := pr.In.Context().Value(ctxKey{}).(*proxied)
	d := p.d
	up := r.upstreamFor()
	path := d.path
	if r.strip {
		path = strings.TrimPrefix(path, strings.TrimSuffix(r.prefix, "/"))
		if path == "" || path[0] != '/' {
			path = "/" + path
		}
	}
	p.rel = path
	out := pr.Out
	out.URL.Scheme, out.URL.Host = up.Scheme, up.Host
	out.URL.RawPath = up.Path + path
	out.URL.Path, _ = url.PathUnescape(out.URL.RawPath)
	out.URL.RawQuery = pr.In.URL.RawQuery
	out.Host = "" // the upstream's own host name
	h := out.Header
	// ReverseProxy has already removed the inbound hop-by-hop headers and
	// re-added only the protocol upgrade and "Te: trailers" (gRPC); keep
	// those two across the second, stricter removal.
	upgrade, te := h.Get("Upgrade"), h.Get("Te")
	edge.RemoveHopByHop(h, identityHeaders...)
	if upgrade != "" {
		h.Set("Connection", "Upgrade")
		h.Set("Upgrade", upgrade)
	}
	if te == "trailers" {
		h.Set("Te", "trailers")
	}
	edge.ScrubIdentityHeaders(h, true)
	h.Del("Authorization")
	h.Del(HeaderReqID)
	for _, k := range spoofableHeaders {
		h.Del(k)
	}
	if d.upstreamToken != "" {
		h.Set("Authorization", "Bearer "+d.upstreamToken)
	}
	h.Set(HeaderReqID, p.reqID)
	h.Set(HeaderRoute, r.name)
	if d.client.IsValid() {
		h.Set(headerRealIP, d.client.String())
	}
	h.Set(headerFwdHost, d.host)
	h.Set(headerFwdProto, p.scheme)
	setIdentity(h, d.claims, d.scopes)
}

// setIdentity writes the X-Auth-* headers of verified claims.
func setIdentity(h http.Header, c *auth.Claims, scopes []string) {
	if c == nil {
		return
	}
	if scopes == nil {
		scopes = c.Scopes
	}
	h.Set(HeaderSubject, subjectOf(c))
	h.Set(HeaderIssuer, c.Issuer)
	if c.ClientID != "" {
		h.Set(HeaderClient, c.ClientID)
	}
	if len(scopes) > 0 {
		h.Set(HeaderScopes, strings.Join(scopes, " "))
	}
	if len(c.Roles) > 0 {
		h.Set(HeaderRoles, strings.Join(c.Roles, " "))
	}
	if c.Tenant != "" {
		h.Set(HeaderTenant, c.Tenant)
	}
	kind := "client"
	if c.EndUser() {
		kind = "user"
	}
	h.Set(HeaderKind, kind)
}

// subjectOf is who the token acts for: sub, or the client itself when a
// client-credentials token has no sub (decide refuses tokens with neither).
func subjectOf(c *auth.Claims) string {
	if c.Subject != "" {
		return c.Subject
	}
	return c.ClientID
}

// retryTransport retries idempotent requests without a body on another
// upstream when the connection could not be made.
type retryTransport struct {
	base  http.RoundTripper
	route *route
}

func (t *retryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	for i := 0; err != nil && i < t.route.retries && idempotent(req) && retryable(err) && req.Context().Err() == nil; i++ {
		up := t.route.upstreamFor()
		next := req.Clone(req.Context())
		next.URL.Scheme, next.URL.Host = up.Scheme, up.Host
		if p, ok := req.Context().Value(ctxKey{}).(*proxied); ok { // this upstream's base path
			next.URL.RawPath = up.Path + p.rel
			next.URL.Path, _ = url.PathUnescape(next.URL.RawPath)
		}
		resp, err = t.base.RoundTrip(next)
	}
	return resp, err
}

// retryable: the request did not reach an upstream (refused, no route, DNS).
func retryable(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// transport returns the pooled transport for an upstream TLS setting. With
// a SPIFFE ID it is mutual TLS with the gateway's own SVID, and requests
// are refused (503) until the gateway has one.
func (g *Gateway) transport(c config.GatewayTLS) (http.RoundTripper, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	t, ok := g.transports[c]
	if !ok {
		var err error
		if t, err = g.newTransport(c); err != nil {
			return nil, err
		}
		g.transports[c] = t
	}
	if c.SPIFFEID != "" {
		return &spiffeTransport{base: t, src: &g.workload}, nil
	}
	return t, nil
}

// newTransport builds the transport of one upstream TLS setting.
func (g *Gateway) newTransport(c config.GatewayTLS) (*http.Transport, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.ServerName}
	if c.SPIFFEID != "" {
		if c.CAFile != "" || c.CertFile != "" {
			return nil, errors.New("upstream_tls: spiffe_id excludes ca_file, cert_file and key_file")
		}
		var err error
		if tc, err = g.spiffeTLS(c.SPIFFEID); err != nil {
			return nil, err
		}
		tc.ServerName = c.ServerName // SNI only: the peer is verified by SPIFFE ID
	}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("upstream_tls.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, errors.New("upstream_tls.ca_file: no PEM certificate")
		}
		tc.RootCAs = pool
	}
	if c.CertFile != "" {
		cr, err := newCertReloader(c.CertFile, c.KeyFile, g.deps.Now)
		if err != nil {
			return nil, fmt.Errorf("upstream_tls: client certificate: %w", err)
		}
		tc.GetClientCertificate = cr.get
	}
	uc := g.cfg.Upstream
	d := &net.Dialer{Timeout: uc.DialTimeout.Std(), KeepAlive: 30 * time.Second}
	t := &http.Transport{
		DialContext: d.DialContext, TLSClientConfig: tc, ForceAttemptHTTP2: true,
		MaxIdleConns: 0, MaxIdleConnsPerHost: uc.MaxIdleConnsPerHost, IdleConnTimeout: uc.IdleConnTimeout.Std(),
		TLSHandshakeTimeout: 10 * time.Second, ExpectContinueTimeout: time.Second,
		ResponseHeaderTimeout: 0, MaxResponseHeaderBytes: 1 << 20,
	}
	return t, nil
}

// writeDenial answers a refused request and returns the status sent.
func (g *Gateway) writeDenial(w http.ResponseWriter, den *denial) int {
	if den.rate != nil {
		ratelimit.WriteHeaders(w.Header(), den.rate.res, den.rate.lim)
	}
	if den.authErr {
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		auth.WriteError(rec, den.cause, auth.WithRealm("gatehouse"))
		return rec.status
	}
	if den.status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	writeJSON(w, den.status, den.code, den.msg)
	return den.status
}

func writeJSON(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": msg})
}

// statusRecorder remembers the status and passes Flush through (streaming).
type statusRecorder struct {
	http.ResponseWriter
	status  int
	written bool
}

func (s *statusRecorder) WriteHeader(code int) {
	if !s.written && code >= 200 { // 1xx (103 Early Hints) precede the real status
		s.status, s.written = code, true
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func (s *statusRecorder) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func codeClass(status int) string {
	switch {
	case status < 200:
		return "1xx"
	case status < 300:
		return "2xx"
	case status < 400:
		return "3xx"
	case status < 500:
		return "4xx"
	}
	return "5xx"
}
