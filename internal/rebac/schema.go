package rebac

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"

	"github.com/gatehouse/gatehouse/internal/storage"
)

// Schema is a parsed and validated relationship schema. It is immutable and
// safe for concurrent use.
type Schema struct {
	name  string
	hash  string
	defs  map[string]*definition
	types []string
}

// SchemaError lists every error found in a schema, each formatted
// "name:line:col: message", in source order. errors.Is(err, ErrInvalid)
// holds.
type SchemaError struct {
	Errors []string
}

func (e *SchemaError) Error() string { return strings.Join(e.Errors, "\n") }

// Is makes errors.Is(err, ErrInvalid) true.
func (e *SchemaError) Is(target error) bool { return target == ErrInvalid }

// ParseSchema parses and validates a schema; name is used in error
// positions. Every error is reported, not only the first.
func ParseSchema(name string, src []byte) (*Schema, error) {
	if len(src) > maxSchemaBytes {
		return nil, &SchemaError{Errors: []string{fmt.Sprintf("%s:1:1: schema is too large (%d bytes, max %d)", name, len(src), maxSchemaBytes)}}
	}
	p := &parser{file: name, lx: lexer{src: src}}
	p.parse()
	defs := map[string]*definition{}
	for _, d := range p.defs {
		if _, dup := defs[d.name]; dup {
			p.errorf(d.pos, "duplicate definition %q", d.name)
			continue
		}
		defs[d.name] = d
	}
	for _, d := range p.defs {
		if defs[d.name] != d {
			continue
		}
		p.validateDefinition(defs, d)
	}
	if len(p.errs) > 0 {
		slices.SortStableFunc(p.errs, func(a, b posError) int {
			if a.pos.line != b.pos.line {
				return a.pos.line - b.pos.line
			}
			return a.pos.col - b.pos.col
		})
		se := &SchemaError{}
		if len(p.errs) > maxErrorsPerFile {
			more := p.errs[maxErrorsPerFile]
			p.errs = append(p.errs[:maxErrorsPerFile], posError{pos: more.pos, msg: fmt.Sprintf("too many errors (only the first %d are shown)", maxErrorsPerFile)})
		}
		for _, e := range p.errs {
			se.Errors = append(se.Errors, fmt.Sprintf("%s:%d:%d: %s", name, e.pos.line, e.pos.col, e.msg))
		}
		return nil, se
	}
	sum := sha256.Sum256(src)
	s := &Schema{name: name, hash: hex.EncodeToString(sum[:]), defs: defs}
	for t := range defs {
		s.types = append(s.types, t)
	}
	slices.Sort(s.types)
	return s, nil
}

func hasName(defs map[string]*definition, typ, name string) bool {
	d := defs[typ]
	if d == nil {
		return false
	}
	_, r := d.rels[name]
	_, q := d.perms[name]
	return r || q
}

func (p *parser) validateDefinition(defs map[string]*definition, d *definition) {
	for _, n := range d.order {
		if r, ok := d.rels[n]; ok && r.name == n {
			seen := map[subjectType]bool{}
			for _, st := range r.types {
				k := subjectType{typ: st.typ, rel: st.rel}
				switch {
				case defs[st.typ] == nil:
					p.errorf(st.pos, "unknown type %q in relation %q", st.typ, r.name)
				case st.rel != "" && !hasName(defs, st.typ, st.rel):
					p.errorf(st.pos, "unknown relation or permission %q on type %q", st.rel, st.typ)
				case seen[k]:
					p.errorf(st.pos, "duplicate subject type %q in relation %q", (Subject{Type: st.typ, Relation: st.rel}).typeString(), r.name)
				}
				seen[k] = true
			}
		}
	}
	for _, n := range d.order {
		if pd, ok := d.perms[n]; ok && pd.expr != nil {
			p.validateExpr(defs, d, pd.expr)
		}
	}
	p.checkPermissionCycles(d)
}

func (p *parser) validateExpr(defs map[string]*definition, d *definition, e *expr) {
	switch e.kind {
	case exprRef:
		if !hasName(defs, d.name, e.name) {
			p.errorf(e.pos, "unknown relation or permission %q in definition %q", e.name, d.name)
		}
	case exprArrow:
		r, ok := d.rels[e.name]
		if !ok {
			if _, isPerm := d.perms[e.name]; isPerm {
				p.errorf(e.pos, "arrow %q: %q is a permission; the left side of -> must be a relation", e.name+"->"+e.target, e.name)
			} else {
				p.errorf(e.pos, "arrow %q: unknown relation %q in definition %q", e.name+"->"+e.target, e.name, d.name)
			}
			return
		}
		found := false
		for _, st := range r.types {
			if hasName(defs, st.typ, e.target) {
				found = true
			}
		}
		if !found {
			p.errorf(e.pos, "arrow %q: no subject type of relation %q has a relation or permission %q", e.name+"->"+e.target, e.name, e.target)
		}
	default:
		for _, c := range e.children {
			p.validateExpr(defs, d, c)
		}
	}
}

// refs appends the names e refers to directly (not through arrows).
func refs(e *expr, out []string) []string {
	if e == nil {
		return out
	}
	switch e.kind {
	case exprRef:
		return append(out, e.name)
	case exprArrow:
		return out
	}
	for _, c := range e.children {
		out = refs(c, out)
	}
	return out
}

// checkPermissionCycles reports permissions that refer to each other
// directly (without going through data) in a cycle: they can never be
// evaluated. One error per cycle, at its first declared permission.
func (p *parser) checkPermissionCycles(d *definition) {
	edges := map[string][]string{}
	for name, pd := range d.perms {
		for _, r := range refs(pd.expr, nil) {
			if _, ok := d.perms[r]; ok && !slices.Contains(edges[name], r) {
				edges[name] = append(edges[name], r)
			}
		}
	}
	reported := map[string]bool{}
	for _, start := range d.order {
		pd, ok := d.perms[start]
		if !ok || pd.name != start || reported[start] {
			continue
		}
		cycle := findCycle(edges, start)
		if cycle == nil {
			continue
		}
		for _, n := range cycle {
			reported[n] = true
		}
		p.errorf(pd.pos, "permission %q is cyclic without data: %s", start, strings.Join(cycle, " -> "))
	}
}

// findCycle returns the shortest path start -> ... -> start, or nil.
func findCycle(edges map[string][]string, start string) []string {
	prev := map[string]string{}
	queue := []string{start}
	seen := map[string]bool{}
	for len(queue) > 0 {
		n := queue[0]
		queue = queue[1:]
		for _, m := range edges[n] {
			if m == start {
				path := []string{start}
				for c := n; c != start; c = prev[c] {
					path = append(path, c)
				}
				path = append(path, start)
				slices.Reverse(path[1 : len(path)-1])
				return path
			}
			if !seen[m] {
				seen[m] = true
				prev[m] = n
				queue = append(queue, m)
			}
		}
	}
	return nil
}

func (s Subject) typeString() string {
	if s.Relation == "" {
		return s.Type
	}
	return s.Type + "#" + s.Relation
}

// Name returns the name the schema was parsed with.
func (s *Schema) Name() string { return s.name }

// Hash returns the hex SHA-256 of the schema source.
func (s *Schema) Hash() string { return s.hash }

// Types returns the defined object types, sorted.
func (s *Schema) Types() []string { return slices.Clone(s.types) }

// HasType reports whether typ is a defined object type (Types without the
// copy, for hot paths).
func (s *Schema) HasType(typ string) bool {
	if s == nil {
		return false
	}
	_, found := slices.BinarySearch(s.types, typ)
	return found
}

// HasPermission reports whether name is a relation or permission of
// objectType.
func (s *Schema) HasPermission(objectType, name string) bool {
	return s != nil && hasName(s.defs, objectType, name)
}

// accepts reports whether relation rel of typ accepts the subject type
// (subjType, subjRel).
func (s *Schema) accepts(typ, rel, subjType, subjRel string) bool {
	d := s.defs[typ]
	if d == nil {
		return false
	}
	r := d.rels[rel]
	if r == nil {
		return false
	}
	for _, st := range r.types {
		if st.typ == subjType && st.rel == subjRel {
			return true
		}
	}
	return false
}

// ValidateTuple checks a tuple to be written: syntax of every part, a known
// object type, a relation (not a permission) of it, and a subject type (and
// subject relation) that relation accepts. Errors wrap ErrInvalid or
// ErrUnknown.
func (s *Schema) ValidateTuple(t storage.RelationTuple) error {
	switch {
	case !validName(t.ObjectType) || !validName(t.Relation) || !validName(t.SubjectType):
		return invalidf("tuple %q: type and relation names must match [a-z][a-z0-9_]{0,63}", clip(FormatTuple(t)))
	case t.SubjectRelation != "" && !validName(t.SubjectRelation):
		return invalidf("tuple %q: bad subject relation", clip(FormatTuple(t)))
	case !validID(t.ObjectID) || !validID(t.SubjectID):
		return invalidf("tuple %q: ids must be 1-256 printable ASCII characters without whitespace, '#', '@' or ':'", clip(FormatTuple(t)))
	}
	if s == nil || s.defs[t.ObjectType] == nil {
		return fmt.Errorf("%w: object type %q", ErrUnknown, t.ObjectType)
	}
	d := s.defs[t.ObjectType]
	if _, ok := d.rels[t.Relation]; !ok {
		if _, isPerm := d.perms[t.Relation]; isPerm {
			return invalidf("%s is a permission, not a relation: tuples cannot be written to it", t.ObjectType+"#"+t.Relation)
		}
		return fmt.Errorf("%w: relation %s", ErrUnknown, t.ObjectType+"#"+t.Relation)
	}
	if !s.accepts(t.ObjectType, t.Relation, t.SubjectType, t.SubjectRelation) {
		st := Subject{Type: t.SubjectType, Relation: t.SubjectRelation}.typeString()
		return invalidf("relation %s does not accept subject type %s", t.ObjectType+"#"+t.Relation, st)
	}
	return nil
}
