package rebac

import (
	"errors"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/storage"
)

func TestParseTuple(t *testing.T) {
	long := strings.Repeat("x", 256)
	tests := []struct {
		in   string
		want storage.RelationTuple
		ok   bool
	}{
		{"order:o-1#owner@user:usr_alice", storage.RelationTuple{ObjectType: "order", ObjectID: "o-1", Relation: "owner", SubjectType: "user", SubjectID: "usr_alice"}, true},
		{"order:o-1#viewer@team:eng#member", storage.RelationTuple{ObjectType: "order", ObjectID: "o-1", Relation: "viewer", SubjectType: "team", SubjectID: "eng", SubjectRelation: "member"}, true},
		{"doc:" + long + "#r@user:" + long, storage.RelationTuple{ObjectType: "doc", ObjectID: long, Relation: "r", SubjectType: "user", SubjectID: long}, true},
		{"doc:a.b/c~!$%^&*()[]{}|\\'\"<>?,;=+#r@user:*", storage.RelationTuple{ObjectType: "doc", ObjectID: "a.b/c~!$%^&*()[]{}|\\'\"<>?,;=+", Relation: "r", SubjectType: "user", SubjectID: "*"}, true},
		{"", storage.RelationTuple{}, false},
		{"order:o-1#owner", storage.RelationTuple{}, false},
		{"order:o-1@user:a", storage.RelationTuple{}, false},
		{"order#owner@user:a", storage.RelationTuple{}, false},
		{"order:#owner@user:a", storage.RelationTuple{}, false},
		{"order:o-1#@user:a", storage.RelationTuple{}, false},
		{"order:o-1#owner@user:", storage.RelationTuple{}, false},
		{"order:o-1#owner@user:a#", storage.RelationTuple{}, false},
		{"order:o-1#owner@user:a#b#c", storage.RelationTuple{}, false},
		{"order:o-1#owner@user:a@b", storage.RelationTuple{}, false},
		{"order:o:1#owner@user:a", storage.RelationTuple{}, false},
		{"order:o-1#owner@user:a:b", storage.RelationTuple{}, false},
		{" order:o-1#owner@user:a", storage.RelationTuple{}, false},
		{"order:o-1#owner@user:a ", storage.RelationTuple{}, false},
		{"order:o 1#owner@user:a", storage.RelationTuple{}, false},
		{"order:o\t1#owner@user:a", storage.RelationTuple{}, false},
		{"order:o-1#owner@user:\x00", storage.RelationTuple{}, false},
		{"order:o-1#owner@user:é", storage.RelationTuple{}, false},
		{"Order:o-1#owner@user:a", storage.RelationTuple{}, false},
		{"order:o-1#Owner@user:a", storage.RelationTuple{}, false},
		{"order:o-1#owner@1user:a", storage.RelationTuple{}, false},
		{"order:o-1#owner@user:a#Member", storage.RelationTuple{}, false},
		{"doc:" + long + "x#r@user:a", storage.RelationTuple{}, false},
		{"a" + strings.Repeat("b", 64) + ":x#r@user:a", storage.RelationTuple{}, false},
	}
	for _, tt := range tests {
		t.Run(clip(tt.in), func(t *testing.T) {
			got, err := ParseTuple(tt.in)
			if !tt.ok {
				if err == nil || !errors.Is(err, ErrInvalid) {
					t.Fatalf("ParseTuple(%q) = %+v, %v; want ErrInvalid", tt.in, got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseTuple = %+v, %v; want %+v", got, err, tt.want)
			}
			if s := FormatTuple(got); s != tt.in {
				t.Errorf("FormatTuple = %q", s)
			}
		})
	}
}

func TestParseObjectSubject(t *testing.T) {
	objs := map[string]bool{"order:o-1": true, "order": false, "order:": false, ":x": false, "order:a#b": false, "order:a:b": false}
	for in, ok := range objs {
		o, err := ParseObject(in)
		if (err == nil) != ok || ok && o.String() != in {
			t.Errorf("ParseObject(%q) = %v, %v", in, o, err)
		}
	}
	subjs := map[string]bool{"user:usr_alice": true, "team:eng#member": true, "team:eng#": false, "team:eng#a#b": false, "team": false, "team:eng@x": false}
	for in, ok := range subjs {
		s, err := ParseSubject(in)
		if (err == nil) != ok || ok && s.String() != in {
			t.Errorf("ParseSubject(%q) = %v, %v", in, s, err)
		}
	}
}

func FuzzParseTuple(f *testing.F) {
	for _, s := range []string{"order:o-1#owner@user:usr_alice", "order:o-1#viewer@team:eng#member", "a:b#c@d:e#f", "x:#@:"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tu, err := ParseTuple(s)
		if err != nil {
			return
		}
		if got := FormatTuple(tu); got != s {
			t.Fatalf("round trip: %q -> %q", s, got)
		}
		if !validName(tu.ObjectType) || !validID(tu.ObjectID) || !validName(tu.Relation) ||
			!validName(tu.SubjectType) || !validID(tu.SubjectID) || tu.SubjectRelation != "" && !validName(tu.SubjectRelation) {
			t.Fatalf("accepted invalid parts: %+v", tu)
		}
	})
}
