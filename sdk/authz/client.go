package authz

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/singleflight"
)

// Defaults and bounds of Config.
const (
	DefaultTimeout   = 250 * time.Millisecond
	DefaultCacheTTL  = time.Second
	MaxCacheTTL      = 10 * time.Second // the AZ-05 bound: a cached answer is never older than this
	DefaultCacheSize = 10_000
	// MaxBatch is how many checks one POST /authorize/batch carries;
	// AuthorizeBatch splits longer lists.
	MaxBatch = 100
	// MaxWrites is how many relationship writes one call may carry (the
	// service's limit; writes are not split, so a call stays atomic).
	MaxWrites = 1000
	// maxAnswer caps an answer body before it is decoded.
	maxAnswer = 1 << 20
	// batchParallel bounds concurrent batch chunks of one AuthorizeBatch.
	batchParallel = 4
)

// UnavailableReason is the Reason of every fail-closed deny (Decision.Err
// set): the service could not be asked or gave no acceptable answer.
const UnavailableReason = "authorization service unavailable"

var (
	// ErrUnavailable wraps transport errors, timeouts and non-200 answers.
	ErrUnavailable = errors.New("authz: service unavailable")
	// ErrBadAnswer wraps answers that are not a well-formed decision:
	// malformed or oversize JSON, unknown or duplicate members, a missing or
	// non-boolean "allow".
	ErrBadAnswer = errors.New("authz: malformed answer")
	// ErrRefused wraps answers in which the service refused the request
	// itself (400, 413, 415, 422): the error carries its
	// error_description. Retrying the same request will not help.
	ErrRefused = errors.New("authz: request refused by the service")
	// ErrInvalidRequest wraps requests refused before any call (no action,
	// no resource type, no principal, attributes that do not encode).
	ErrInvalidRequest = errors.New("authz: invalid request")
)

// Config configures a Client.
type Config struct {
	// URL is the base URL of the authorization service: https, or http only
	// on a loopback host. No user info, query or fragment.
	URL string
	// HTTPClient makes the calls and must carry the caller's credentials,
	// e.g. a client whose Transport is sdk/auth.NewServiceTransport over
	// sdk/auth.NewClientCredentials. Required. Redirects are never followed
	// (the client is copied with CheckRedirect refusing them).
	HTTPClient *http.Client
	// Timeout bounds each call (default 250ms).
	Timeout time.Duration
	// CacheTTL is how long a decision is reused (default 1s; negative
	// disables the cache; at most 10s).
	CacheTTL time.Duration
	// CacheSize bounds the number of cached decisions (default 10000).
	CacheSize int
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Client asks the authorization service. It is safe for concurrent use.
type Client struct {
	base    string // no trailing slash
	http    *http.Client
	timeout time.Duration
	cache   *decisionCache // nil: disabled
	now     func() time.Time
	flight  singleflight.Group
}

// New returns a Client. It fails when the URL is not acceptable, no
// HTTPClient is given, or a bound is out of range.
func New(cfg Config) (*Client, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || u.Host == "" || u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" ||
		strings.Contains(cfg.URL, "#") || !(u.Scheme == "https" || u.Scheme == "http" && isLoopback(u.Hostname())) {
		return nil, errors.New("authz: URL must be an https URL (http only on loopback) without user info, query or fragment")
	}
	if cfg.HTTPClient == nil {
		return nil, errors.New("authz: an HTTPClient carrying the caller's credentials is required")
	}
	if cfg.Timeout < 0 || cfg.CacheSize < 0 {
		return nil, errors.New("authz: Timeout and CacheSize must not be negative")
	}
	if cfg.CacheTTL > MaxCacheTTL {
		return nil, fmt.Errorf("authz: CacheTTL must be at most %s", MaxCacheTTL)
	}
	hc := *cfg.HTTPClient
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	c := &Client{base: strings.TrimRight(u.String(), "/"), http: &hc, timeout: cfg.Timeout, now: cfg.Now}
	if c.timeout == 0 {
		c.timeout = DefaultTimeout
	}
	if c.now == nil {
		c.now = time.Now
	}
	ttl, size := cfg.CacheTTL, cfg.CacheSize
	if ttl == 0 {
		ttl = DefaultCacheTTL
	}
	if size == 0 {
		size = DefaultCacheSize
	}
	if ttl > 0 {
		c.cache = newDecisionCache(size, ttl)
	}
	return c, nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// failed is the fail-closed answer for err.
func failed(err error) Decision {
	return Decision{Allow: false, Reason: UnavailableReason, Err: err}
}

// Authorize asks whether r is allowed. It never returns Allow true together
// with an error: any failure is a deny with Err set (fail closed).
// Concurrent identical requests share one call. A request with
// AtLeastAsFresh is always sent to the service and its answer is not cached.
func (c *Client) Authorize(ctx context.Context, r Request) Decision {
	body, key, err := encodeAuthorize(r)
	if err != nil {
		return failed(err)
	}
	useCache := c.cache != nil && r.AtLeastAsFresh == ""
	if useCache {
		if d, ok := c.cache.get(key, c.now()); ok {
			return d
		}
	}
	call := func(ctx context.Context) (any, error) {
		raw, err := c.post(ctx, "/authorize", body)
		if err != nil {
			return nil, err
		}
		d, err := decodeDecision(raw)
		if err != nil {
			return nil, err
		}
		if useCache {
			c.cache.put(key, d, c.now())
		}
		return d, nil
	}
	var v any
	if useCache {
		// Only cacheable requests share a call: a fresh read must not reuse
		// an answer computed for someone else's older request.
		// Shared: one caller leaving must not fail the others (the call
		// keeps its own timeout).
		shared := context.WithoutCancel(ctx)
		ch := c.flight.DoChan(string(key[:]), func() (any, error) { return call(shared) })
		select {
		case res := <-ch:
			v, err = res.Val, res.Err
		case <-ctx.Done():
			err = fmt.Errorf("%w: %w", ErrUnavailable, ctx.Err())
		}
	} else {
		v, err = call(ctx)
	}
	if err != nil {
		return failed(err)
	}
	return copyDecision(v.(Decision)) // shared by the callers of one flight
}

// AuthorizeBatch asks for several checks of one principal and returns one
// decision per check, in order. Cached decisions are used per check; the
// others are sent in POST /authorize/batch calls of at most MaxBatch checks.
// A failed call denies (with Err) exactly the checks it carried.
func (c *Client) AuthorizeBatch(ctx context.Context, p Principal, checks []Check) []Decision {
	out := make([]Decision, len(checks))
	pw, err := principalWire(p)
	if err != nil {
		for i := range out {
			out[i] = failed(err)
		}
		return out
	}
	now := c.now()
	var missing []int
	keys := make([][32]byte, len(checks))
	wires := make([]checkWire, len(checks))
	for i, ch := range checks {
		w, key, err := encodeCheck(pw, ch)
		if err != nil {
			out[i] = failed(err)
			continue
		}
		keys[i], wires[i] = key, w
		if c.cache != nil {
			if d, ok := c.cache.get(key, now); ok {
				out[i] = d
				continue
			}
		}
		missing = append(missing, i)
	}
	var g errgroup.Group
	g.SetLimit(batchParallel)
	for start := 0; start < len(missing); start += MaxBatch {
		idx := missing[start:min(start+MaxBatch, len(missing))]
		g.Go(func() error {
			ws := make([]checkWire, len(idx))
			for j, i := range idx {
				ws[j] = wires[i]
			}
			ds, err := c.batch(ctx, pw, ws)
			for j, i := range idx {
				if err != nil {
					out[i] = failed(err)
					continue
				}
				out[i] = ds[j]
				if c.cache != nil {
					c.cache.put(keys[i], ds[j], c.now())
				}
			}
			return nil
		})
	}
	_ = g.Wait()
	return out
}

// batch sends one chunk.
func (c *Client) batch(ctx context.Context, pw principalJSON, ws []checkWire) ([]Decision, error) {
	body, err := marshalCanonical(batchWire{Principal: pw, Checks: ws})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidRequest, err)
	}
	raw, err := c.post(ctx, "/authorize/batch", body)
	if err != nil {
		return nil, err
	}
	ds, err := decodeBatch(raw)
	if err != nil {
		return nil, err
	}
	if len(ds) != len(ws) {
		return nil, fmt.Errorf("%w: %d results for %d checks", ErrBadAnswer, len(ds), len(ws))
	}
	return ds, nil
}

// post sends a JSON body and returns the body of a 200 answer.
func (c *Client) post(ctx context.Context, path string, body []byte) ([]byte, error) {
	return c.do(ctx, http.MethodPost, path, body)
}

// do calls the service with the per-call timeout and returns a 200 body of
// at most maxAnswer bytes. The timeout holds even when the HTTPClient's
// transport ignores the context (e.g. while it fetches its own token): the
// call then finishes in the background and its result is dropped.
func (c *Client) do(ctx context.Context, method, path string, body []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel() // after the result is in: roundTrip has read the whole body
	type result struct {
		raw []byte
		err error
	}
	ch := make(chan result, 1)
	go func() {
		raw, err := c.roundTrip(ctx, method, path, body)
		ch <- result{raw, err}
	}()
	select {
	case r := <-ch:
		return r.raw, r.err
	case <-ctx.Done():
		select {
		case r := <-ch: // finished at the deadline: use it
			return r.raw, r.err
		default:
		}
		return nil, fmt.Errorf("%w: %s %s: %w", ErrUnavailable, method, path, ctx.Err())
	}
}

func (c *Client) roundTrip(ctx context.Context, method, path string, body []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %s %s: %w", ErrUnavailable, method, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		head, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		switch resp.StatusCode {
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType, http.StatusUnprocessableEntity:
			// The service refused this request (bad tuples, a revision
			// from the future, a budget): retrying will not help.
			return nil, fmt.Errorf("%w: %s %s: status %d: %s", ErrRefused, method, path, resp.StatusCode, refusal(head))
		}
		return nil, fmt.Errorf("%w: %s %s: status %d", ErrUnavailable, method, path, resp.StatusCode)
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %s %s: reading the answer: %w", ErrUnavailable, method, path, err)
	}
	if len(raw) > maxAnswer {
		return nil, fmt.Errorf("%w: answer larger than %d bytes", ErrBadAnswer, maxAnswer)
	}
	return raw, nil
}

// WriteRelationships applies touch and delete writes in one call and returns
// the revision token to pass as AtLeastAsFresh. At most MaxWrites writes.
func (c *Client) WriteRelationships(ctx context.Context, writes []RelationshipWrite) (revision string, err error) {
	if len(writes) == 0 || len(writes) > MaxWrites {
		return "", fmt.Errorf("%w: between 1 and %d writes", ErrInvalidRequest, MaxWrites)
	}
	ws := make([]writeWire, len(writes))
	for i, w := range writes {
		if w.Op != "touch" && w.Op != "delete" || w.Tuple == "" {
			return "", fmt.Errorf("%w: write %d: op must be touch or delete and tuple must be set", ErrInvalidRequest, i)
		}
		ws[i] = writeWire(w)
	}
	body, err := marshalCanonical(struct {
		Writes []writeWire `json:"writes"`
	}{ws})
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrInvalidRequest, err)
	}
	raw, err := c.post(ctx, "/relationships", body)
	if err != nil {
		return "", err
	}
	return decodeRevision(raw)
}

// PutEntity replicates an entity's attributes with the owner's version;
// applied is false when the service already holds a newer version.
func (c *Client) PutEntity(ctx context.Context, typ, id string, attrs map[string]any, version int64) (applied bool, revision string, err error) {
	if typ == "" || id == "" {
		return false, "", fmt.Errorf("%w: entity type and id are required", ErrInvalidRequest)
	}
	if attrs == nil {
		attrs = map[string]any{}
	}
	body, err := marshalCanonical(struct {
		Attrs   map[string]any `json:"attrs"`
		Version int64          `json:"version"`
	}{attrs, version})
	if err != nil {
		return false, "", fmt.Errorf("%w: %w", ErrInvalidRequest, err)
	}
	raw, err := c.do(ctx, http.MethodPut, "/entities/"+url.PathEscape(typ)+"/"+url.PathEscape(id), body)
	if err != nil {
		return false, "", err
	}
	return decodeApplied(raw)
}

// refusal returns the service's error_description from an error answer,
// reduced to at most 200 printable ASCII characters ("" if there is none).
func refusal(body []byte) string {
	var e struct {
		Description string `json:"error_description"`
	}
	if json.Unmarshal(body, &e) != nil {
		return ""
	}
	out := make([]byte, 0, min(len(e.Description), 200))
	for i := 0; i < len(e.Description) && len(out) < 200; i++ {
		if c := e.Description[i]; c >= 0x20 && c < 0x7f {
			out = append(out, c)
		}
	}
	return string(out)
}
