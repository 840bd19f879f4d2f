package authz

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the service's Prometheus collectors.
type metrics struct {
	decisions      *prometheus.CounterVec
	latency        prometheus.Histogram
	disagreements  prometheus.Counter
	relationChecks *prometheus.CounterVec

	// The label values resolved once (the hot path skips the lookup).
	allowed, denied       prometheus.Counter
	checksHit, checksMiss prometheus.Counter
}

// decision returns the decisions counter of allow.
func (m *metrics) decision(allow bool) prometheus.Counter {
	if allow {
		return m.allowed
	}
	return m.denied
}

// relationCheck returns the relation checks counter of cached.
func (m *metrics) relationCheck(cached bool) prometheus.Counter {
	if cached {
		return m.checksHit
	}
	return m.checksMiss
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_authz_decisions_total", Help: "Authorization decisions by answer.",
		}, []string{"allow"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "gatehouse_authz_decision_seconds", Help: "Time to decide.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5},
		}),
		disagreements: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gatehouse_authz_shadow_disagreements_total", Help: "Decisions where the shadow policy set answered differently.",
		}),
		relationChecks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_authz_relation_checks_total", Help: "Relation checks run for decisions, by cache hit.",
		}, []string{"cached"}),
	}
	m.allowed, m.denied = m.decisions.WithLabelValues("true"), m.decisions.WithLabelValues("false")
	m.checksHit, m.checksMiss = m.relationChecks.WithLabelValues("true"), m.relationChecks.WithLabelValues("false")
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.decisions, m.latency, m.disagreements, m.relationChecks} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("authz: metrics: %w", err)
		}
	}
	return m, nil
}
