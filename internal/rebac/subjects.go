package rebac

import (
	"context"
	"fmt"
	"sort"

	"github.com/gatehouse/gatehouse/internal/storage"
)

// ListSubjects returns the ids of direct subjects of subjectType that have
// permission on obj, sorted, at most limit (default 100, max 1000) after
// cursor (the last id of the previous page); next is "" when there are no
// more. The whole set is computed on every call (batched like Check: one
// query per step for every object of a type). A budget error fails the
// call: the list is never silently short.
func (c *Checker) ListSubjects(ctx context.Context, at storage.Revision, obj Object, permission, subjectType, cursor string, limit int) ([]string, string, error) {
	if at == 0 {
		return nil, "", invalidf("revision 0")
	}
	st := c.state.Load()
	if err := validateRequest(st.schema, obj, permission, nil); err != nil {
		return nil, "", err
	}
	if !validName(subjectType) {
		return nil, "", invalidf("subject type %q", clip(subjectType))
	}
	if st.schema.defs[subjectType] == nil {
		return nil, "", fmt.Errorf("%w: subject type %q", ErrUnknown, subjectType)
	}
	if cursor != "" && !validID(cursor) {
		return nil, "", invalidf("cursor")
	}
	limit = clampLimit(limit)
	ctx, cancel := context.WithTimeout(ctx, c.limits.Timeout)
	defer cancel()
	l := &subjectLister{e: c.newEval(ctx, st.schema, at, Subject{}), want: subjectType, memo: map[nodeKey]*setState{}}
	// Passes until no provisional set changes: the least fixpoint, so data
	// cycles and batch siblings are handled exactly. Every pass counts
	// against the dispatch and time budgets.
	var sets map[string]subjectSet
	for l.pass = 0; ; l.pass++ {
		l.changed = false
		var err error
		if sets, err = l.nodes(obj.Type, []string{obj.ID}, permission, 1); err != nil {
			return nil, "", err
		}
		if !l.changed {
			break
		}
	}
	set := sets[obj.ID]
	ids := make([]string, 0, len(set))
	for id := range set {
		if id > cursor {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	if len(ids) <= limit {
		return ids, "", nil
	}
	return ids[:limit], ids[limit-1], nil
}

// subjectSet is a set of subject ids. Sets returned by nodes are never
// modified; combining always builds a new set.
type subjectSet = map[string]struct{}

type subjectLister struct {
	e       *eval
	want    string
	memo    map[nodeKey]*setState
	pass    int
	changed bool // a provisional set changed in this pass
}

// setState is the memo entry of one node. A node whose computation met a
// node still being computed (a data cycle, or a sibling of a batch) holds a
// provisional set and is computed again in the next pass; the others are
// final.
type setState struct {
	set   subjectSet
	final bool
	busy  bool // being computed in the current pass
	pass  int  // the last pass that computed it
	neg   int  // exclusion nesting when the node was entered
}

// nodes computes the subject sets of relation or permission name for each
// of ids (distinct) of type typ, once per pass.
func (l *subjectLister) nodes(typ string, ids []string, name string, depth int) (map[string]subjectSet, error) {
	if depth > l.e.limits.MaxDepth {
		return nil, l.e.budget("depth", l.e.limits.MaxDepth)
	}
	if err := l.e.tick(); err != nil {
		return nil, err
	}
	out := make(map[string]subjectSet, len(ids))
	var todo []string
	var states []*setState
	for _, id := range ids {
		k := nodeKey{typ: typ, id: id, name: name}
		st := l.memo[k]
		if st != nil && (st.final || st.pass == l.pass) {
			if st.busy {
				if l.e.neg > st.neg {
					return nil, cycleErr(typ, id, name)
				}
				l.e.cycle = true
			}
			if !st.final {
				l.e.cycleHits++ // a provisional set makes this one provisional too
			}
			out[id] = st.set
			continue
		}
		if st == nil {
			st = &setState{set: subjectSet{}}
			l.memo[k] = st
		}
		st.busy, st.pass, st.neg = true, l.pass, l.e.neg
		todo = append(todo, id)
		states = append(states, st)
	}
	d := l.e.s.defs[typ]
	if len(todo) == 0 || d == nil {
		return out, nil
	}
	if err := l.e.dispatch(len(todo)); err != nil {
		return nil, err
	}
	hits := l.e.cycleHits
	var res map[string]subjectSet
	var err error
	if d.rels[name] != nil {
		res, err = l.relation(typ, todo, name, depth)
	} else if p := d.perms[name]; p != nil && p.expr != nil {
		res, err = l.expr(typ, todo, p.expr, depth)
	}
	if err != nil {
		return nil, err
	}
	tainted := l.e.cycleHits != hits
	for i, id := range todo {
		set := res[id]
		if set == nil {
			set = subjectSet{}
		}
		if tainted && !sameSet(set, states[i].set) {
			l.changed = true
		}
		states[i].set, states[i].busy, states[i].final = set, false, !tainted
		out[id] = set
	}
	return out, nil
}

func sameSet(a, b subjectSet) bool {
	if len(a) != len(b) {
		return false
	}
	for x := range a {
		if _, ok := b[x]; !ok {
			return false
		}
	}
	return true
}

// links maps the subjects of one type (and relation) to the objects that
// point at them, in reading order.
type links struct {
	order []string
	objs  map[string][]string
}

func (ls *links) add(subj, obj string) {
	if ls.objs == nil {
		ls.objs = map[string][]string{}
	}
	if _, ok := ls.objs[subj]; !ok {
		ls.order = append(ls.order, subj)
	}
	ls.objs[subj] = append(ls.objs[subj], obj)
}

func addTo(res map[string]subjectSet, obj string, ids subjectSet) {
	if len(ids) == 0 {
		return
	}
	s := res[obj]
	if s == nil {
		s = subjectSet{}
		res[obj] = s
	}
	for id := range ids {
		s[id] = struct{}{}
	}
}

// follow computes name on the linked subjects and adds their sets to the
// objects linking to them.
func (l *subjectLister) follow(res map[string]subjectSet, typ, name string, ls *links, depth int) error {
	if len(ls.order) == 0 {
		return nil
	}
	sub, err := l.nodes(typ, ls.order, name, depth+1)
	if err != nil {
		return err
	}
	for _, sid := range ls.order {
		for _, obj := range ls.objs[sid] {
			addTo(res, obj, sub[sid])
		}
	}
	return nil
}

func (l *subjectLister) relation(typ string, ids []string, name string, depth int) (map[string]subjectSet, error) {
	res := map[string]subjectSet{}
	groups := map[Subject]*links{} // Subject{Type, Relation} of the subject sets
	var order []Subject
	err := l.e.readChunks(ids, storage.TupleFilter{ObjectType: typ, Relation: name}, func(t storage.RelationTuple) {
		switch {
		case t.SubjectRelation == "" && t.SubjectType == l.want:
			s := res[t.ObjectID]
			if s == nil {
				s = subjectSet{}
				res[t.ObjectID] = s
			}
			s[t.SubjectID] = struct{}{}
		case t.SubjectRelation != "" && l.e.s.HasPermission(t.SubjectType, t.SubjectRelation):
			g := Subject{Type: t.SubjectType, Relation: t.SubjectRelation}
			if groups[g] == nil {
				groups[g] = &links{}
				order = append(order, g)
			}
			groups[g].add(t.SubjectID, t.ObjectID)
		}
	})
	if err != nil {
		return nil, err
	}
	for _, g := range order {
		if err := l.follow(res, g.Type, g.Relation, groups[g], depth); err != nil {
			return nil, err
		}
	}
	return res, nil
}

func (l *subjectLister) expr(typ string, ids []string, e *expr, depth int) (map[string]subjectSet, error) {
	switch e.kind {
	case exprRef:
		return l.nodes(typ, ids, e.name, depth+1)
	case exprArrow:
		res := map[string]subjectSet{}
		groups := map[string]*links{}
		var order []string
		err := l.e.readChunks(ids, storage.TupleFilter{ObjectType: typ, Relation: e.name}, func(t storage.RelationTuple) {
			if !l.e.s.HasPermission(t.SubjectType, e.target) {
				return
			}
			if groups[t.SubjectType] == nil {
				groups[t.SubjectType] = &links{}
				order = append(order, t.SubjectType)
			}
			ls := groups[t.SubjectType]
			if !containsLast(ls, t.SubjectID, t.ObjectID) {
				ls.add(t.SubjectID, t.ObjectID)
			}
		})
		if err != nil {
			return nil, err
		}
		for _, u := range order {
			if err := l.follow(res, u, e.target, groups[u], depth); err != nil {
				return nil, err
			}
		}
		return res, nil
	}
	parts := make([]map[string]subjectSet, len(e.children))
	for i, c := range e.children {
		sub := e.kind == exprExclude && i == 1
		if sub {
			l.e.neg++
		}
		p, err := l.expr(typ, ids, c, depth)
		if sub {
			l.e.neg--
		}
		if err != nil {
			return nil, err
		}
		parts[i] = p
	}
	res := make(map[string]subjectSet, len(ids))
	for _, id := range ids {
		s := subjectSet{}
		switch e.kind {
		case exprUnion:
			for _, p := range parts {
				for x := range p[id] {
					s[x] = struct{}{}
				}
			}
		case exprIntersect:
		next:
			for x := range parts[0][id] {
				for _, p := range parts[1:] {
					if _, ok := p[id][x]; !ok {
						continue next
					}
				}
				s[x] = struct{}{}
			}
		case exprExclude:
			for x := range parts[0][id] { // parts[1] was computed with l.e.neg raised
				if _, ok := parts[1][id][x]; !ok {
					s[x] = struct{}{}
				}
			}
		}
		res[id] = s
	}
	return res, nil
}

// containsLast reports whether obj was just linked to subj (tuples of one
// object arrive together; the same subject object may appear with several
// subject relations).
func containsLast(ls *links, subj, obj string) bool {
	objs := ls.objs[subj]
	return len(objs) > 0 && objs[len(objs)-1] == obj
}
