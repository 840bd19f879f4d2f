package ca

import (
	"errors"
	"math"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the CA's Prometheus collectors.
type metrics struct {
	issuedTotal  *prometheus.CounterVec
	failureTotal *prometheus.CounterVec
	state        *stateCollector
}

func newMetrics(c *CA) *metrics {
	m := &metrics{
		issuedTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_ca_svids_issued_total",
			Help: "X.509 SVIDs issued, by method (join_token, client_credentials, renewal, other).",
		}, []string{"method"}),
		failureTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_ca_issue_failures_total",
			Help: "SVID issuance failures, by reason (bad_id, bad_csr, weak_key, not_ready, internal).",
		}, []string{"reason"}),
		state: &stateCollector{
			c: c,
			expiry: prometheus.NewDesc("gatehouse_ca_authority_expiry_seconds",
				"Seconds until NotAfter of the CA's authorities (the soonest per kind and state).",
				[]string{"kind", "state"}, nil),
			seq: prometheus.NewDesc("gatehouse_ca_bundle_sequence",
				"Sequence number of the trust bundle.", nil, nil),
		},
	}
	for _, method := range []string{MethodJoinToken, MethodClientCredentials, MethodRenewal} {
		m.issuedTotal.WithLabelValues(method)
	}
	return m
}

func (m *metrics) issued(method string) { m.issuedTotal.WithLabelValues(method).Inc() }
func (m *metrics) failed(reason string) { m.failureTotal.WithLabelValues(reason).Inc() }

func (m *metrics) failedErr(err error) {
	switch {
	case errors.Is(err, ErrWeakKey):
		m.failed("weak_key")
	case errors.Is(err, ErrBadCSR):
		m.failed("bad_csr")
	default:
		m.failed("internal")
	}
}

// Collectors returns the CA's Prometheus collectors, to be registered once.
func (c *CA) Collectors() []prometheus.Collector {
	return []prometheus.Collector{c.m.issuedTotal, c.m.failureTotal, c.m.state}
}

// stateCollector reports the authorities' remaining lifetimes (computed at
// scrape time) and the bundle sequence.
type stateCollector struct {
	c           *CA
	expiry, seq *prometheus.Desc
}

func (sc *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- sc.expiry
	ch <- sc.seq
}

func (sc *stateCollector) Collect(ch chan<- prometheus.Metric) {
	s := sc.c.state.Load()
	if s == nil {
		return
	}
	now := sc.c.now()
	type key struct{ kind, state string }
	soonest := map[key]float64{}
	add := func(a *authority) {
		k := key{a.rec.Kind, a.rec.State}
		left := a.rec.NotAfter.Sub(now).Seconds()
		if v, ok := soonest[k]; !ok || left < v {
			soonest[k] = math.Max(left, 0)
		}
	}
	if sc.c.up != nil {
		add(sc.c.up)
	}
	for _, a := range s.roots {
		add(a)
	}
	for _, a := range s.inters {
		add(a)
	}
	for k, v := range soonest {
		ch <- prometheus.MustNewConstMetric(sc.expiry, prometheus.GaugeValue, v, k.kind, k.state)
	}
	ch <- prometheus.MustNewConstMetric(sc.seq, prometheus.GaugeValue, float64(s.seq))
}
