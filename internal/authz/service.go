// Package authz is Gatehouse's authorization service (docs/authz.md): the
// HTTP API and the decision pipeline that composes Cedar policies
// (internal/authz/policy) with relationship checks (internal/rebac) over the
// relation store, logs every decision (internal/authz/decisionlog) and
// evaluates an optional shadow policy set beside the active one.
//
// Every failure denies with a reason: malformed input, unknown action or
// type, schema violations, missing attributes, budgets, fetch failures,
// storage errors and a missing policy set all answer allow=false.
package authz

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/singleflight"

	"github.com/gatehouse/gatehouse/internal/authz/decisionlog"
	"github.com/gatehouse/gatehouse/internal/authz/policy"
	"github.com/gatehouse/gatehouse/internal/periodic"
	"github.com/gatehouse/gatehouse/internal/rebac"
	"github.com/gatehouse/gatehouse/internal/storage"
	"github.com/gatehouse/gatehouse/sdk/auth"
)

// FetchConfig says where a resource type's attributes are fetched from when
// neither the caller nor replication provides them.
type FetchConfig struct {
	// URL is the template of the GET request; "{id}" is replaced by the
	// resource id with every byte but [A-Za-z0-9._~-] percent-encoded (the
	// ids "." and ".." are never fetched).
	URL string
	// TTL is how long a fetched answer is cached (0: not cached).
	TTL time.Duration
	// Timeout bounds one fetch (default 100 ms).
	Timeout time.Duration
	// OnError is "deny" (default) or "ignore".
	OnError string
}

// Options configures a Service. Policies, Store, Checker and Callers are
// required.
type Options struct {
	Policies   *policy.Holder        // the active policy set (required)
	Shadow     *policy.Holder        // optional shadow set, never changes answers
	Store      storage.RelationStore // required
	Checker    *rebac.Checker        // required
	Callers    auth.Authenticator    // verifies API callers' tokens (audience authz)
	Principals auth.Authenticator    // verifies principal tokens; nil refuses {"token": ...}
	Fetch      map[string]FetchConfig
	HTTPClient *http.Client // for fetches; default: timeouts, no redirects
	Log        *decisionlog.Logger
	Logger     *slog.Logger
	Registerer prometheus.Registerer

	// Freshness is the head-revision poll interval (default 1 s).
	Freshness time.Duration
	// DecisionTimeout bounds one decision (default 250 ms).
	DecisionTimeout time.Duration
	Now             func() time.Time
}

// Service answers authorization questions. It is safe for concurrent use.
type Service struct {
	policies   *policy.Holder
	shadow     *policy.Holder
	store      storage.RelationStore
	checker    *rebac.Checker
	callers    auth.Authenticator
	principals auth.Authenticator
	fetch      map[string]FetchConfig
	client     *http.Client
	log        *decisionlog.Logger
	logger     *slog.Logger
	freshness  time.Duration
	timeout    time.Duration
	now        func() time.Time

	rev      revTracker
	fetches  fetchCache
	entities entityCache // replicated attributes at the known head
	metrics  *metrics
}

// New checks o and builds a Service. Call Run to keep the known head
// revision fresh.
func New(o Options) (*Service, error) {
	var errs []error
	if o.Policies == nil {
		errs = append(errs, errors.New("authz: Policies is required"))
	}
	if o.Store == nil {
		errs = append(errs, errors.New("authz: Store is required"))
	}
	if o.Checker == nil {
		errs = append(errs, errors.New("authz: Checker is required"))
	}
	if o.Callers == nil {
		errs = append(errs, errors.New("authz: Callers is required"))
	}
	fetch := make(map[string]FetchConfig, len(o.Fetch))
	for typ, f := range o.Fetch {
		switch f.OnError {
		case "":
			f.OnError = onErrorDeny
		case onErrorDeny, onErrorIgnore:
		default:
			errs = append(errs, fmt.Errorf("authz: fetch %s: on_error must be %q or %q", typ, onErrorDeny, onErrorIgnore))
		}
		if !typeName.MatchString(typ) {
			errs = append(errs, fmt.Errorf("authz: fetch: resource type %q must match [a-z][a-z0-9_]{0,63}", typ))
		}
		if err := checkFetchURL(f.URL); err != nil {
			errs = append(errs, fmt.Errorf("authz: fetch %s: %w", typ, err))
		}
		if f.Timeout <= 0 {
			f.Timeout = 100 * time.Millisecond
		}
		fetch[typ] = f
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	s := &Service{
		policies: o.Policies, shadow: o.Shadow, store: o.Store, checker: o.Checker,
		callers: o.Callers, principals: o.Principals, fetch: fetch, client: o.HTTPClient,
		log: o.Log, logger: o.Logger, freshness: o.Freshness, timeout: o.DecisionTimeout, now: o.Now,
	}
	if s.client == nil {
		s.client = defaultClient()
	}
	if s.logger == nil {
		s.logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if s.freshness <= 0 {
		s.freshness = time.Second
	}
	if s.timeout <= 0 {
		s.timeout = 250 * time.Millisecond
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.rev.store = o.Store
	s.fetches.entries = make(map[string]fetchEntry)
	m, err := newMetrics(o.Registerer)
	if err != nil {
		return nil, err
	}
	s.metrics = m
	return s, nil
}

// defaultClient is the fetch client: bounded timeouts, redirects refused.
func defaultClient() *http.Client {
	return &http.Client{
		Timeout: 2 * time.Second,
		Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: time.Second}).DialContext,
			TLSHandshakeTimeout:   time.Second,
			ResponseHeaderTimeout: 2 * time.Second,
			MaxIdleConnsPerHost:   16,
			IdleConnTimeout:       90 * time.Second,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// Run polls the store's head revision every Freshness until ctx is done, so
// that changes made through other replicas are seen within that bound.
func (s *Service) Run(ctx context.Context) {
	// While polling, a known head older than twice the interval (polls
	// failing or stuck) is not trusted: decisions refresh it themselves,
	// and deny if they cannot (AZ-05).
	s.rev.maxAge.Store(int64(2 * s.freshness))
	defer s.rev.maxAge.Store(0)
	periodic.RunNow(ctx, s.freshness, s.logger, "authz: head revision poll failed", func(ctx context.Context) error {
		_, err := s.rev.refresh(ctx)
		return err
	})
}

// revTracker is the service's known head revision (AZ-05): raised by the
// poller, by local writes and on demand by a newer consistency token.
type revTracker struct {
	store  storage.RelationStore
	head   atomic.Uint64
	loaded atomic.Bool
	group  singleflight.Group
	// read is when the head was last read from the store (unix nanos);
	// maxAge (nanos, 0: unbounded) is how old it may be for at to use it
	// without reading it again.
	read   atomic.Int64
	maxAge atomic.Int64
}

// fresh reports whether the known head was read recently enough.
func (t *revTracker) fresh() bool {
	age := t.maxAge.Load()
	return age == 0 || time.Now().UnixNano()-t.read.Load() <= age
}

// observe raises the known head to r (never lowers it).
func (t *revTracker) observe(r storage.Revision) {
	for {
		cur := t.head.Load()
		if uint64(r) <= cur || t.head.CompareAndSwap(cur, uint64(r)) {
			t.loaded.Store(true)
			return
		}
	}
}

// refresh reads the store's head once (single-flight) and observes it.
func (t *revTracker) refresh(ctx context.Context) (storage.Revision, error) {
	ch := t.group.DoChan("head", func() (any, error) {
		// Detached from the first caller's cancellation; bounded instead.
		qctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		start := time.Now().UnixNano()
		r, err := t.store.HeadRevision(qctx)
		if err != nil {
			return storage.Revision(0), err
		}
		t.observe(r)
		t.read.Store(start)
		return r, nil
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return 0, fmt.Errorf("authz: head revision: %w", res.Err)
		}
		return storage.Revision(t.head.Load()), nil
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// at returns the revision to evaluate at: the known head, refreshed when
// atLeast is newer; storage.ErrRevisionAhead when the store has not reached
// atLeast.
func (t *revTracker) at(ctx context.Context, atLeast storage.Revision) (storage.Revision, error) {
	h := storage.Revision(t.head.Load())
	if t.loaded.Load() && atLeast <= h && t.fresh() {
		return h, nil
	}
	// The first refresh may join a poll whose read predates the write that
	// issued atLeast; a second one started after it returned cannot.
	for range 2 {
		h, err := t.refresh(ctx)
		if err != nil {
			return 0, err
		}
		if atLeast <= h {
			return h, nil
		}
	}
	return 0, storage.ErrRevisionAhead
}
