package auth

// This file holds the JWKS key set of one asymmetric issuer: discovery,
// fetching, background refresh and the rate-limited single-flight refetch on
// an unknown kid. Document parsing and the on-disk cache are in
// keyset_disk.go.

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Limits and defaults of the key set.
const (
	// jwksMaxBody caps every body read (discovery document, JWKS, cache file).
	jwksMaxBody = 1 << 20
	// jwksInitialBackoff is the first retry delay after a failed fetch; it
	// doubles up to MinRefresh.
	jwksInitialBackoff = 2 * time.Second
	jwksDiscoveryPath  = "/.well-known/openid-configuration"
)

// Errors of the key set; lastError wraps one of them.
var (
	errJWKSFetch     = errors.New("auth: fetching JWKS failed")
	errJWKSDiscovery = errors.New("auth: OIDC discovery failed")
	errJWKSDocument  = errors.New("auth: unusable JWKS document")
	errJWKSNoKeys    = errors.New("auth: JWKS has no usable keys")
)

// keySetConfig configures a keySet. HTTPClient, Logger and Now are never nil
// when the Verifier passes them.
type keySetConfig struct {
	Issuer          string        // exact issuer; discovery document's "issuer" must equal it byte for byte
	JWKSURL         string        // when empty, discovered from Issuer + "/.well-known/openid-configuration" ("jwks_uri")
	Algorithms      []string      // allow-list (jwtx constants)
	HTTPClient      *http.Client  // never nil when passed
	CacheFile       string        // optional on-disk cache path
	MinRefresh      time.Duration // lower bound for the max-age driven refresh period
	MaxRefresh      time.Duration // upper bound; also the period when no Cache-Control max-age
	RefetchInterval time.Duration // minimum gap between unknown-kid refetches
	Logger          *slog.Logger  // never nil
	Now             func() time.Time
}

// keyEntry is one usable verification key and the single algorithm bound to
// it.
type keyEntry struct {
	key crypto.PublicKey
	alg string
}

// keySnapshot is an immutable, never empty key set, swapped atomically.
type keySnapshot struct {
	keys map[string]keyEntry
}

// fetchCall is one in-flight fetch shared by every caller that joins it.
type fetchCall struct {
	done   chan struct{}
	err    error         // set before done is closed
	period time.Duration // next refresh period on success
}

// keySet is the JWKS of one issuer. lookup is lock-free; fetches are
// single-flight, so at most one HTTP fetch runs at a time.
type keySet struct {
	cfg    keySetConfig
	log    *slog.Logger
	snap   atomic.Pointer[keySnapshot] // nil until a non-empty set is loaded
	gen    atomic.Uint64
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	installMu sync.Mutex // serializes install (the disk load may overlap an early refetch)

	mu          sync.Mutex // guards the fields below
	started     bool
	closed      bool
	inflight    *fetchCall
	lastRefetch time.Time // start of the last unknown-kid refetch (cfg.Now)
	err         error

	// Owned by the in-flight fetch (fetches never overlap).
	jwksURL string // discovered jwks_uri; empty means discover again
	etag    string // ETag of the current set's document
}

// newKeySet returns a key set that does nothing until start. Zero durations
// get the documented defaults.
func newKeySet(cfg keySetConfig) *keySet {
	if cfg.MinRefresh <= 0 {
		cfg.MinRefresh = DefaultMinRefresh
	}
	if cfg.MaxRefresh <= 0 {
		cfg.MaxRefresh = DefaultMaxRefresh
	}
	if cfg.MaxRefresh < cfg.MinRefresh {
		cfg.MaxRefresh = cfg.MinRefresh
	}
	if cfg.RefetchInterval <= 0 {
		cfg.RefetchInterval = DefaultRefetchInterval
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &keySet{
		cfg:    cfg,
		log:    cfg.Logger.With("issuer", cfg.Issuer),
		ctx:    ctx,
		cancel: cancel,
	}
}

// start loads the disk cache (keys usable at once), then fetches in the
// background and keeps refreshing. It returns immediately; later calls and
// calls after close do nothing.
func (k *keySet) start() {
	k.mu.Lock()
	if k.started || k.closed {
		k.mu.Unlock()
		return
	}
	k.started = true
	k.wg.Add(1)
	k.mu.Unlock()
	k.loadCache()
	go k.loop()
}

// close stops the background goroutine and any in-flight fetch and waits for
// them. It is idempotent.
func (k *keySet) close() {
	k.mu.Lock()
	k.closed = true
	k.mu.Unlock()
	k.cancel()
	k.wg.Wait()
}

// lookup returns the key for kid and its bound algorithm. It takes no lock
// and does not allocate.
func (k *keySet) lookup(kid string) (crypto.PublicKey, string, bool) {
	s := k.snap.Load()
	if s == nil {
		return nil, "", false
	}
	e, ok := s.keys[kid]
	if !ok {
		return nil, "", false
	}
	return e.key, e.alg, true
}

// ready reports whether a non-empty key set has been loaded.
func (k *keySet) ready() bool { return k.snap.Load() != nil }

// generation increases whenever a previously present kid disappears or
// changes key or algorithm.
func (k *keySet) generation() uint64 { return k.gen.Load() }

// lastError is the error of the last fetch, nil after a success.
func (k *keySet) lastError() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.err
}

// refetch is called on an unknown kid. Concurrent callers share one fetch
// and wait for it (or for ctx); a new fetch starts at most once per
// RefetchInterval, and callers inside the interval return at once (JWT-B05).
func (k *keySet) refetch(ctx context.Context) {
	k.mu.Lock()
	if k.closed {
		k.mu.Unlock()
		return
	}
	c := k.inflight
	if c == nil {
		now := k.cfg.Now()
		if !k.lastRefetch.IsZero() {
			// A clock that went backwards allows one fetch and restarts
			// the interval.
			if d := now.Sub(k.lastRefetch); d >= 0 && d < k.cfg.RefetchInterval {
				k.mu.Unlock()
				return
			}
		}
		k.lastRefetch = now
		c = k.startFetchLocked()
	}
	k.mu.Unlock()
	select {
	case <-c.done:
	case <-ctx.Done():
	}
}

// sharedFetch joins the in-flight fetch or starts one, without rate limit.
// It returns nil after close.
func (k *keySet) sharedFetch() *fetchCall {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed {
		return nil
	}
	if k.inflight != nil {
		return k.inflight
	}
	return k.startFetchLocked()
}

// startFetchLocked starts a fetch goroutine; k.mu is held and k is open.
func (k *keySet) startFetchLocked() *fetchCall {
	c := &fetchCall{done: make(chan struct{})}
	k.inflight = c
	k.wg.Add(1)
	go func() {
		defer k.wg.Done()
		period, err := k.fetch(k.ctx)
		c.err, c.period = err, period
		k.mu.Lock()
		k.inflight = nil
		k.err = err
		k.mu.Unlock()
		close(c.done)
	}()
	return c
}

// loop refreshes the set: after a success it waits the max-age driven
// period, after a failure a doubling backoff capped at MinRefresh, keeping
// the last good set meanwhile (RL-01).
func (k *keySet) loop() {
	defer k.wg.Done()
	var backoff time.Duration
	for {
		c := k.sharedFetch()
		if c == nil {
			return
		}
		select {
		case <-c.done:
		case <-k.ctx.Done():
			return
		}
		var wait time.Duration
		if c.err != nil {
			if k.ctx.Err() != nil {
				return
			}
			backoff = jwksNextBackoff(backoff, k.cfg.MinRefresh)
			wait = backoff
			k.log.Warn("JWKS fetch failed; keeping the current key set", "error", c.err, "retry_in", wait, "keys", k.keyCount())
		} else {
			backoff = 0
			wait = c.period
		}
		t := time.NewTimer(jwksJitter(wait))
		select {
		case <-t.C:
		case <-k.ctx.Done():
			t.Stop()
			return
		}
	}
}

// jwksNextBackoff doubles prev, starting at jwksInitialBackoff, capped at limit.
func jwksNextBackoff(prev, limit time.Duration) time.Duration {
	next := prev * 2
	if prev <= 0 {
		next = jwksInitialBackoff
	}
	return min(next, limit)
}

// jwksJitter shortens d by up to 10% so that many instances do not refresh in
// lockstep.
func jwksJitter(d time.Duration) time.Duration {
	if d < 10 {
		return d
	}
	return d - rand.N(d/10)
}

func (k *keySet) keyCount() int {
	if s := k.snap.Load(); s != nil {
		return len(s.keys)
	}
	return 0
}

// fetch downloads the JWKS (discovering its URL first when needed), installs
// it when usable, and returns the next refresh period.
func (k *keySet) fetch(ctx context.Context) (time.Duration, error) {
	jwksURL := k.cfg.JWKSURL
	if jwksURL == "" {
		if k.jwksURL == "" {
			u, err := k.discover(ctx)
			if err != nil {
				return 0, err
			}
			k.jwksURL = u
		}
		jwksURL = k.jwksURL
	}
	etag := ""
	if k.snap.Load() != nil {
		etag = k.etag
	}
	body, hdr, status, err := k.get(ctx, jwksURL, etag)
	if err != nil || (status != http.StatusOK && status != http.StatusNotModified) {
		// The jwks_uri may have moved: discover again next time.
		k.jwksURL = ""
		if err == nil {
			err = fmt.Errorf("%w: %s: HTTP status %d", errJWKSFetch, jwksURL, status)
		}
		return 0, err
	}
	period := jwksRefreshPeriod(hdr.Get("Cache-Control"), k.cfg.MinRefresh, k.cfg.MaxRefresh)
	if status == http.StatusNotModified {
		k.log.Debug("JWKS not modified", "url", jwksURL, "keys", k.keyCount())
		return period, nil
	}
	keys, notes, err := parseJWKS(body, k.cfg.Algorithms)
	k.logNotes(notes)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", jwksURL, err)
	}
	k.etag = hdr.Get("ETag")
	if k.install(keys) {
		k.log.Info("JWKS loaded", "url", jwksURL, "keys", len(keys), "generation", k.gen.Load())
		k.writeCache(body)
	}
	return period, nil
}

// install swaps in keys (never empty) and reports whether the set changed.
// generation increases when a kid present before disappears or changes.
func (k *keySet) install(keys map[string]keyEntry) bool {
	k.installMu.Lock()
	defer k.installMu.Unlock()
	old := k.snap.Load()
	if old != nil {
		withdrawn := false
		for kid, o := range old.keys {
			n, ok := keys[kid]
			if !ok || n.alg != o.alg || !jwksSameKey(o.key, n.key) {
				withdrawn = true
				break
			}
		}
		if !withdrawn && len(keys) == len(old.keys) {
			return false
		}
		if withdrawn {
			k.gen.Add(1)
		}
	}
	k.snap.Store(&keySnapshot{keys: keys})
	return true
}

func jwksSameKey(a, b crypto.PublicKey) bool {
	eq, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && eq.Equal(b)
}

// discover reads the discovery document and returns its jwks_uri. Its issuer
// must equal cfg.Issuer byte for byte.
func (k *keySet) discover(ctx context.Context) (string, error) {
	u := strings.TrimSuffix(k.cfg.Issuer, "/") + jwksDiscoveryPath
	body, _, status, err := k.get(ctx, u, "")
	if err != nil {
		return "", fmt.Errorf("%w: %w", errJWKSDiscovery, err)
	}
	if status != http.StatusOK {
		return "", fmt.Errorf("%w: %s: HTTP status %d", errJWKSDiscovery, u, status)
	}
	doc, err := jwksStrictObject(body)
	if err != nil {
		return "", fmt.Errorf("%w: %s: %w", errJWKSDiscovery, u, err)
	}
	iss, ok := jwksString(doc["issuer"])
	if !ok || iss != k.cfg.Issuer {
		return "", fmt.Errorf("%w: %s: issuer %q does not match the configured issuer %q", errJWKSDiscovery, u, jwksTruncate(iss, 256), k.cfg.Issuer)
	}
	jwksURI, ok := jwksString(doc["jwks_uri"])
	if !ok {
		return "", fmt.Errorf("%w: %s: jwks_uri missing or not a string", errJWKSDiscovery, u)
	}
	if err := checkJWKSURI(k.cfg.Issuer, jwksURI); err != nil {
		return "", fmt.Errorf("%w: %s: %w", errJWKSDiscovery, u, err)
	}
	return jwksURI, nil
}

// checkJWKSURI accepts an absolute https URL, or an http URL when the issuer
// itself is http.
func checkJWKSURI(issuer, s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.User != nil || u.Fragment != "" {
		return errors.New("jwks_uri is not an absolute URL")
	}
	iu, _ := url.Parse(issuer)
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && iu != nil && iu.Scheme == "http":
	default:
		return fmt.Errorf("jwks_uri scheme %q not allowed", jwksTruncate(u.Scheme, 16))
	}
	return nil
}

// get performs one GET, reading at most jwksMaxBody bytes of a 200 body.
func (k *keySet) get(ctx context.Context, u, etag string) ([]byte, http.Header, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, nil, 0, fmt.Errorf("%w: bad URL: %w", errJWKSFetch, err)
	}
	req.Header.Set("Accept", "application/json, application/jwk-set+json")
	if etag != "" {
		req.Header.Set("If-None-Match", etag)
	}
	resp, err := k.cfg.HTTPClient.Do(req)
	if err != nil {
		return nil, nil, 0, fmt.Errorf("%w: %w", errJWKSFetch, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return nil, resp.Header, resp.StatusCode, nil
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, jwksMaxBody+1))
	if err != nil {
		return nil, nil, 0, fmt.Errorf("%w: %s: reading body: %w", errJWKSFetch, u, err)
	}
	if len(body) > jwksMaxBody {
		return nil, nil, 0, fmt.Errorf("%w: %s: body larger than %d bytes", errJWKSFetch, u, jwksMaxBody)
	}
	return body, resp.Header, resp.StatusCode, nil
}

// jwksRefreshPeriod is the Cache-Control max-age clamped into [lo, hi]; hi when
// there is no max-age; lo for no-cache / no-store.
func jwksRefreshPeriod(cc string, lo, hi time.Duration) time.Duration {
	period := hi
	for part := range strings.SplitSeq(cc, ",") {
		part = strings.ToLower(strings.TrimSpace(part))
		switch {
		case part == "no-cache" || part == "no-store":
			return lo
		case strings.HasPrefix(part, "max-age="):
			v := strings.Trim(strings.TrimPrefix(part, "max-age="), `"`)
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 {
				continue
			}
			if n > int64(hi/time.Second) {
				period = hi
			} else {
				period = time.Duration(n) * time.Second
			}
		}
	}
	return max(lo, min(period, hi))
}

// logNotes logs why keys of a document were skipped. Notes carry no key
// material.
func (k *keySet) logNotes(notes []jwkNote) {
	for _, n := range notes {
		level := slog.LevelDebug
		if n.suspicious {
			level = slog.LevelWarn
		}
		k.log.Log(context.Background(), level, "JWKS key ignored", "index", n.index, "kid", n.kid, "reason", n.reason)
	}
}

// jwksTruncate bounds attacker-chosen strings placed in errors and logs.
func jwksTruncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
