package gateway

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/gatehouse/gatehouse/sdk/workload"
)

// WorkloadSource is the gateway's own X.509 SVID and the trust bundle that
// verifies upstreams, for routes with upstream_tls.spiffe_id. A
// workload.CASource or a SPIRE workloadapi.X509Source implements it.
type WorkloadSource interface {
	x509svid.Source
	x509bundle.Source
}

// errNoWorkloadSVID refuses a request to a spiffe_id upstream while the
// gateway has no SVID yet: never a fallback to plain TLS.
var errNoWorkloadSVID = errors.New("gateway: no workload SVID yet (gateway.workload): the request to a spiffe_id upstream is refused")

// lazySource forwards to the source set by SetWorkload (or Deps.Workload).
// Until then every call fails, so handshakes fail closed.
type lazySource struct {
	src atomic.Pointer[WorkloadSource]
}

func (l *lazySource) load() WorkloadSource {
	if p := l.src.Load(); p != nil {
		return *p
	}
	return nil
}

func (l *lazySource) GetX509SVID() (*x509svid.SVID, error) {
	s := l.load()
	if s == nil {
		return nil, errNoWorkloadSVID
	}
	return s.GetX509SVID()
}

func (l *lazySource) GetX509BundleForTrustDomain(td spiffeid.TrustDomain) (*x509bundle.Bundle, error) {
	s := l.load()
	if s == nil {
		return nil, errNoWorkloadSVID
	}
	return s.GetX509BundleForTrustDomain(td)
}

// SetWorkload sets the gateway's workload source (its SVID and bundle). It
// may be called after New, while serving: routes with upstream_tls.spiffe_id
// answer 503 until then. A nil src is ignored.
func (g *Gateway) SetWorkload(src WorkloadSource) {
	if src == nil {
		return
	}
	g.workload.src.Store(&src)
}

// HasWorkload reports whether a workload source is set.
func (g *Gateway) HasWorkload() bool { return g.workload.load() != nil }

// spiffeTLS is the client TLS configuration of a spiffe_id upstream: the
// gateway's SVID, and exactly the SPIFFE ID id on the other side, verified
// against the current bundle on every connection.
func (g *Gateway) spiffeTLS(id string) (*tls.Config, error) {
	want, err := spiffeid.FromString(id)
	if err != nil || want.Path() == "" {
		return nil, fmt.Errorf("upstream_tls.spiffe_id: not a SPIFFE ID with a path")
	}
	tc, err := workload.ClientTLSConfig(&g.workload, workload.AuthorizeID(want))
	if err != nil {
		return nil, fmt.Errorf("upstream_tls.spiffe_id: %w", err)
	}
	return tc, nil
}

// spiffeTransport refuses requests while the gateway has no source.
type spiffeTransport struct {
	base *http.Transport
	src  *lazySource
}

func (t *spiffeTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if t.src.load() == nil {
		if req.Body != nil {
			_ = req.Body.Close()
		}
		return nil, errNoWorkloadSVID
	}
	return t.base.RoundTrip(req)
}
