package policy

import (
	"iter"
	"slices"
	"sync"

	"github.com/cedar-policy/cedar-go"
	"github.com/cedar-policy/cedar-go/types"
	xast "github.com/cedar-policy/cedar-go/x/exp/ast"
	"github.com/cedar-policy/cedar-go/x/exp/schema/resolved"
)

const relationsAttr = "relations"

// Set is a loaded, validated and indexed policy set. It is immutable and safe
// for concurrent use.
type Set struct {
	recPool  sync.Pool // *types.RecordMap scratch maps (types.NewRecord copies)
	version  string
	policies []*indexed // every policy, in file and position order
	actions  map[string]*actionInfo
	entities map[types.EntityType]*entityInfo
}

// indexed is a policy with its scope classification. A nil set means the
// dimension is open.
type indexed struct {
	id      cedar.PolicyID
	p       *cedar.Policy
	actions map[types.EntityUID]bool
	types   map[types.EntityType]bool
}

func (x *indexed) applies(a types.EntityUID, t types.EntityType) bool {
	return (x.actions == nil || x.actions[a]) && (x.types == nil || x.types[t])
}

// bucket is the list of policies that can apply to one (action, resource
// type); it is the PolicyIterator handed to cedar.Authorize.
type bucket struct {
	ids  []cedar.PolicyID
	pols []*cedar.Policy
	seq  iter.Seq2[cedar.PolicyID, *cedar.Policy] // b.each, bound once
}

// All yields the bucket's policies in load order.
func (b *bucket) All() iter.Seq2[cedar.PolicyID, *cedar.Policy] {
	if b.seq != nil {
		return b.seq
	}
	return b.each
}

func (b *bucket) each(yield func(cedar.PolicyID, *cedar.Policy) bool) {
	for i, p := range b.pols {
		if !yield(b.ids[i], p) {
			return
		}
	}
}

func (b *bucket) add(x *indexed) {
	b.ids = append(b.ids, x.id)
	b.pols = append(b.pols, x.p)
}

// actionInfo is everything Authorize needs about one action, precomputed.
type actionInfo struct {
	uid        types.EntityUID
	name       string                           // as written in requests
	entities   map[types.EntityUID]types.Entity // the action and its ancestor groups
	principals map[types.EntityType]bool        // appliesTo principals
	buckets    map[types.EntityType]*bucket     // appliesTo resources → policies
	context    resolved.RecordType              // declared context
	relations  []string                         // sorted Bool attributes of context.relations
	relType    resolved.RecordType              // context.relations type, nil if none
	// relRecs[mask] is the relations record whose i-th relation is
	// mask&(1<<i), and onlyRel[mask] the context holding just it (nil when
	// the context has other required members); precomputed for up to
	// maxPrecomputedRelations relations so the common request allocates
	// nothing for its context.
	relRecs []types.Record
	onlyRel []types.Record
}

const maxPrecomputedRelations = 6

func (ai *actionInfo) precomputeRelations() {
	n := len(ai.relations)
	if n > maxPrecomputedRelations {
		return
	}
	onlyRel := true
	for k, a := range ai.context {
		if k != relationsAttr && !a.Optional {
			onlyRel = false
		}
	}
	ai.relRecs = make([]types.Record, 1<<n)
	if onlyRel {
		ai.onlyRel = make([]types.Record, 1<<n)
	}
	for mask := range 1 << n {
		rm := make(types.RecordMap, n)
		for i, name := range ai.relations {
			rm[types.String(name)] = types.Boolean(mask&(1<<i) != 0)
		}
		ai.relRecs[mask] = types.NewRecord(rm)
		if onlyRel {
			ai.onlyRel[mask] = types.NewRecord(types.RecordMap{relationsAttr: ai.relRecs[mask]})
		}
	}
}

// entityInfo is the declared shape of an entity type.
type entityInfo struct {
	shape   resolved.RecordType
	parents map[types.EntityType]bool
	enum    map[types.String]bool // non-nil for enumerated types
}

func newSet(rs *resolved.Schema, loaded []loadedPolicy, ver string) *Set {
	s := &Set{
		version:  ver,
		actions:  map[string]*actionInfo{},
		entities: map[types.EntityType]*entityInfo{},
	}
	for name, e := range rs.Entities {
		ei := &entityInfo{shape: e.Shape, parents: map[types.EntityType]bool{}}
		for _, p := range e.ParentTypes {
			ei.parents[p] = true
		}
		s.entities[name] = ei
	}
	for name, e := range rs.Enums {
		ei := &entityInfo{enum: map[types.String]bool{}}
		for _, v := range e.Values {
			ei.enum[v.ID] = true
		}
		s.entities[name] = ei
	}

	ancestors := actionAncestors(rs)
	// descendants[g] = actions that are g or are in g (transitively).
	descendants := map[types.EntityUID][]types.EntityUID{}
	for uid, anc := range ancestors {
		descendants[uid] = append(descendants[uid], uid)
		for _, g := range anc {
			descendants[g] = append(descendants[g], uid)
		}
	}
	below := typesBelow(rs)

	for _, lp := range loaded {
		x := &indexed{id: lp.id, p: lp.p}
		ast := (*xast.Policy)(lp.p.AST())
		x.actions = actionScope(ast.Action, descendants)
		x.types = resourceScope(ast.Resource, below)
		s.policies = append(s.policies, x)
	}

	for uid, a := range rs.Actions {
		ai := &actionInfo{uid: uid, name: string(uid.ID), entities: map[types.EntityUID]types.Entity{}}
		if uid.Type != "Action" {
			ai.name = uid.String()
		}
		for _, u := range append([]types.EntityUID{uid}, ancestors[uid]...) {
			ai.entities[u] = types.Entity{UID: u, Parents: types.NewEntityUIDSet(ancestors[u]...)}
		}
		if a.AppliesTo != nil {
			ai.principals = map[types.EntityType]bool{}
			for _, p := range a.AppliesTo.Principals {
				ai.principals[p] = true
			}
			ai.buckets = map[types.EntityType]*bucket{}
			for _, r := range a.AppliesTo.Resources {
				ai.buckets[r] = &bucket{}
			}
			ai.context = a.AppliesTo.Context
			if attr, ok := ai.context[relationsAttr]; ok {
				ai.relType = attr.Type.(resolved.RecordType) // checked at load
				for k := range ai.relType {
					ai.relations = append(ai.relations, string(k))
				}
				slices.Sort(ai.relations)
				ai.precomputeRelations()
			}
		}
		s.actions[ai.name] = ai
	}
	// Place each policy in every bucket it can apply to; open dimensions
	// reach every bucket of that dimension.
	for _, x := range s.policies {
		for _, ai := range s.actions {
			if x.actions != nil && !x.actions[ai.uid] {
				continue
			}
			for t, b := range ai.buckets {
				if x.types == nil || x.types[t] {
					b.add(x)
				}
			}
		}
	}
	for _, ai := range s.actions {
		for _, b := range ai.buckets {
			b.seq = b.each
		}
	}
	return s
}

// candidates returns the policies that can apply to (action, resource type):
// the precomputed bucket, or for a pair the schema does not declare, the
// policies whose scope leaves it open (computed on the fly).
func (s *Set) candidates(a types.EntityUID, t types.EntityType) *bucket {
	if ai, ok := s.actions[actionKey(a)]; ok && ai.uid == a {
		if b, ok := ai.buckets[t]; ok {
			return b
		}
	}
	b := &bucket{}
	for _, x := range s.policies {
		if x.applies(a, t) {
			b.add(x)
		}
	}
	return b
}

func actionKey(a types.EntityUID) string {
	if a.Type == "Action" {
		return string(a.ID)
	}
	return a.String()
}

// actionAncestors returns the transitive parents of every action (the schema
// resolver rejects cycles and undefined parents).
func actionAncestors(rs *resolved.Schema) map[types.EntityUID][]types.EntityUID {
	out := map[types.EntityUID][]types.EntityUID{}
	var walk func(types.EntityUID, map[types.EntityUID]bool)
	walk = func(u types.EntityUID, seen map[types.EntityUID]bool) {
		for p := range rs.Actions[u].Entity.Parents.All() {
			if !seen[p] {
				seen[p] = true
				walk(p, seen)
			}
		}
	}
	for uid := range rs.Actions {
		seen := map[types.EntityUID]bool{}
		walk(uid, seen)
		anc := make([]types.EntityUID, 0, len(seen))
		for p := range seen {
			anc = append(anc, p)
		}
		slices.SortFunc(anc, func(a, b types.EntityUID) int { return compareUID(a, b) })
		out[uid] = anc
	}
	return out
}

func compareUID(a, b types.EntityUID) int {
	if a.Type != b.Type {
		if a.Type < b.Type {
			return -1
		}
		return 1
	}
	switch {
	case a.ID < b.ID:
		return -1
	case a.ID > b.ID:
		return 1
	}
	return 0
}

// typesBelow maps each entity type E to the types whose entities can be in
// an entity of type E: E itself and every type with E among its transitive
// parent types.
func typesBelow(rs *resolved.Schema) map[types.EntityType]map[types.EntityType]bool {
	out := map[types.EntityType]map[types.EntityType]bool{}
	for t := range rs.Enums {
		out[t] = map[types.EntityType]bool{t: true}
	}
	for t := range rs.Entities {
		if out[t] == nil {
			out[t] = map[types.EntityType]bool{}
		}
		out[t][t] = true
		seen := map[types.EntityType]bool{}
		stack := slices.Clone(rs.Entities[t].ParentTypes)
		for len(stack) > 0 {
			p := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if seen[p] {
				continue
			}
			seen[p] = true
			if out[p] == nil {
				out[p] = map[types.EntityType]bool{}
			}
			out[p][t] = true
			stack = append(stack, rs.Entities[p].ParentTypes...)
		}
	}
	return out
}

func actionScope(sc xast.IsActionScopeNode, descendants map[types.EntityUID][]types.EntityUID) map[types.EntityUID]bool {
	switch sc := sc.(type) {
	case xast.ScopeTypeEq:
		return map[types.EntityUID]bool{sc.Entity: true}
	case xast.ScopeTypeIn:
		return inActions([]types.EntityUID{sc.Entity}, descendants)
	case xast.ScopeTypeInSet:
		return inActions(sc.Entities, descendants)
	default: // ScopeTypeAll, or anything new: open
		return nil
	}
}

func inActions(groups []types.EntityUID, descendants map[types.EntityUID][]types.EntityUID) map[types.EntityUID]bool {
	m := map[types.EntityUID]bool{}
	for _, g := range groups {
		m[g] = true
		for _, d := range descendants[g] {
			m[d] = true
		}
	}
	return m
}

func resourceScope(sc xast.IsResourceScopeNode, below map[types.EntityType]map[types.EntityType]bool) map[types.EntityType]bool {
	switch sc := sc.(type) {
	case xast.ScopeTypeEq:
		return map[types.EntityType]bool{sc.Entity.Type: true}
	case xast.ScopeTypeIs:
		return map[types.EntityType]bool{sc.Type: true}
	case xast.ScopeTypeIsIn:
		return map[types.EntityType]bool{sc.Type: true}
	case xast.ScopeTypeIn:
		if b, ok := below[sc.Entity.Type]; ok {
			return b
		}
		return nil
	default:
		return nil
	}
}
