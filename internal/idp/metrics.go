package idp

import (
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

type prometheusCollector = prometheus.Collector

// metrics are the IdP's Prometheus series. Labels never carry client ids,
// usernames or tokens.
type metrics struct {
	requests           *prometheus.CounterVec
	tokens             *prometheus.CounterVec
	logins             *prometheus.CounterVec
	reuseDetected      *prometheus.CounterVec
	exchanges          *prometheus.CounterVec
	introspections     prometheus.Counter
	clientAuthFailures prometheus.Counter
}

func newMetrics() *metrics {
	return &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gatehouse_idp_http_requests_total",
			Help: "HTTP requests by response code."}, []string{"code"}),
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gatehouse_idp_tokens_issued_total",
			Help: "Access tokens issued, by subject kind."}, []string{"kind"}),
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gatehouse_idp_login_events_total",
			Help: "Login page events."}, []string{"event"}),
		reuseDetected: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gatehouse_idp_reuse_detected_total",
			Help: "Replayed authorization codes and refresh tokens (families revoked)."}, []string{"kind"}),
		exchanges: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gatehouse_idp_token_exchanges_total",
			Help: "Token exchange (RFC 8693) requests that reached the grant, by result (issued, rejected)."}, []string{"result"}),
		introspections: prometheus.NewCounter(prometheus.CounterOpts{Name: "gatehouse_idp_introspections_total",
			Help: "Introspection requests from authenticated clients."}),
		clientAuthFailures: prometheus.NewCounter(prometheus.CounterOpts{Name: "gatehouse_idp_client_auth_failures_total",
			Help: "Failed client authentications."}),
	}
}

func (m *metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.requests, m.tokens, m.logins, m.reuseDetected, m.exchanges, m.introspections, m.clientAuthFailures}
}

func (m *metrics) instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(sw, r)
		m.requests.WithLabelValues(strconv.Itoa(sw.status)).Inc()
	})
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(s int) {
	w.status = s
	w.ResponseWriter.WriteHeader(s)
}
