// Package caserver is the workload CA's HTTPS API (docs/workload.md, "The CA
// API"): the SPIFFE trust bundle, X.509-SVID issuance for three credentials
// (a single-use join token, a client-credentials access token, or a valid
// SVID presented on the connection for renewal) and delivery of the
// "who may call whom" policy to workloads over mTLS.
//
// The CA core is used only through the narrow Issuer interface. The listener
// serves the CA's own SVID (spiffe://<td>/gatehouse/ca) and requests, without
// verifying it in the handshake, a client certificate: the handlers verify it
// against the bundle so that an expired SVID gets a clear HTTP error instead
// of a TLS alert. A client chain that verified is remembered, by the hash of
// its DER, until its validity window ends or the bundle changes, so that
// renewals over a keep-alive connection do not verify its signatures again
// (every other check still runs). Tokens are never logged; issuance logs the SPIFFE ID, the
// method and the certificate serial.
//
// POST /v1/svid also refuses to renew an SVID whose SPIFFE ID was revoked
// after it was issued (401 svid_revoked; the revoked IDs are cached for
// Config.RevocationRefresh and a first load that fails answers 503), checks
// the CA's readiness and that set before a join token is spent, and limits
// failed credentials per client IP (429 too_many_requests, Retry-After).
// GET /v1/policy answers are cached per (policy version, caller).
package caserver

import (
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/gatehouse/gatehouse/internal/ca"
	"github.com/gatehouse/gatehouse/internal/secret"
	"github.com/gatehouse/gatehouse/internal/storage"
	"github.com/gatehouse/gatehouse/internal/throttle"
	"github.com/gatehouse/gatehouse/sdk/auth"
	"github.com/gatehouse/gatehouse/sdk/workload"
)

// Issuer is the part of the CA core (*ca.CA) the API uses.
type Issuer interface {
	TrustDomain() spiffeid.TrustDomain
	// IssueCSR checks the CSR's signature and key, then issues for id.
	IssueCSR(ctx context.Context, id spiffeid.ID, csrDER []byte, ttl time.Duration) (*ca.SVID, error)
	// IssueRequest issues for id and the key of a CSR whose signature the
	// caller has checked (csr.CheckSignature); it checks the key only.
	IssueRequest(ctx context.Context, id spiffeid.ID, csr *x509.CertificateRequest, ttl time.Duration) (*ca.SVID, error)
	Issue(ctx context.Context, id spiffeid.ID, pub crypto.PublicKey, ttl time.Duration) (*ca.SVID, error)
	Bundle() (*x509bundle.Bundle, uint64)
	BundleJSON() ([]byte, error)
}

// JoinTokenStore consumes single-use join tokens (storage.CAStore).
type JoinTokenStore interface {
	ConsumeJoinToken(ctx context.Context, hash string, now time.Time) (storage.JoinToken, error)
}

// ClientStore looks up registered OAuth clients (storage.ClientStore).
type ClientStore interface {
	GetClient(ctx context.Context, id string) (storage.Client, error)
}

// TokenVerifier verifies access tokens for the audience ca.client_audience.
// *auth.Verifier (sdk/auth) satisfies it as is. Errors wrapping
// auth.ErrUnavailable are answered 503, any other error 401 invalid_token.
type TokenVerifier interface {
	Authenticate(ctx context.Context, token string) (*auth.Claims, error)
}

// Deps are the server's collaborators. CA, JoinTokens, Clients, Tokens and
// Secrets are required; Policy, Now and Log have defaults (no policy: empty
// rules; time.Now; discard).
type Deps struct {
	CA         Issuer
	JoinTokens JoinTokenStore
	Clients    ClientStore
	Tokens     TokenVerifier
	// Secrets hashes join tokens: the stored hash is hex(Secrets.Sum(token)).
	Secrets *secret.Keyed
	// Revocations lists revoked SPIFFE IDs (storage.SPIFFERevocationStore);
	// nil: no ID is ever revoked. Renewal of an SVID issued before its ID's
	// revocation is refused (401 svid_revoked).
	Revocations RevocationLister
	// Policy returns the current policy (hot-reloaded); nil denies all.
	Policy func() *workload.Policy
	Now    func() time.Time
	Log    *slog.Logger
}

// Config tunes the server.
type Config struct {
	// SVIDTTL is the lifetime requested for every SVID (ca.svid_ttl), the
	// CA's own serving certificate included. Default 1 h.
	SVIDTTL time.Duration
	// RevocationRefresh is how long the revocation set is cached (the
	// storage reload interval, ca.refresh_interval). Default 10 s.
	RevocationRefresh time.Duration
	// Backdate is the CA's NotBefore backdate: an SVID was issued at
	// NotBefore + Backdate. Default 30 s (ca.DefaultBackdate).
	Backdate time.Duration
	// MaxFailures failed credentials (401) per client IP within
	// FailureWindow make POST /v1/svid answer 429. Defaults 20 per minute.
	MaxFailures   int
	FailureWindow time.Duration
}

// DefaultSVIDTTL is Config.SVIDTTL's default.
const DefaultSVIDTTL = time.Hour

// CAPath is the path of the CA's own SPIFFE ID; IDs at or under
// /gatehouse/ are reserved and never issued through the API.
const CAPath = "/gatehouse/ca"

// Server is the CA API. Create it with New.
type Server struct {
	deps    Deps
	ttl     time.Duration
	td      spiffeid.TrustDomain
	selfID  spiffeid.ID
	log     *slog.Logger
	now     func() time.Time
	metrics *metrics
	certs   *certSource
	empty   *workload.Policy
	// verified caches the client chains that verified (renewals and
	// policy fetches over keep-alive connections).
	verified *verifyCache
	// validBundle is the last bundle JSON found valid (checkedBundle).
	validBundle atomic.Pointer[[]byte]
	// revoked caches the revoked IDs (nil: no Deps.Revocations).
	revoked           *revocations
	revocationRefresh time.Duration
	backdate          time.Duration
	// failures counts failed credentials per client IP.
	failures *throttle.Limiter
	policies policyCache
}

// New checks deps and returns a Server.
func New(deps Deps, cfg Config) (*Server, error) {
	var errs []error
	if deps.CA == nil {
		errs = append(errs, errors.New("caserver: CA is required"))
	}
	if deps.JoinTokens == nil {
		errs = append(errs, errors.New("caserver: JoinTokens is required"))
	}
	if deps.Clients == nil {
		errs = append(errs, errors.New("caserver: Clients is required"))
	}
	if deps.Tokens == nil {
		errs = append(errs, errors.New("caserver: Tokens is required"))
	}
	if deps.Secrets == nil {
		errs = append(errs, errors.New("caserver: Secrets is required"))
	}
	if cfg.SVIDTTL < 0 || cfg.RevocationRefresh < 0 || cfg.Backdate < 0 || cfg.MaxFailures < 0 || cfg.FailureWindow < 0 {
		errs = append(errs, errors.New("caserver: SVIDTTL, RevocationRefresh, Backdate, MaxFailures and FailureWindow must not be negative"))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	td := deps.CA.TrustDomain()
	if td.IsZero() {
		return nil, errors.New("caserver: the CA has no trust domain")
	}
	self, err := spiffeid.FromPath(td, CAPath)
	if err != nil {
		return nil, errors.New("caserver: cannot build the CA's SPIFFE ID")
	}
	empty, err := workload.NewPolicy(nil)
	if err != nil {
		return nil, err
	}
	s := &Server{deps: deps, ttl: cfg.SVIDTTL, td: td, selfID: self, log: deps.Log, now: deps.Now,
		metrics: newMetrics(), empty: empty, verified: newVerifyCache()}
	if s.ttl == 0 {
		s.ttl = DefaultSVIDTTL
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s.revocationRefresh = orDefault(cfg.RevocationRefresh, DefaultRevocationRefresh)
	s.backdate = orDefault(cfg.Backdate, DefaultBackdate)
	if deps.Revocations != nil {
		s.revoked = &revocations{src: deps.Revocations, refresh: s.revocationRefresh, now: s.now}
	}
	maxFail := cfg.MaxFailures
	if maxFail == 0 {
		maxFail = DefaultMaxFailures
	}
	s.failures = throttle.New(throttle.Config{MaxFailures: maxFail,
		Window: orDefault(cfg.FailureWindow, DefaultFailureWindow)}, s.now)
	s.certs = newCertSource(s)
	return s, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// Handler returns the API's routes.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/bundle", s.endpoint("bundle", http.MethodGet, s.handleBundle))
	mux.HandleFunc("/v1/svid", s.endpoint("svid", http.MethodPost, s.handleSVID))
	mux.HandleFunc("/v1/policy", s.endpoint("policy", http.MethodGet, s.handlePolicy))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.metrics.requests.WithLabelValues("other", "not_found").Inc()
		writeError(w, &apiError{Status: http.StatusNotFound, Code: "not_found", Public: "no such endpoint"})
	})
	return mux
}

// Collectors returns the API's Prometheus collectors.
func (s *Server) Collectors() []prometheus.Collector {
	return []prometheus.Collector{s.metrics.requests}
}

// handlerFunc answers a request or returns an *apiError.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// endpoint wraps h with the method check, error writing, logging and metrics.
func (s *Server) endpoint(name, method string, h handlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != method && !(method == http.MethodGet && r.Method == http.MethodHead) {
			w.Header().Set("Allow", method)
			s.metrics.requests.WithLabelValues(name, "method_not_allowed").Inc()
			writeError(w, &apiError{Status: http.StatusMethodNotAllowed, Code: "invalid_request",
				Public: "method not allowed; use " + method})
			return
		}
		err := h(w, r)
		if err == nil {
			s.metrics.requests.WithLabelValues(name, "ok").Inc()
			return
		}
		e := asAPIError(err)
		s.metrics.requests.WithLabelValues(name, e.Code).Inc()
		level := slog.LevelInfo
		switch {
		case e.Status == http.StatusServiceUnavailable:
			level = slog.LevelWarn // not ready yet (start-up) or storage briefly away: retried by clients
		case e.Status >= 500:
			level = slog.LevelError
		}
		// Causes never carry tokens: every error below wraps sentinel
		// errors or library errors about certificates and JSON.
		s.log.Log(r.Context(), level, "ca api request refused", "endpoint", name, "status", e.Status,
			"error", e.Code, "cause", causeString(e))
		writeError(w, e)
	}
}

// metrics are the API's counters.
type metrics struct {
	requests *prometheus.CounterVec
}

func newMetrics() *metrics {
	return &metrics{requests: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gatehouse_ca_api_requests_total",
		Help: "CA API requests by endpoint (bundle, svid, policy) and outcome (ok or the error code).",
	}, []string{"endpoint", "outcome"})}
}
