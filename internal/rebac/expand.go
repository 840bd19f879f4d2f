package rebac

import (
	"context"
	"errors"

	"github.com/gatehouse/gatehouse/internal/storage"
)

// Tree explains a permission: the expression evaluated over the tuples.
type Tree struct {
	Op        string   `json:"op"`                 // "union", "intersection", "exclusion", "relation", "arrow", "leaf"
	Object    string   `json:"object"`             // "order:o-1"
	Relation  string   `json:"relation,omitempty"` // the relation or permission ("team->manager" for arrows)
	Subjects  []string `json:"subjects,omitempty"` // for leaves: direct subjects ("user:x", "team:eng#member")
	Children  []*Tree  `json:"children,omitempty"`
	Truncated bool     `json:"truncated,omitempty"` // a budget stopped expansion below this node
}

func opName(k exprKind) string {
	switch k {
	case exprIntersect:
		return "intersection"
	case exprExclude:
		return "exclusion"
	}
	return "union"
}

type expander struct {
	e     *eval
	nodes map[nodeKey]*Tree // every node entered (nil while being expanded); each is expanded once
}

// Expand returns the tree that explains permission on obj at revision at.
// Budgets do not fail the call: expansion stops and the node is marked
// Truncated. Storage errors fail it.
func (c *Checker) Expand(ctx context.Context, at storage.Revision, obj Object, permission string) (*Tree, error) {
	if at == 0 {
		return nil, invalidf("revision 0")
	}
	st := c.state.Load()
	if err := validateRequest(st.schema, obj, permission, nil); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, c.limits.Timeout)
	defer cancel()
	x := &expander{e: c.newEval(ctx, st.schema, at, Subject{}), nodes: map[nodeKey]*Tree{}}
	return x.node(obj.Type, obj.ID, permission, 1)
}

// stopped reports whether err is a budget error (expansion stops) rather
// than a failure.
func stopped(err error) bool { return errors.Is(err, ErrBudget) }

func (x *expander) node(typ, id, name string, depth int) (*Tree, error) {
	k := nodeKey{typ: typ, id: id, name: name}
	t := &Tree{Op: "relation", Object: typ + ":" + id, Relation: name}
	if _, ok := x.nodes[k]; ok {
		// A data cycle, or a node already expanded elsewhere in the tree:
		// it is shown once and referenced by a childless node afterwards.
		// Returning the earlier subtree would share it, and serializing a
		// chain of diamonds would then repeat it 2^depth times (AZ-04).
		return t, nil
	}
	if depth > x.e.limits.MaxDepth || x.e.tick() != nil || x.e.dispatch(1) != nil {
		t.Truncated = true
		return t, nil
	}
	d := x.e.s.defs[typ]
	x.nodes[k] = nil
	if r := d.rels[name]; r != nil {
		if err := x.relation(t, r, depth); err != nil {
			return nil, err
		}
	} else if p := d.perms[name]; p != nil && p.expr != nil {
		sub, err := x.expr(typ, id, p.expr, depth)
		if err != nil {
			return nil, err
		}
		switch {
		case sub.Op == "union" || sub.Op == "intersection" || sub.Op == "exclusion":
			t.Op, t.Children, t.Truncated = sub.Op, sub.Children, sub.Truncated
		default:
			t.Op, t.Children = "union", []*Tree{sub}
		}
	}
	x.nodes[k] = t
	return t, nil
}

// read reads every tuple of (typ, id, rel); a budget error marks t.
func (x *expander) read(t *Tree, f storage.TupleFilter) ([]storage.RelationTuple, bool, error) {
	var ts []storage.RelationTuple
	err := x.e.readAll(f, func(tu storage.RelationTuple) { ts = append(ts, tu) })
	if err != nil {
		if stopped(err) {
			t.Truncated = true
			return nil, false, nil
		}
		return nil, false, err
	}
	return ts, true, nil
}

func (x *expander) relation(t *Tree, r *relationDef, depth int) error {
	typ, id, _ := cutObject(t.Object)
	ts, ok, err := x.read(t, storage.TupleFilter{ObjectType: typ, ObjectIDs: []string{id}, Relation: r.name})
	if err != nil || !ok {
		return err
	}
	leaf := &Tree{Op: "leaf", Object: t.Object, Relation: r.name}
	t.Children = append(t.Children, leaf)
	for _, tu := range ts {
		s := Subject{Type: tu.SubjectType, ID: tu.SubjectID, Relation: tu.SubjectRelation}
		leaf.Subjects = append(leaf.Subjects, s.String())
		if s.Relation == "" || !x.e.s.HasPermission(s.Type, s.Relation) {
			continue
		}
		child, err := x.node(s.Type, s.ID, s.Relation, depth+1)
		if err != nil {
			return err
		}
		t.Children = append(t.Children, child)
	}
	return nil
}

func cutObject(s string) (typ, id string, ok bool) {
	o, err := ParseObject(s)
	return o.Type, o.ID, err == nil
}

func (x *expander) expr(typ, id string, e *expr, depth int) (*Tree, error) {
	switch e.kind {
	case exprRef:
		return x.node(typ, id, e.name, depth+1)
	case exprArrow:
		t := &Tree{Op: "arrow", Object: typ + ":" + id, Relation: e.name + "->" + e.target}
		ts, ok, err := x.read(t, storage.TupleFilter{ObjectType: typ, ObjectIDs: []string{id}, Relation: e.name})
		if err != nil || !ok {
			return t, err
		}
		seen := map[Object]bool{}
		for _, tu := range ts {
			o := Object{Type: tu.SubjectType, ID: tu.SubjectID}
			if seen[o] || !x.e.s.HasPermission(o.Type, e.target) {
				continue
			}
			seen[o] = true
			child, err := x.node(o.Type, o.ID, e.target, depth+1)
			if err != nil {
				return nil, err
			}
			t.Children = append(t.Children, child)
		}
		return t, nil
	default:
		t := &Tree{Op: opName(e.kind), Object: typ + ":" + id}
		for _, c := range e.children {
			child, err := x.expr(typ, id, c, depth)
			if err != nil {
				return nil, err
			}
			t.Children = append(t.Children, child)
		}
		return t, nil
	}
}
