package authz

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

const (
	onErrorDeny   = "deny"
	onErrorIgnore = "ignore"

	maxFetchBody    = 64 << 10
	maxFetchEntries = 10000
	// maxFetchCacheBytes bounds the cached answers' total size (10,000
	// answers of 64 KiB would be 640 MiB).
	maxFetchCacheBytes = 16 << 20
)

// checkFetchURL validates a fetch URL template.
func checkFetchURL(tmpl string) error {
	if !strings.Contains(tmpl, "{id}") {
		return errors.New("url must contain {id}")
	}
	u, err := url.Parse(strings.ReplaceAll(tmpl, "{id}", "x"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("url must be an absolute http(s) URL")
	}
	// The id may only fill the path or the query: in the authority it
	// would let a resource id pick the host that is asked (SSRF).
	v, err := url.Parse(strings.ReplaceAll(tmpl, "{id}", "y"))
	if err != nil || v.Host != u.Host || v.User.String() != u.User.String() || v.Fragment != u.Fragment {
		return errors.New("url: {id} may appear only in the path or the query")
	}
	return nil
}

// fetchCache caches fetched attribute objects (raw JSON) per type and id.
type fetchCache struct {
	mu      sync.Mutex
	entries map[string]fetchEntry
	bytes   int // total len(raw) of entries
	group   singleflight.Group
}

type fetchEntry struct {
	raw     []byte
	expires time.Time
}

func (c *fetchCache) get(key string, now time.Time) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	if !ok || !now.Before(e.expires) {
		return nil, false
	}
	return e.raw, true
}

func (c *fetchCache) put(key string, raw []byte, expires time.Time, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.drop(key)
	full := func() bool {
		return len(c.entries) >= maxFetchEntries || c.bytes+len(raw) > maxFetchCacheBytes
	}
	if full() {
		for k, e := range c.entries {
			if !now.Before(e.expires) {
				c.drop(k)
			}
		}
		for k := range c.entries { // still full: drop arbitrary entries
			if !full() {
				break
			}
			c.drop(k)
		}
	}
	c.entries[key] = fetchEntry{raw: raw, expires: expires}
	c.bytes += len(raw)
}

// drop removes key's entry, if any, and its bytes from the total.
func (c *fetchCache) drop(key string) {
	if e, ok := c.entries[key]; ok {
		c.bytes -= len(e.raw)
		delete(c.entries, key)
	}
}

// fetchURL fills the template with id. The id is attacker-chosen (a path
// segment at the gateway): every byte but the unreserved ones of RFC 3986
// is percent-encoded, so that it stays one opaque path segment or query
// value ('&', '=', '+', ';', '/', '?' and '%' included), and the ids "."
// and "..", which a server would resolve as path steps, are refused.
func fetchURL(tmpl, id string) (string, error) {
	if id == "." || id == ".." {
		return "", errors.New("fetch: resource id is a dot segment")
	}
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '.', c == '_', c == '~':
			b.WriteByte(c)
		default:
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
		}
	}
	return strings.ReplaceAll(tmpl, "{id}", b.String()), nil
}

// fetchAttrs returns the fetched attributes of (typ, id), nil when the type
// has no fetch configuration. Errors follow the type's on_error.
func (s *Service) fetchAttrs(ctx context.Context, typ, id string) (map[string]any, error) {
	cfg, ok := s.fetch[typ]
	if !ok {
		return nil, nil
	}
	raw, err := s.fetchRaw(ctx, cfg, typ, id)
	if err == nil {
		var attrs map[string]any
		if attrs, err = object(raw, "fetched attributes"); err == nil {
			return attrs, nil
		}
	}
	if cfg.OnError == onErrorIgnore {
		s.logger.Warn("authz: attribute fetch failed, ignored", "type", typ, "err", err)
		return nil, nil
	}
	s.logger.Warn("authz: attribute fetch failed", "type", typ, "err", err)
	return nil, errAttrsUnavailable
}

var errAttrsUnavailable = errors.New("resource attributes unavailable")

// fetchRaw returns the cached or freshly fetched JSON object.
func (s *Service) fetchRaw(ctx context.Context, cfg FetchConfig, typ, id string) ([]byte, error) {
	key := typ + "\x00" + id
	if raw, ok := s.fetches.get(key, s.now()); ok {
		return raw, nil
	}
	ch := s.fetches.group.DoChan(key, func() (any, error) {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.Timeout)
		defer cancel()
		u, err := fetchURL(cfg.URL, id)
		if err != nil {
			return nil, err
		}
		raw, err := s.doFetch(fctx, u)
		if err != nil {
			return nil, err
		}
		if cfg.TTL > 0 {
			now := s.now()
			s.fetches.put(key, raw, now.Add(cfg.TTL), now)
		}
		return raw, nil
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		return r.Val.([]byte), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// doFetch GETs u and returns its body, which must be one JSON object of at
// most 64 KiB.
func (s *Service) doFetch(ctx context.Context, u string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, errors.New("fetch: malformed URL")
	}
	req.Header.Set("Accept", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		// The URL may hold a credential in its query: never in an error.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("fetch: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch: status %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxFetchBody+1))
	if err != nil {
		return nil, fmt.Errorf("fetch: %w", err)
	}
	if len(body) > maxFetchBody {
		return nil, errors.New("fetch: answer exceeds 64 KiB")
	}
	if err := checkStrict(body); err != nil {
		return nil, fmt.Errorf("fetch: answer is not a JSON object: %w", err)
	}
	return body, nil
}
