package gateway

import (
	"net/http"
	"net/netip"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gatehouse/gatehouse/sdk/auth"
)

// metrics are the gateway's Prometheus collectors, labelled by route name
// (bounded: routes come from the configuration), never by path or subject.
type metrics struct {
	requests       *prometheus.CounterVec
	duration       *prometheus.HistogramVec
	denied         *prometheus.CounterVec
	rateLimited    *prometheus.CounterVec
	upstreamErrors *prometheus.CounterVec
	reloads        *prometheus.CounterVec
	exchanges      *prometheus.CounterVec
	delegations    *prometheus.CounterVec
}

func newMetrics() *metrics {
	return &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gatehouse_gateway_requests_total",
			Help: "Proxied requests by route, status class and decision."}, []string{"route", "code", "decision"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "gatehouse_gateway_request_duration_seconds",
			Help:    "Time from request to the end of the proxied answer, by route.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}}, []string{"route"}),
		denied: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gatehouse_gateway_denied_total",
			Help: "Requests refused at the edge, by route ('-' when none matched) and reason."}, []string{"route", "reason"}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gatehouse_gateway_rate_limited_total",
			Help: "Requests refused by a rate limit, by route and key."}, []string{"route", "by"}),
		upstreamErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gatehouse_gateway_upstream_errors_total",
			Help: "Upstream connection failures and timeouts, by route."}, []string{"route"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gatehouse_gateway_reloads_total",
			Help: "Route reloads, applied or rejected."}, []string{"result"}),
		exchanges: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gatehouse_gateway_token_exchanges_total",
			Help: "Token exchanges by result (cached, exchanged, refused, error)."}, []string{"result"}),
		delegations: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gatehouse_gateway_delegate_decisions_total",
			Help: "Delegate rule decisions by route and result (allow, allow_cached, deny, error, no_resource)."}, []string{"route", "result"}),
	}
}

// Collectors returns the gateway's metrics for registration.
func (g *Gateway) Collectors() []prometheus.Collector {
	m := g.metrics
	return []prometheus.Collector{m.requests, m.duration, m.denied, m.rateLimited, m.upstreamErrors, m.reloads, m.exchanges, m.delegations}
}

// accessLog writes one structured line per request: never the token, the
// query string (it may hold secrets) or header values.
func (g *Gateway) accessLog(r *http.Request, reqID, route string, status int, start time.Time, c *auth.Claims, decision string) {
	if !g.cfg.AccessLog {
		return
	}
	g.logAccess(r.Method, safePath(r), r.RemoteAddr, reqID, route, status, start, c, decision)
}

// logAccess writes the access line; the authorizer passes the method and
// path of the request it decided, not of the call to /forward-auth.
func (g *Gateway) logAccess(method, path, remote, reqID, route string, status int, start time.Time, c *auth.Claims, decision string) {
	if !g.cfg.AccessLog {
		return
	}
	attrs := make([]any, 0, 20)
	attrs = append(attrs, "request_id", reqID, "route", route, "method", method, "path", capPath(path),
		"status", status, "duration_ms", float64(g.deps.Now().Sub(start).Microseconds())/1000, "decision", decision)
	if ap, err := netipAddrPort(remote); err == nil {
		attrs = append(attrs, "peer", ap.String())
	}
	if c != nil {
		attrs = append(attrs, "subject", c.Subject, "client_id", c.ClientID)
	}
	g.log.Info("access", attrs...)
}

// safePath is the request path for logs: escaped form, capped, no query.
func safePath(r *http.Request) string { return capPath(r.URL.EscapedPath()) }

func capPath(p string) string {
	if len(p) > 256 {
		p = p[:256] + "..."
	}
	return p
}

func netipAddrPort(remote string) (netip.Addr, error) {
	ap, err := netip.ParseAddrPort(remote)
	if err != nil {
		return netip.Addr{}, err
	}
	return ap.Addr().Unmap(), nil
}
