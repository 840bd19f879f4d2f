package rebac

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/gatehouse/gatehouse/internal/storage"
)

func TestMemReaderSnapshots(t *testing.T) {
	ctx := context.Background()
	m := NewMemReader()
	rev1 := m.MustWrite("doc:a#owner@user:x", "doc:b#owner@user:x")
	if again := m.MustWrite("doc:a#owner@user:x"); again != rev1 {
		t.Fatalf("no-op write consumed a revision: %d", again)
	}
	tu, _ := ParseTuple("doc:a#owner@user:x")
	rev2, err := m.WriteTuples(ctx, []storage.TupleWrite{{Op: storage.TupleDelete, Tuple: tu}})
	if err != nil || rev2 != rev1+1 {
		t.Fatalf("delete = %d, %v", rev2, err)
	}
	if _, err := m.WriteTuples(ctx, []storage.TupleWrite{{Op: storage.TupleTouch, Tuple: tu}, {Op: storage.TupleDelete, Tuple: tu}}); err == nil {
		t.Fatal("the same tuple twice in one write was accepted")
	}
	rev3 := m.MustWrite("doc:a#owner@user:x")
	tests := []struct {
		at   storage.Revision
		want []string
	}{
		{rev1, []string{"a", "b"}}, {rev2, []string{"b"}}, {rev3, []string{"a", "b"}}, {0, []string{"a", "b"}},
	}
	for _, tt := range tests {
		ids, next, err := m.ObjectIDs(ctx, tt.at, "doc", "", 10)
		if err != nil || next != "" || !slices.Equal(ids, tt.want) {
			t.Errorf("ObjectIDs at %d = %v %q %v, want %v", tt.at, ids, next, err, tt.want)
		}
	}
	if _, _, err := m.ReadTuples(ctx, rev3+1, storage.TupleFilter{ObjectType: "doc"}, "", 10); !errors.Is(err, storage.ErrRevisionAhead) {
		t.Errorf("future revision: %v", err)
	}
}

func TestMemReaderPaging(t *testing.T) {
	ctx := context.Background()
	m := NewMemReader()
	var want []string
	for i := 0; i < 250; i++ {
		s := fmt.Sprintf("doc:d%03d#viewer@user:u%03d", i%10, i)
		want = append(want, s)
	}
	rev := m.MustWrite(want...)
	slices.SortFunc(want, func(a, b string) int {
		ta, _ := ParseTuple(a)
		tb, _ := ParseTuple(b)
		return tupleCmp(ta, tb)
	})
	var ids []string
	for i := 0; i < 10; i++ {
		ids = append(ids, fmt.Sprintf("d%03d", i))
	}
	filters := map[string]storage.TupleFilter{
		"by type":       {ObjectType: "doc"},
		"by object ids": {ObjectType: "doc", ObjectIDs: ids, Relation: "viewer"},
	}
	for name, f := range filters {
		t.Run(name, func(t *testing.T) {
			var got []string
			cursor := ""
			for {
				ts, next, err := m.ReadTuples(ctx, rev, f, cursor, 33)
				if err != nil {
					t.Fatal(err)
				}
				for _, tu := range ts {
					got = append(got, FormatTuple(tu))
				}
				if next == "" {
					break
				}
				cursor = next
			}
			if !slices.Equal(got, want) {
				t.Fatalf("got %d tuples, want %d", len(got), len(want))
			}
		})
	}
	direct := ""
	ts, _, err := m.ReadBySubject(ctx, rev, storage.SubjectFilter{SubjectType: "user", SubjectID: "u007", SubjectRelation: &direct}, "", 0)
	if err != nil || len(ts) != 1 || FormatTuple(ts[0]) != "doc:d007#viewer@user:u007" {
		t.Errorf("ReadBySubject = %v, %v", ts, err)
	}
}
