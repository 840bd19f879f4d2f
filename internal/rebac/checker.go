package rebac

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse/internal/storage"
)

// Errors of the engine. Budget errors name the budget, e.g.
// "rebac: budget exceeded: depth 50".
var (
	ErrBudget  = errors.New("rebac: budget exceeded")
	ErrUnknown = errors.New("rebac: unknown type or permission")
	ErrInvalid = errors.New("rebac: invalid input")
)

// Reader is the subset of storage.RelationStore the checker reads.
type Reader interface {
	ReadTuples(ctx context.Context, at storage.Revision, f storage.TupleFilter, cursor string, limit int) ([]storage.RelationTuple, string, error)
	ReadBySubject(ctx context.Context, at storage.Revision, f storage.SubjectFilter, cursor string, limit int) ([]storage.RelationTuple, string, error)
	ObjectIDs(ctx context.Context, at storage.Revision, objectType string, cursor string, limit int) ([]string, string, error)
}

// Limits bounds the work of one check, expand or list call. Zero values
// take the defaults.
type Limits struct {
	MaxDepth     int           // default 50
	MaxDispatch  int           // sub-problems per check (a batch of ≤ 1000 objects counts one), default 10000
	Timeout      time.Duration // per check/expand/list call, default 100ms
	CacheEntries int           // default 100000; 0 = default, <0 disables the cache
}

func (l Limits) withDefaults() Limits {
	if l.MaxDepth <= 0 {
		l.MaxDepth = 50
	}
	if l.MaxDispatch <= 0 {
		l.MaxDispatch = 10000
	}
	if l.Timeout <= 0 {
		l.Timeout = 100 * time.Millisecond
	}
	if l.CacheEntries == 0 {
		l.CacheEntries = 100000
	}
	return l
}

// Checker answers relationship questions over a Reader. It is safe for
// concurrent use.
type Checker struct {
	r      Reader
	limits Limits
	state  atomic.Pointer[checkerState]
}

// checkerState is swapped as a whole by SetSchema, so that a check started
// under an old schema can only ever fill the old (discarded) cache.
type checkerState struct {
	schema *Schema
	cache  *cache // nil when disabled
}

// NewChecker returns a checker of schema over r.
func NewChecker(schema *Schema, r Reader, l Limits) *Checker {
	c := &Checker{r: r, limits: l.withDefaults()}
	c.SetSchema(schema)
	return c
}

// Schema returns the current schema.
func (c *Checker) Schema() *Schema { return c.state.Load().schema }

// SetSchema replaces the schema atomically and clears the cache.
func (c *Checker) SetSchema(s *Schema) {
	st := &checkerState{schema: s}
	if c.limits.CacheEntries > 0 {
		st.cache = newCache(c.limits.CacheEntries)
	}
	c.state.Store(st)
}

// CheckResult is the answer of Check.
type CheckResult struct {
	Allowed    bool
	Path       []string // FormatTuple of the tuples that prove an allow, from the object to the subject; nil on deny
	Cached     bool
	Dispatches int
	Cycle      bool // a data cycle was met (and skipped); also set when an object of a batch reached a sibling still being evaluated
}

// validateRequest checks the object, permission and subject of a request
// against the schema.
func validateRequest(s *Schema, obj Object, permission string, subj *Subject) error {
	if !validName(obj.Type) || !validID(obj.ID) {
		return invalidf("object %q", clip(obj.String()))
	}
	if s == nil || s.defs[obj.Type] == nil {
		return fmt.Errorf("%w: object type %q", ErrUnknown, clip(obj.Type))
	}
	if !s.HasPermission(obj.Type, permission) {
		return fmt.Errorf("%w: %s has no relation or permission %q", ErrUnknown, obj.Type, clip(permission))
	}
	if subj == nil {
		return nil
	}
	if !validName(subj.Type) || !validID(subj.ID) || subj.Relation != "" && !validName(subj.Relation) {
		return invalidf("subject %q", clip(subj.String()))
	}
	if s.defs[subj.Type] == nil {
		return fmt.Errorf("%w: subject type %q", ErrUnknown, clip(subj.Type))
	}
	if subj.Relation != "" && !s.HasPermission(subj.Type, subj.Relation) {
		return fmt.Errorf("%w: %s has no relation or permission %q", ErrUnknown, subj.Type, clip(subj.Relation))
	}
	return nil
}

// Check reports whether subj has permission (a relation or permission) on
// obj at revision at (which must not be 0). An error (budget, storage,
// unknown names) is never an allow.
func (c *Checker) Check(ctx context.Context, at storage.Revision, obj Object, permission string, subj Subject) (CheckResult, error) {
	if at == 0 {
		return CheckResult{}, invalidf("revision 0")
	}
	st := c.state.Load()
	key := cacheKey{obj: obj, perm: permission, subj: subj}
	if st.cache != nil {
		if v, ok := st.cache.get(at, &key); ok {
			res := CheckResult{Allowed: v.allowed, Cached: true}
			if v.allowed {
				res.Path = append([]string(nil), v.path...)
			}
			return res, nil
		}
	}
	if err := validateRequest(st.schema, obj, permission, &subj); err != nil {
		return CheckResult{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, c.limits.Timeout)
	defer cancel()
	e := c.newEval(ctx, st.schema, at, subj)
	res, err := e.evalSet([]string{obj.ID}, obj.Type, permission, 1)
	out := CheckResult{Dispatches: e.dispatches, Cycle: e.cycle}
	if err != nil {
		return out, err
	}
	if path, ok := res[obj.ID]; ok {
		out.Allowed = true
		out.Path = path
		if out.Path == nil {
			out.Path = []string{}
		}
	}
	if st.cache != nil {
		st.cache.put(at, &key, cacheVal{allowed: out.Allowed, path: append([]string(nil), out.Path...)})
	}
	return out, nil
}
