package rebac

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/storage"
)

func TestParseSchemaValid(t *testing.T) {
	tests := []struct {
		name  string
		src   string
		types []string
	}{
		{"doc example", docSchema, []string{"order", "team", "user"}},
		{"empty", "", nil},
		{"comments", "// a comment\ndefinition user {} /* block\ncomment */ definition doc { relation r: user // trailing\n}", []string{"doc", "user"}},
		{"parentheses and precedence", `definition user {}
definition doc {
  relation a: user
  relation b: user
  relation c: user
  permission p = (a + b) & c - a
  permission q = ((a))
  permission r = a - b - c
}`, []string{"doc", "user"}},
		{"recursion through data is fine", `definition user {}
definition folder {
  relation parent: folder
  relation viewer: user | folder#view
  permission view = viewer + parent->view
}`, []string{"folder", "user"}},
		{"subject set on a permission", `definition user {}
definition team { relation member: user
  permission everyone = member }
definition doc { relation viewer: team#everyone }`, []string{"doc", "team", "user"}},
		{"names", "definition a_1 { relation r0_x: a_1 }", []string{"a_1"}},
		{"max name length", "definition " + "a" + strings.Repeat("b", 63) + " {}", []string{"a" + strings.Repeat("b", 63)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := ParseSchema("s.zed", []byte(tt.src))
			if err != nil {
				t.Fatalf("ParseSchema: %v", err)
			}
			if got := s.Types(); !slices.Equal(got, tt.types) {
				t.Errorf("Types = %v, want %v", got, tt.types)
			}
			sum := sha256.Sum256([]byte(tt.src))
			if s.Hash() != hex.EncodeToString(sum[:]) {
				t.Errorf("Hash = %s", s.Hash())
			}
		})
	}
}

func TestParseSchemaErrors(t *testing.T) {
	const u = "definition user {}\n"
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{"unknown subject type", u + "definition doc { relation r: usr }",
			[]string{`s:2:30: unknown type "usr" in relation "r"`}},
		{"unknown subject relation", u + "definition team { relation member: user }\ndefinition doc { relation r: team#membr }",
			[]string{`s:3:30: unknown relation or permission "membr" on type "team"`}},
		{"unknown reference", u + "definition doc {\n relation r: user\n permission p = r + s\n}",
			[]string{`s:4:21: unknown relation or permission "s" in definition "doc"`}},
		{"duplicate definition", u + "definition user {}",
			[]string{`s:2:1: duplicate definition "user"`}},
		{"duplicate relation", u + "definition doc {\n relation r: user\n relation r: user\n}",
			[]string{`s:4:11: duplicate relation "r" in definition "doc"`}},
		{"duplicate permission", u + "definition doc {\n relation r: user\n permission p = r\n permission p = r\n}",
			[]string{`s:5:13: duplicate permission "p" in definition "doc"`}},
		{"permission clashes with relation", u + "definition doc {\n relation r: user\n permission r = r\n}",
			[]string{`s:4:13: permission "r" clashes with relation "r" in definition "doc"`}},
		{"relation clashes with permission", u + "definition doc {\n relation q: user\n permission r = q\n relation r: user\n}",
			[]string{`s:5:11: relation "r" clashes with permission "r" in definition "doc"`}},
		{"arrow from a permission", u + "definition doc {\n relation r: doc\n permission p = r\n permission q = p->p\n}",
			[]string{`s:5:17: arrow "p->p": "p" is a permission; the left side of -> must be a relation`}},
		{"arrow from unknown relation", u + "definition doc {\n permission q = x->y\n}",
			[]string{`s:3:17: arrow "x->y": unknown relation "x" in definition "doc"`}},
		{"arrow target unknown", u + "definition doc {\n relation r: user\n permission q = r->view\n}",
			[]string{`s:4:17: arrow "r->view": no subject type of relation "r" has a relation or permission "view"`}},
		{"permission cycle", u + "definition doc {\n permission a = b\n permission b = a\n}",
			[]string{`s:3:13: permission "a" is cyclic without data: a -> b -> a`}},
		{"self cycle", u + "definition doc {\n relation r: user\n permission a = r + a\n}",
			[]string{`s:4:13: permission "a" is cyclic without data: a -> a`}},
		{"long cycle through an exclusion", u + "definition doc {\n relation r: user\n permission a = r - b\n permission b = c\n permission c = r & a\n}",
			[]string{`s:4:13: permission "a" is cyclic without data: a -> b -> c -> a`}},
		{"invalid name", "definition User {}",
			[]string{`s:1:12: invalid definition name "User": must match [a-z][a-z0-9_]{0,63}`}},
		{"name too long", "definition a" + strings.Repeat("b", 64) + " {}",
			[]string{`s:1:12: invalid definition name "a` + strings.Repeat("b", 64) + `": must match [a-z][a-z0-9_]{0,63}`}},
		{"missing brace", "definition user {",
			[]string{`s:1:18: expected "}" to close definition "user", found end of file`}},
		{"unexpected character", "definition user { relation r: user $ }",
			[]string{`s:1:36: unexpected character "$"`}},
		{"garbage at top level", "relation x: user",
			[]string{`s:1:1: expected "definition", found "relation"`}},
		{"missing colon", u + "definition doc { relation r user }",
			[]string{`s:2:29: expected ":", found "user"`}},
		{"missing operator", u + "definition doc {\n relation r: user\n permission p = r r\n}",
			[]string{`s:4:19: expected "relation", "permission" or "}", found "r"`}},
		{"wildcard", u + "definition doc { relation r: user:* }",
			[]string{`s:2:34: wildcard subject types are not supported`}},
		{"unterminated comment", "definition user {} /* x",
			[]string{`s:1:20: unterminated comment`}},
		{"nesting", u + "definition doc {\n relation r: user\n permission p = " + strings.Repeat("(", 40) + "r" + strings.Repeat(")", 40) + "\n}",
			[]string{`s:4:49: expression nested too deeply (max 32)`}},
		{"every error reported", u + "definition doc {\n relation a: nobody\n permission b = c\n permission d = e\n}\ndefinition user {}",
			[]string{
				`s:3:14: unknown type "nobody" in relation "a"`,
				`s:4:17: unknown relation or permission "c" in definition "doc"`,
				`s:5:17: unknown relation or permission "e" in definition "doc"`,
				`s:7:1: duplicate definition "user"`,
			}},
		{"recovers after a syntax error", u + "definition doc {\n relation a: \n relation b: nobody\n}",
			[]string{`s:4:2: expected type name, found "relation"`, `s:4:14: unknown type "nobody" in relation "b"`}},
		{"no cascade from a broken permission", u + "definition doc {\n permission a = +\n permission b = a\n}",
			[]string{`s:3:17: expected relation or permission name, found "+"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := ParseSchema("s", []byte(tt.src))
			if err == nil {
				t.Fatalf("ParseSchema succeeded: %v", s.Types())
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error does not wrap ErrInvalid")
			}
			var se *SchemaError
			if !errors.As(err, &se) {
				t.Fatalf("not a *SchemaError: %T", err)
			}
			if !slices.Equal(se.Errors, tt.want) {
				t.Errorf("errors:\n got %q\nwant %q", se.Errors, tt.want)
			}
		})
	}
}

func TestParseSchemaLimits(t *testing.T) {
	t.Run("size", func(t *testing.T) {
		src := make([]byte, maxSchemaBytes+1)
		_, err := ParseSchema("big", src)
		if err == nil || err.Error() != "big:1:1: schema is too large (1048577 bytes, max 1048576)" {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("definitions", func(t *testing.T) {
		var b strings.Builder
		for i := 0; i <= maxDefinitions; i++ {
			b.WriteString("definition d")
			b.WriteString(strings.Repeat("x", i%50))
			b.WriteString(string(rune('a'+i%26)) + "_" + strings.Repeat("a", i/26%10) + " {}\n")
		}
		_, err := ParseSchema("many", []byte(b.String()))
		if err == nil || !strings.Contains(err.Error(), "many:1001:1: too many definitions (max 1000)") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("errors", func(t *testing.T) {
		src := "definition user {}\ndefinition doc {\n" + strings.Repeat(" relation r: nobody\n", 150) + "}"
		_, err := ParseSchema("s", []byte(src))
		var se *SchemaError
		if !errors.As(err, &se) || len(se.Errors) != 101 || se.Errors[100] != "s:103:11: too many errors (only the first 100 are shown)" {
			t.Fatalf("err = %d errors, last %q", len(se.Errors), se.Errors[len(se.Errors)-1])
		}
	})
	t.Run("expression terms", func(t *testing.T) {
		src := "definition user {}\ndefinition doc { relation r: user\n permission p = r" + strings.Repeat(" + r", maxExprTerms) + " }"
		_, err := ParseSchema("s", []byte(src))
		if err == nil || !strings.Contains(err.Error(), "expression too long (max 1000 terms)") {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestSchemaHasPermission(t *testing.T) {
	s := mustSchema(t, docSchema)
	tests := []struct {
		typ, name string
		want      bool
	}{
		{"order", "view", true}, {"order", "owner", true}, {"team", "member", true},
		{"order", "member", false}, {"nope", "view", false}, {"user", "", false},
	}
	for _, tt := range tests {
		if got := s.HasPermission(tt.typ, tt.name); got != tt.want {
			t.Errorf("HasPermission(%s, %s) = %v", tt.typ, tt.name, got)
		}
	}
}

func TestValidateTuple(t *testing.T) {
	s := mustSchema(t, docSchema)
	tests := []struct {
		tuple string
		want  error
	}{
		{"order:o-1#owner@user:usr_alice", nil},
		{"order:o-1#team@team:eng", nil},
		{"team:eng#member@team:ops#member", nil},
		{"team:eng#member@user:bob", nil},
		{"order:o-1#view@user:usr_alice", ErrInvalid},    // a permission
		{"order:o-1#nope@user:usr_alice", ErrUnknown},    // unknown relation
		{"invoice:o-1#owner@user:usr_alice", ErrUnknown}, // unknown type
		{"order:o-1#owner@team:eng", ErrInvalid},         // subject type not accepted
		{"order:o-1#team@team:eng#member", ErrInvalid},   // subject set not accepted
		{"team:eng#member@team:ops", ErrInvalid},         // team only as team#member
		{"team:eng#member@team:ops#manager", ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.tuple, func(t *testing.T) {
			tu, err := ParseTuple(tt.tuple)
			if err != nil {
				t.Fatal(err)
			}
			err = s.ValidateTuple(tu)
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("ValidateTuple = %v, want %v", err, tt.want)
			}
		})
	}
	bad := []storage.RelationTuple{
		{ObjectType: "order", ObjectID: "", Relation: "owner", SubjectType: "user", SubjectID: "a"},
		{ObjectType: "order", ObjectID: "a b", Relation: "owner", SubjectType: "user", SubjectID: "a"},
		{ObjectType: "order", ObjectID: "a", Relation: "owner", SubjectType: "user", SubjectID: "x:y"},
		{ObjectType: "order", ObjectID: "a", Relation: "owner", SubjectType: "user", SubjectID: strings.Repeat("a", 257)},
		{ObjectType: "Order", ObjectID: "a", Relation: "owner", SubjectType: "user", SubjectID: "a"},
		{ObjectType: "order", ObjectID: "a", Relation: "owner", SubjectType: "user", SubjectID: "a", SubjectRelation: "X"},
	}
	for i, tu := range bad {
		if err := s.ValidateTuple(tu); !errors.Is(err, ErrInvalid) {
			t.Errorf("bad[%d]: ValidateTuple = %v, want ErrInvalid", i, err)
		}
	}
}

func FuzzParseSchema(f *testing.F) {
	f.Add([]byte(docSchema))
	f.Add([]byte("definition a { permission x = (y - z) & w->v }"))
	f.Add([]byte("definition a { relation b: a#b | a permission c = b->c + c }"))
	f.Add([]byte("/* x */ // y\n definition"))
	f.Fuzz(func(t *testing.T, src []byte) {
		s, err := ParseSchema("f", src)
		if err != nil {
			var se *SchemaError
			if !errors.As(err, &se) || len(se.Errors) == 0 {
				t.Fatalf("error without positions: %v", err)
			}
			for _, e := range se.Errors {
				if !strings.HasPrefix(e, "f:") {
					t.Fatalf("error %q lacks the position prefix", e)
				}
			}
			return
		}
		for _, typ := range s.Types() {
			if !validName(typ) {
				t.Fatalf("accepted invalid type name %q", typ)
			}
		}
	})
}
