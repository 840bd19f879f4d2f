package rebac

import (
	"context"
	"errors"
	"fmt"

	"github.com/gatehouse/gatehouse/internal/storage"
)

// readPage is the page size of every Reader call (the storage maximum), and
// also the batch size of ObjectIDs filters.
const readPage = 1000

type nodeKey struct{ typ, id, name string }

type nodeState struct {
	done, allowed bool
	path          []string
	neg           int // exclusion nesting when the node was entered
}

// eval is the state of one check (or one list call): budgets, the visited
// set and what it proved.
type eval struct {
	ctx        context.Context
	r          Reader
	s          *Schema
	at         storage.Revision
	subj       Subject
	limits     Limits
	dispatches int
	cycle      bool
	cycleHits  int // revisits of nodes being evaluated (data cycles skipped)
	neg        int // how many subtracted sides of exclusions enclose the evaluation
	memo       map[nodeKey]*nodeState
}

func (c *Checker) newEval(ctx context.Context, s *Schema, at storage.Revision, subj Subject) *eval {
	return &eval{ctx: ctx, r: c.r, s: s, at: at, subj: subj, limits: c.limits, memo: map[nodeKey]*nodeState{}}
}

func (e *eval) budget(which string, limit any) error {
	return fmt.Errorf("%w: %s %v", ErrBudget, which, limit)
}

func (e *eval) ctxErr(err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: time %v", ErrBudget, e.limits.Timeout)
	}
	return fmt.Errorf("rebac: %w", err)
}

// tick fails when the call's time is up.
func (e *eval) tick() error {
	if err := e.ctx.Err(); err != nil {
		return e.ctxErr(err)
	}
	return nil
}

// dispatch counts sub-problems: one per batch of up to readPage objects.
func (e *eval) dispatch(n int) error {
	e.dispatches += (n + readPage - 1) / readPage
	if e.dispatches > e.limits.MaxDispatch {
		return e.budget("dispatch", e.limits.MaxDispatch)
	}
	return nil
}

// readChunks reads every tuple matching f for ids (in chunks of readPage
// object ids, every page of each) and calls fn on each.
func (e *eval) readChunks(ids []string, f storage.TupleFilter, fn func(storage.RelationTuple)) error {
	for start := 0; start < len(ids); start += readPage {
		f.ObjectIDs = ids[start:min(start+readPage, len(ids))]
		if err := e.readAll(f, fn); err != nil {
			return err
		}
	}
	return nil
}

func (e *eval) readAll(f storage.TupleFilter, fn func(storage.RelationTuple)) error {
	cursor := ""
	for {
		if err := e.tick(); err != nil {
			return err
		}
		ts, next, err := e.r.ReadTuples(e.ctx, e.at, f, cursor, readPage)
		if err != nil {
			if e.ctx.Err() != nil {
				return e.ctxErr(e.ctx.Err())
			}
			return fmt.Errorf("rebac: read tuples: %w", err)
		}
		for _, t := range ts {
			fn(t)
		}
		if next == "" {
			return nil
		}
		if next == cursor {
			return fmt.Errorf("rebac: read tuples: cursor did not advance")
		}
		cursor = next
	}
}

// evalSet evaluates relation or permission name of type typ for each of
// ids (distinct) and returns the allowed ones with their proof path.
func (e *eval) evalSet(ids []string, typ, name string, depth int) (map[string][]string, error) {
	if depth > e.limits.MaxDepth {
		return nil, e.budget("depth", e.limits.MaxDepth)
	}
	if err := e.tick(); err != nil {
		return nil, err
	}
	d := e.s.defs[typ]
	out := make(map[string][]string)
	if d == nil {
		return out, nil
	}
	todo := make([]string, 0, len(ids))
	states := make([]*nodeState, 0, len(ids))
	for _, id := range ids {
		if id == e.subj.ID && typ == e.subj.Type && name == e.subj.Relation {
			out[id] = []string{} // the subject set itself
			continue
		}
		k := nodeKey{typ: typ, id: id, name: name}
		if n, ok := e.memo[k]; ok {
			if !n.done {
				if e.neg > n.neg {
					// The node's own answer would decide whether it is
					// subtracted: no answer is safe.
					return nil, cycleErr(typ, id, name)
				}
				e.cycle = true
				e.cycleHits++
			} else if n.allowed {
				out[id] = n.path
			}
			continue
		}
		n := &nodeState{neg: e.neg}
		e.memo[k] = n
		todo = append(todo, id)
		states = append(states, n)
	}
	if len(todo) == 0 {
		return out, nil
	}
	// Nodes skipped because they were being evaluated are either ancestors
	// (a data cycle) or siblings of this batch or of a batch above. A deny
	// reached while skipping may be wrong: while the batch makes progress
	// (new allows), such denies are evaluated again, now seeing the
	// siblings' answers; the rest are not memoized, so that a later visit
	// recomputes them. Allows are always proved by a path and are kept.
	for {
		if err := e.dispatch(len(todo)); err != nil {
			return nil, err
		}
		hits := e.cycleHits
		var res map[string][]string
		var err error
		if r := d.rels[name]; r != nil {
			res, err = e.evalRelation(todo, typ, r, depth)
		} else if p := d.perms[name]; p != nil && p.expr != nil {
			res, err = e.evalExpr(todo, typ, p.expr, depth)
		}
		if err != nil {
			return nil, err
		}
		progress := false
		var retry []string
		var retryStates []*nodeState
		for i, id := range todo {
			switch path, ok := res[id]; {
			case ok:
				states[i].done, states[i].allowed, states[i].path = true, true, path
				out[id] = path
				progress = true
			case e.cycleHits != hits:
				retry = append(retry, id)
				retryStates = append(retryStates, states[i])
			default:
				states[i].done = true
			}
		}
		if len(retry) == 0 {
			return out, nil
		}
		if !progress {
			for _, id := range retry {
				delete(e.memo, nodeKey{typ: typ, id: id, name: name})
			}
			return out, nil
		}
		todo, states = retry, retryStates
	}
}

func cycleErr(typ, id, name string) error {
	return fmt.Errorf("%w: data cycle through an exclusion at %s:%s#%s", ErrInvalid, typ, clip(id), name)
}

func prepend(first string, rest []string) []string {
	p := make([]string, 0, len(rest)+1)
	return append(append(p, first), rest...)
}

func without(ids []string, done map[string][]string) []string {
	if len(done) == 0 {
		return ids
	}
	var rem []string
	for _, id := range ids {
		if _, ok := done[id]; !ok {
			rem = append(rem, id)
		}
	}
	return rem
}

// evalRelation: direct tuples first (one exact-match query per chunk), then
// the subject sets the relation accepts, each set of subjects checked as one
// batch.
func (e *eval) evalRelation(ids []string, typ string, r *relationDef, depth int) (map[string][]string, error) {
	out := make(map[string][]string)
	if e.s.accepts(typ, r.name, e.subj.Type, e.subj.Relation) {
		sr := e.subj.Relation
		f := storage.TupleFilter{ObjectType: typ, Relation: r.name, SubjectType: e.subj.Type, SubjectID: e.subj.ID, SubjectRelation: &sr}
		err := e.readChunks(ids, f, func(t storage.RelationTuple) {
			if t.SubjectType != e.subj.Type || t.SubjectID != e.subj.ID || t.SubjectRelation != sr || t.Relation != r.name {
				return // a reader returning more than asked never allows
			}
			if _, ok := out[t.ObjectID]; !ok {
				out[t.ObjectID] = []string{FormatTuple(t)}
			}
		})
		if err != nil {
			return nil, err
		}
	}
	rem := without(ids, out)
	for _, st := range r.types {
		if st.rel == "" || len(rem) == 0 {
			continue
		}
		rel := st.rel
		f := storage.TupleFilter{ObjectType: typ, Relation: r.name, SubjectType: st.typ, SubjectRelation: &rel}
		if err := e.followSets(rem, f, st.typ, st.rel, depth, out); err != nil {
			return nil, err
		}
		rem = without(rem, out)
	}
	return out, nil
}

// followSets reads the tuples of f for ids, evaluates name on their
// subjects of type subjType in batches and marks the objects proved.
func (e *eval) followSets(ids []string, f storage.TupleFilter, subjType, name string, depth int, out map[string][]string) error {
	links := map[string][]storage.RelationTuple{}
	var subjIDs []string
	err := e.readChunks(ids, f, func(t storage.RelationTuple) {
		if t.SubjectType != subjType || t.Relation != f.Relation {
			return
		}
		if _, ok := links[t.SubjectID]; !ok {
			subjIDs = append(subjIDs, t.SubjectID)
		}
		links[t.SubjectID] = append(links[t.SubjectID], t)
	})
	if err != nil {
		return err
	}
	pending := len(without(ids, out))
	for start := 0; start < len(subjIDs) && pending > 0; start += readPage {
		chunk := subjIDs[start:min(start+readPage, len(subjIDs))]
		sub, err := e.evalSet(chunk, subjType, name, depth+1)
		if err != nil {
			return err
		}
		for _, sid := range chunk {
			p, ok := sub[sid]
			if !ok {
				continue
			}
			for _, t := range links[sid] {
				if _, done := out[t.ObjectID]; !done {
					out[t.ObjectID] = prepend(FormatTuple(t), p)
					pending--
				}
			}
		}
	}
	return nil
}

func (e *eval) evalArrow(ids []string, typ string, x *expr, depth int) (map[string][]string, error) {
	out := make(map[string][]string)
	r := e.s.defs[typ].rels[x.name]
	if r == nil {
		return out, nil
	}
	seen := map[string]bool{}
	for _, st := range r.types {
		if seen[st.typ] || !e.s.HasPermission(st.typ, x.target) {
			continue
		}
		seen[st.typ] = true
		rem := without(ids, out)
		if len(rem) == 0 {
			break
		}
		f := storage.TupleFilter{ObjectType: typ, Relation: x.name, SubjectType: st.typ}
		if err := e.followSets(rem, f, st.typ, x.target, depth, out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (e *eval) evalExpr(ids []string, typ string, x *expr, depth int) (map[string][]string, error) {
	switch x.kind {
	case exprRef:
		return e.evalSet(ids, typ, x.name, depth+1)
	case exprArrow:
		return e.evalArrow(ids, typ, x, depth)
	case exprUnion:
		out := make(map[string][]string)
		rem := ids
		for _, c := range x.children {
			r, err := e.evalExpr(rem, typ, c, depth)
			if err != nil {
				return nil, err
			}
			for id, p := range r {
				out[id] = p
			}
			if rem = without(rem, r); len(rem) == 0 {
				break
			}
		}
		return out, nil
	case exprIntersect:
		cur := ids
		paths := make(map[string][]string, len(ids))
		for _, c := range x.children {
			r, err := e.evalExpr(cur, typ, c, depth)
			if err != nil {
				return nil, err
			}
			var next []string
			for _, id := range cur {
				if p, ok := r[id]; ok {
					paths[id] = append(paths[id], p...)
					next = append(next, id)
				}
			}
			if cur = next; len(cur) == 0 {
				break
			}
		}
		out := make(map[string][]string, len(cur))
		for _, id := range cur {
			out[id] = paths[id]
			if out[id] == nil {
				out[id] = []string{}
			}
		}
		return out, nil
	case exprExclude:
		base, err := e.evalExpr(ids, typ, x.children[0], depth)
		if err != nil || len(base) == 0 {
			return base, err
		}
		var cand []string
		for _, id := range ids {
			if _, ok := base[id]; ok {
				cand = append(cand, id)
			}
		}
		e.neg++
		sub, err := e.evalExpr(cand, typ, x.children[1], depth)
		e.neg--
		if err != nil {
			return nil, err
		}
		for id := range sub {
			delete(base, id)
		}
		return base, nil
	}
	return nil, fmt.Errorf("rebac: internal error: expression kind %d", x.kind)
}
