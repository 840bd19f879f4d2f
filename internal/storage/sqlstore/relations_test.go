package sqlstore_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/gatehouse/gatehouse/internal/storage"
	"github.com/gatehouse/gatehouse/internal/storage/sqlstore"
)

func TestBulkLoadTuples(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		open func(testing.TB) *sqlstore.Store
	}{
		{"sqlite", newSQLite},
		{"postgres", openPG},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			s := tc.open(t)
			live := storage.RelationTuple{ObjectType: "doc", ObjectID: "d0", Relation: "viewer", SubjectType: "user", SubjectID: "u0"}
			r1, err := s.WriteTuples(ctx, []storage.TupleWrite{{Op: storage.TupleTouch, Tuple: live}})
			if err != nil {
				t.Fatal(err)
			}
			ts := []storage.RelationTuple{live}
			for i := range 1200 { // more than one INSERT batch
				ts = append(ts, storage.RelationTuple{ObjectType: "doc", ObjectID: fmt.Sprintf("d%04d", i), Relation: "viewer",
					SubjectType: "team", SubjectID: "eng", SubjectRelation: "member"})
			}
			ts = append(ts, ts[1]) // a repeat is skipped
			bad := append(ts[:2:2], storage.RelationTuple{ObjectType: "doc", ObjectID: "x"})
			if _, err := s.BulkLoadTuples(ctx, bad); !errors.Is(err, storage.ErrInvalid) {
				t.Fatalf("tuple with empty fields: %v, want ErrInvalid", err)
			}
			if h, _ := s.HeadRevision(ctx); h != r1 {
				t.Fatalf("head %d after a refused load, want %d", h, r1)
			}
			r2, err := s.BulkLoadTuples(ctx, ts)
			if err != nil || r2 != r1+1 {
				t.Fatalf("load: revision %d, %v; want %d", r2, err, r1+1)
			}
			if r, err := s.BulkLoadTuples(ctx, ts[:10]); err != nil || r != r2 {
				t.Fatalf("reload of live tuples: revision %d, %v; want the head %d", r, err, r2)
			}
			if r, err := s.BulkLoadTuples(ctx, nil); err != nil || r != r2 {
				t.Fatalf("empty load: revision %d, %v", r, err)
			}
			var n int
			for cursor := ""; ; {
				page, next, err := s.ReadTuples(ctx, r2, storage.TupleFilter{ObjectType: "doc"}, cursor, 1000)
				if err != nil {
					t.Fatal(err)
				}
				n += len(page)
				if cursor = next; cursor == "" {
					break
				}
			}
			if n != 1201 {
				t.Fatalf("%d tuples after the load, want 1201", n)
			}
			if old, _, err := s.ReadTuples(ctx, r1, storage.TupleFilter{ObjectType: "doc"}, "", 0); err != nil || len(old) != 1 {
				t.Fatalf("at the revision before the load: %d tuples, %v", len(old), err)
			}
			cs, err := s.Changes(ctx, r1, 0)
			if err != nil || len(cs) != 0 {
				t.Fatalf("the load is not in the changes feed: %v %v", cs, err)
			}
		})
	}
}
