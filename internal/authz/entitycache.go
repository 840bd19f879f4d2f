package authz

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/gatehouse/gatehouse/internal/storage"
)

// errMalformedEntity is stored entity attributes that are not a JSON object.
var errMalformedEntity = errors.New("authz: malformed replicated attributes")

// Bounds of the replicated-entity cache: entries, and bytes of stored
// attribute JSON (decoded, an entry takes a few times its JSON size). An
// entity above maxCachedEntityBytes is read from the store every time.
const (
	maxCachedEntities    = 10000
	maxCachedBytes       = 16 << 20
	maxCachedEntityBytes = 64 << 10
)

// entityKey names a replicated entity.
type entityKey struct{ typ, id string }

// cachedEntity is what the store held for a key: the decoded attributes,
// or found = false for no live entity. Attrs is never mutated after it is
// cached; readers get a deep copy.
type cachedEntity struct {
	attrs map[string]any
	found bool
	size  int // bytes of the stored JSON
}

// entityCache maps (type, id) to the replicated attributes read at one
// revision of the service's known head. A decision at a newer revision
// empties it first, so an entity write (which always consumes a revision) is
// seen by the first decision at or after the write's revision: at once for
// local writes (they raise the known head before answering), within
// freshness for remote ones (AZ-05, as for relation checks). Decisions at an
// older revision than the cache's read the store and leave the cache alone.
// Errors are never cached. The zero value is ready to use.
type entityCache struct {
	mu      sync.Mutex
	rev     storage.Revision
	entries map[entityKey]cachedEntity
	bytes   int // sum of the entries' sizes
}

// get returns the entry for k cached at rev.
func (c *entityCache) get(rev storage.Revision, k entityKey) (cachedEntity, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if rev != c.rev || c.entries == nil {
		return cachedEntity{}, false
	}
	e, ok := c.entries[k]
	return e, ok
}

// put caches e for k as read at rev: a newer rev drops every older entry,
// an older rev is not cached.
func (c *entityCache) put(rev storage.Revision, k entityKey, e cachedEntity) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case rev < c.rev || e.size > maxCachedEntityBytes:
		return
	case rev > c.rev || c.entries == nil:
		c.rev, c.bytes = rev, 0
		c.entries = make(map[entityKey]cachedEntity)
	}
	if prev, ok := c.entries[k]; ok {
		c.bytes -= prev.size
		delete(c.entries, k)
	}
	for len(c.entries) >= maxCachedEntities || c.bytes+e.size > maxCachedBytes {
		for old, v := range c.entries { // an arbitrary victim (map order is random)
			c.bytes -= v.size
			delete(c.entries, old)
			break
		}
	}
	c.entries[k] = e
	c.bytes += e.size
}

// replicated returns a copy of the replicated attributes of (typ, id) as of
// rev, or found = false when none are stored. Store failures and malformed
// attributes are errors and are not cached.
func (s *Service) replicated(ctx context.Context, rev storage.Revision, typ, id string) (map[string]any, bool, error) {
	if err := ctx.Err(); err != nil {
		// As the store read would: a cancelled or expired decision is not
		// answered from the cache (fail closed).
		return nil, false, err
	}
	k := entityKey{typ: typ, id: id}
	if e, ok := s.entities.get(rev, k); ok {
		return cloneAttrs(e.attrs), e.found, nil
	}
	ent, err := s.store.GetEntity(ctx, typ, id)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		s.entities.put(rev, k, cachedEntity{})
		return nil, false, nil
	case err != nil:
		return nil, false, err
	}
	attrs, err := object(ent.Attrs, "replicated attributes")
	if err != nil {
		return nil, false, fmt.Errorf("%w: %w", errMalformedEntity, err)
	}
	s.entities.put(rev, k, cachedEntity{attrs: attrs, found: true, size: len(ent.Attrs)})
	return cloneAttrs(attrs), true, nil
}

// cloneAttrs deep-copies decoded JSON attributes (objects and arrays; the
// other values are immutable), so that no decision can change a cached one.
func cloneAttrs(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = cloneValue(v)
	}
	return out
}

func cloneValue(v any) any {
	switch v := v.(type) {
	case map[string]any:
		return cloneAttrs(v)
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = cloneValue(x)
		}
		return out
	}
	return v
}
