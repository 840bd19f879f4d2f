package rebac

import (
	"fmt"
	"strings"

	"github.com/gatehouse/gatehouse/internal/storage"
)

// Object is a typed object reference, "type:id".
type Object struct{ Type, ID string }

// Subject is a direct subject ("user:usr_alice", Relation empty) or a
// subject set ("team:eng#member").
type Subject struct{ Type, ID, Relation string }

// String formats o as "type:id".
func (o Object) String() string { return o.Type + ":" + o.ID }

// String formats s as "type:id" or "type:id#relation".
func (s Subject) String() string {
	if s.Relation == "" {
		return s.Type + ":" + s.ID
	}
	return s.Type + ":" + s.ID + "#" + s.Relation
}

const (
	maxNameLen = 64
	maxIDLen   = 256
)

// validName reports whether n matches [a-z][a-z0-9_]{0,63}.
func validName(n string) bool {
	if len(n) == 0 || len(n) > maxNameLen || n[0] < 'a' || n[0] > 'z' {
		return false
	}
	for i := 1; i < len(n); i++ {
		c := n[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// validID reports whether id is 1–256 bytes of printable ASCII without
// whitespace, '#', '@' or ':'.
func validID(id string) bool {
	if len(id) == 0 || len(id) > maxIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if c <= ' ' || c > '~' || c == '#' || c == '@' || c == ':' {
			return false
		}
	}
	return true
}

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, args...)...)
}

// ParseObject parses "type:id".
func ParseObject(s string) (Object, error) {
	typ, id, ok := strings.Cut(s, ":")
	if !ok || !validName(typ) || !validID(id) {
		return Object{}, invalidf("object %q: want type:id", clip(s))
	}
	return Object{Type: typ, ID: id}, nil
}

// ParseSubject parses "type:id" or "type:id#relation".
func ParseSubject(s string) (Subject, error) {
	typ, rest, ok := strings.Cut(s, ":")
	if !ok || !validName(typ) {
		return Subject{}, invalidf("subject %q: want type:id or type:id#relation", clip(s))
	}
	id, rel, hasRel := strings.Cut(rest, "#")
	if !validID(id) || hasRel && !validName(rel) {
		return Subject{}, invalidf("subject %q: want type:id or type:id#relation", clip(s))
	}
	return Subject{Type: typ, ID: id, Relation: rel}, nil
}

// ParseTuple parses "type:id#relation@subject" strictly (no surrounding
// space, every part valid). It checks syntax only; Schema.ValidateTuple
// checks the tuple against a schema.
func ParseTuple(s string) (storage.RelationTuple, error) {
	objRel, subj, ok := strings.Cut(s, "@")
	if !ok {
		return storage.RelationTuple{}, invalidf("tuple %q: want type:id#relation@subject", clip(s))
	}
	objStr, rel, ok := strings.Cut(objRel, "#")
	if !ok || !validName(rel) {
		return storage.RelationTuple{}, invalidf("tuple %q: want type:id#relation@subject", clip(s))
	}
	o, err := ParseObject(objStr)
	if err != nil {
		return storage.RelationTuple{}, invalidf("tuple %q: bad object", clip(s))
	}
	sb, err := ParseSubject(subj)
	if err != nil {
		return storage.RelationTuple{}, invalidf("tuple %q: bad subject", clip(s))
	}
	return storage.RelationTuple{
		ObjectType: o.Type, ObjectID: o.ID, Relation: rel,
		SubjectType: sb.Type, SubjectID: sb.ID, SubjectRelation: sb.Relation,
	}, nil
}

// FormatTuple formats t as "type:id#relation@type:id[#relation]".
func FormatTuple(t storage.RelationTuple) string {
	var b strings.Builder
	b.Grow(len(t.ObjectType) + len(t.ObjectID) + len(t.Relation) + len(t.SubjectType) +
		len(t.SubjectID) + len(t.SubjectRelation) + 5)
	b.WriteString(t.ObjectType)
	b.WriteByte(':')
	b.WriteString(t.ObjectID)
	b.WriteByte('#')
	b.WriteString(t.Relation)
	b.WriteByte('@')
	b.WriteString(t.SubjectType)
	b.WriteByte(':')
	b.WriteString(t.SubjectID)
	if t.SubjectRelation != "" {
		b.WriteByte('#')
		b.WriteString(t.SubjectRelation)
	}
	return b.String()
}

// clip shortens attacker-controlled input quoted in error messages.
func clip(s string) string {
	const max = 80
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}
