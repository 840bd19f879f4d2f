package conformance

import (
	"context"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/storage"
)

// tup parses "type:id#relation@type:id" or "...@type:id#relation" (test
// data only; ids contain no ':', '#' or '@').
func tup(s string) storage.RelationTuple {
	obj, subj, _ := strings.Cut(s, "@")
	obj, rel, _ := strings.Cut(obj, "#")
	ot, oid, _ := strings.Cut(obj, ":")
	subj, srel, _ := strings.Cut(subj, "#")
	st, sid, _ := strings.Cut(subj, ":")
	return storage.RelationTuple{ObjectType: ot, ObjectID: oid, Relation: rel, SubjectType: st, SubjectID: sid, SubjectRelation: srel}
}

func tups(ss ...string) []storage.RelationTuple {
	out := make([]storage.RelationTuple, len(ss))
	for i, s := range ss {
		out[i] = tup(s)
	}
	return out
}

func touch(ss ...string) []storage.TupleWrite { return writes(storage.TupleTouch, ss...) }
func del(ss ...string) []storage.TupleWrite   { return writes(storage.TupleDelete, ss...) }

func writes(op storage.TupleOp, ss ...string) []storage.TupleWrite {
	out := make([]storage.TupleWrite, len(ss))
	for i, s := range ss {
		out[i] = storage.TupleWrite{Op: op, Tuple: tup(s)}
	}
	return out
}

func ptr(s string) *string { return &s }

// tupleKey is ReadTuples' order.
func tupleKey(t storage.RelationTuple) string {
	return strings.Join([]string{t.ObjectID, t.Relation, t.SubjectType, t.SubjectID, t.SubjectRelation}, "\x00")
}

// subjectKey is ReadBySubject's order.
func subjectKey(t storage.RelationTuple) string {
	return strings.Join([]string{t.ObjectType, t.ObjectID, t.Relation, t.SubjectRelation}, "\x00")
}

// write calls WriteTuples and fails the test on error.
func write(t *testing.T, ctx context.Context, s storage.Store, ws []storage.TupleWrite) storage.Revision {
	t.Helper()
	rev, err := s.WriteTuples(ctx, ws)
	must(t, err)
	return rev
}

func head(t *testing.T, ctx context.Context, s storage.Store) storage.Revision {
	t.Helper()
	h, err := s.HeadRevision(ctx)
	must(t, err)
	return h
}

// readAll pages through ReadTuples and checks that pages are full but the
// last and that the cursor is "" only at the end.
func readAll(t *testing.T, ctx context.Context, s storage.Store, at storage.Revision, f storage.TupleFilter, limit int) []storage.RelationTuple {
	t.Helper()
	var out []storage.RelationTuple
	cursor := ""
	for page := 0; ; page++ {
		if page > 10000 {
			t.Fatal("ReadTuples does not terminate")
		}
		got, next, err := s.ReadTuples(ctx, at, f, cursor, limit)
		must(t, err)
		out = append(out, got...)
		if next == "" {
			return out
		}
		if want := min(max(limit, 1), 1000); limit > 0 && len(got) != want {
			t.Fatalf("page %d has %d tuples and a cursor, want %d", page, len(got), want)
		}
		cursor = next
	}
}

func readBySubjectAll(t *testing.T, ctx context.Context, s storage.Store, at storage.Revision, f storage.SubjectFilter, limit int) []storage.RelationTuple {
	t.Helper()
	var out []storage.RelationTuple
	cursor := ""
	for page := 0; page < 10000; page++ {
		got, next, err := s.ReadBySubject(ctx, at, f, cursor, limit)
		must(t, err)
		out = append(out, got...)
		if next == "" {
			return out
		}
		cursor = next
	}
	t.Fatal("ReadBySubject does not terminate")
	return nil
}

func objectIDsAll(t *testing.T, ctx context.Context, s storage.Store, at storage.Revision, typ string, limit int) []string {
	t.Helper()
	var out []string
	cursor := ""
	for page := 0; page < 10000; page++ {
		got, next, err := s.ObjectIDs(ctx, at, typ, cursor, limit)
		must(t, err)
		out = append(out, got...)
		if next == "" {
			return out
		}
		cursor = next
	}
	t.Fatal("ObjectIDs does not terminate")
	return nil
}

// sameTuples compares tuple lists exactly (order included); nil == empty.
func sameTuples(t *testing.T, got, want []storage.RelationTuple) {
	t.Helper()
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !slices.Equal(got, want) {
		t.Fatalf("tuples mismatch\n got: %v\nwant: %v", got, want)
	}
}

func sortedBy(ts []storage.RelationTuple, key func(storage.RelationTuple) string) []storage.RelationTuple {
	out := slices.Clone(ts)
	slices.SortFunc(out, func(a, b storage.RelationTuple) int { return strings.Compare(key(a), key(b)) })
	return out
}

func testRelations(t *testing.T, newStore func(*testing.T) storage.Store) {
	sub(t, newStore, "TouchDeleteIdempotent", func(t *testing.T, ctx context.Context, s storage.Store) {
		if h := head(t, ctx, s); h != 0 {
			t.Fatalf("head of an empty store = %d, want 0", h)
		}
		f := storage.TupleFilter{ObjectType: "order"}
		r1 := write(t, ctx, s, touch("order:o1#owner@user:alice"))
		if r1 == 0 || head(t, ctx, s) != r1 {
			t.Fatalf("touch: revision %d, head %d", r1, head(t, ctx, s))
		}
		steps := []struct {
			name string
			ws   []storage.TupleWrite
		}{
			{"touch-live", touch("order:o1#owner@user:alice")},
			{"delete-missing", del("order:o2#owner@user:alice")},
			{"empty", nil},
			{"touch-live-and-delete-missing", append(touch("order:o1#owner@user:alice"), del("order:o1#owner@user:bob")...)},
		}
		for _, st := range steps {
			if rev := write(t, ctx, s, st.ws); rev != r1 {
				t.Fatalf("%s: revision %d, want the head %d (no revision consumed)", st.name, rev, r1)
			}
		}
		r2 := write(t, ctx, s, del("order:o1#owner@user:alice"))
		if r2 <= r1 {
			t.Fatalf("delete: revision %d not above %d", r2, r1)
		}
		if rev := write(t, ctx, s, del("order:o1#owner@user:alice")); rev != r2 {
			t.Fatalf("second delete: revision %d, want %d", rev, r2)
		}
		r3 := write(t, ctx, s, touch("order:o1#owner@user:alice"))
		if r3 <= r2 {
			t.Fatalf("re-touch: revision %d not above %d", r3, r2)
		}
		for _, tc := range []struct {
			at   storage.Revision
			want []storage.RelationTuple
		}{
			{r1, tups("order:o1#owner@user:alice")},
			{r2, nil},
			{r3, tups("order:o1#owner@user:alice")},
			{0, tups("order:o1#owner@user:alice")},
		} {
			got, next, err := s.ReadTuples(ctx, tc.at, f, "", 0)
			must(t, err)
			sameTuples(t, got, tc.want)
			if next != "" {
				t.Fatalf("at %d: cursor %q on a short page", tc.at, next)
			}
		}
		// Case-sensitive: a tuple differing by case is another tuple.
		if rev := write(t, ctx, s, touch("order:O1#owner@user:alice")); rev <= r3 {
			t.Fatalf("touch of a case variant consumed no revision")
		}
	})

	sub(t, newStore, "AZ-05/atomic-batch", func(t *testing.T, ctx context.Context, s storage.Store) {
		base := write(t, ctx, s, touch("order:o0#owner@user:alice"))
		good := touch("order:o1#owner@user:alice", "order:o2#owner@user:bob")
		many := make([]storage.TupleWrite, 1001)
		for i := range many {
			many[i] = storage.TupleWrite{Op: storage.TupleTouch, Tuple: tup(fmt.Sprintf("order:o%d#owner@user:alice", i+10))}
		}
		for _, tc := range []struct {
			name string
			bad  []storage.TupleWrite
		}{
			{"empty-object-type", touch(":o9#owner@user:alice")},
			{"empty-object-id", touch("order:#owner@user:alice")},
			{"empty-relation", touch("order:o9#@user:alice")},
			{"empty-subject-type", touch("order:o9#owner@:alice")},
			{"empty-subject-id", touch("order:o9#owner@user:")},
			{"unknown-op", []storage.TupleWrite{{Op: 0, Tuple: tup("order:o9#owner@user:alice")}}},
			{"unknown-op-3", []storage.TupleWrite{{Op: 3, Tuple: tup("order:o9#owner@user:alice")}}},
			{"duplicate-touch", touch("order:o9#owner@user:alice", "order:o9#owner@user:alice")},
			{"duplicate-touch-delete", append(touch("order:o9#owner@user:alice"), del("order:o9#owner@user:alice")...)},
			{"delete-of-the-base-then-duplicate", append(del("order:o0#owner@user:alice"), touch("order:o0#owner@user:alice")...)},
			{"too-many", many},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, err := s.WriteTuples(ctx, append(slices.Clone(good), tc.bad...))
				wantErr(t, err, storage.ErrInvalid)
				if h := head(t, ctx, s); h != base {
					t.Fatalf("head %d after a refused batch, want %d", h, base)
				}
				sameTuples(t, readAll(t, ctx, s, 0, storage.TupleFilter{ObjectType: "order"}, 0), tups("order:o0#owner@user:alice"))
				ch, err := s.Changes(ctx, base, 0)
				must(t, err)
				if len(ch) != 0 {
					t.Fatalf("changes after a refused batch: %+v", ch)
				}
			})
		}
		// Exactly 1000 writes are accepted.
		if rev := write(t, ctx, s, many[:1000]); rev != base+1 {
			t.Fatalf("1000 writes: revision %d, want %d", rev, base+1)
		}
	})

	sub(t, newStore, "AZ-05/snapshot-read", func(t *testing.T, ctx context.Context, s storage.Store) {
		r1 := write(t, ctx, s, touch("order:o1#owner@user:alice", "order:o1#viewer@team:eng#member"))
		r2 := write(t, ctx, s, append(del("order:o1#owner@user:alice"), touch("order:o2#owner@user:alice")...))
		r3 := write(t, ctx, s, touch("order:o1#owner@user:alice"))
		f := storage.TupleFilter{ObjectType: "order"}
		alice := storage.SubjectFilter{SubjectType: "user", SubjectID: "alice"}
		for _, tc := range []struct {
			name  string
			at    storage.Revision
			want  []storage.RelationTuple
			bySub []storage.RelationTuple
			ids   []string
		}{
			{"r1", r1, tups("order:o1#owner@user:alice", "order:o1#viewer@team:eng#member"), tups("order:o1#owner@user:alice"), []string{"o1"}},
			{"r2-deleted-invisible", r2, tups("order:o1#viewer@team:eng#member", "order:o2#owner@user:alice"), tups("order:o2#owner@user:alice"), []string{"o1", "o2"}},
			{"r3-recreated", r3, tups("order:o1#owner@user:alice", "order:o1#viewer@team:eng#member", "order:o2#owner@user:alice"),
				tups("order:o1#owner@user:alice", "order:o2#owner@user:alice"), []string{"o1", "o2"}},
			{"head", 0, tups("order:o1#owner@user:alice", "order:o1#viewer@team:eng#member", "order:o2#owner@user:alice"),
				tups("order:o1#owner@user:alice", "order:o2#owner@user:alice"), []string{"o1", "o2"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				sameTuples(t, readAll(t, ctx, s, tc.at, f, 0), tc.want)
				sameTuples(t, readBySubjectAll(t, ctx, s, tc.at, alice, 0), tc.bySub)
				if got := objectIDsAll(t, ctx, s, tc.at, "order", 0); !slices.Equal(got, tc.ids) {
					t.Fatalf("ObjectIDs = %v, want %v", got, tc.ids)
				}
			})
		}
		// A write after r3 changes nothing read at r1..r3.
		write(t, ctx, s, del("order:o1#owner@user:alice", "order:o1#viewer@team:eng#member", "order:o2#owner@user:alice"))
		sameTuples(t, readAll(t, ctx, s, r1, f, 0), tups("order:o1#owner@user:alice", "order:o1#viewer@team:eng#member"))
		sameTuples(t, readAll(t, ctx, s, 0, f, 0), nil)
	})

	sub(t, newStore, "AZ-05/revision-ahead", func(t *testing.T, ctx context.Context, s storage.Store) {
		check := func(at storage.Revision) {
			t.Helper()
			_, _, err := s.ReadTuples(ctx, at, storage.TupleFilter{ObjectType: "order"}, "", 0)
			wantErr(t, err, storage.ErrRevisionAhead)
			_, _, err = s.ReadTuples(ctx, at, storage.TupleFilter{ObjectType: "order", ObjectIDs: []string{"o1"}, Relation: "owner"}, "", 0)
			wantErr(t, err, storage.ErrRevisionAhead)
			_, _, err = s.ReadBySubject(ctx, at, storage.SubjectFilter{SubjectType: "user", SubjectID: "alice"}, "", 0)
			wantErr(t, err, storage.ErrRevisionAhead)
			_, _, err = s.ObjectIDs(ctx, at, "order", "", 0)
			wantErr(t, err, storage.ErrRevisionAhead)
		}
		check(1)
		r := write(t, ctx, s, touch("order:o1#owner@user:alice"))
		check(r + 1)
		check(^storage.Revision(0) >> 1)
		got, _, err := s.ReadTuples(ctx, r, storage.TupleFilter{ObjectType: "order"}, "", 0)
		must(t, err)
		sameTuples(t, got, tups("order:o1#owner@user:alice"))
	})

	sub(t, newStore, "Filters", testTupleFilters)
	sub(t, newStore, "AZ-05/malformed-cursor", testMalformedCursors)
	sub(t, newStore, "Pagination", testPagination)
	sub(t, newStore, "ReadBySubject", testReadBySubject)
	sub(t, newStore, "ObjectIDs", testObjectIDs)
}

func testMalformedCursors(t *testing.T, ctx context.Context, s storage.Store) {
	write(t, ctx, s, touch("order:o1#owner@user:alice", "order:o2#owner@user:alice"))
	enc := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	_, idsCursor, err := s.ObjectIDs(ctx, 0, "order", "", 1)
	must(t, err)
	_, tupCursor, err := s.ReadTuples(ctx, 0, storage.TupleFilter{ObjectType: "order"}, "", 1)
	must(t, err)
	if idsCursor == "" || tupCursor == "" {
		t.Fatal("no cursor on a full page")
	}
	for _, tc := range []struct{ name, cursor string }{
		{"not-base64", "!!!"},
		{"not-json", enc("not json")},
		{"object", enc(`{"a":1}`)},
		{"empty-array", enc(`[]`)},
		{"numbers", enc(`["t",1,2,3,4,5]`)},
		{"short", enc(`["t","o1"]`)},
		{"long", enc(`["t","a","b","c","d","e","f"]`)},
		{"null", enc(`null`)},
		{"huge", strings.Repeat("A", 1<<16)},
		{"sql-ish", enc(`["t","o1') OR 1=1 --","a","b","c","d"]`) + "'"},
		{"other-method", idsCursor},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := s.ReadTuples(ctx, 0, storage.TupleFilter{ObjectType: "order"}, tc.cursor, 0)
			wantErr(t, err, storage.ErrInvalid)
			_, _, err = s.ReadBySubject(ctx, 0, storage.SubjectFilter{SubjectType: "user", SubjectID: "alice"}, tc.cursor, 0)
			wantErr(t, err, storage.ErrInvalid)
			if tc.name != "other-method" {
				_, _, err = s.ObjectIDs(ctx, 0, "order", tc.cursor, 0)
				wantErr(t, err, storage.ErrInvalid)
			}
		})
	}
	_, _, err = s.ObjectIDs(ctx, 0, "order", tupCursor, 0)
	wantErr(t, err, storage.ErrInvalid)
	// A well-formed cursor carrying hostile key values is just a position.
	got, _, err := s.ReadTuples(ctx, 0, storage.TupleFilter{ObjectType: "order"}, enc(`["t","o1') OR 1=1 --","","","",""]`), 0)
	must(t, err)
	sameTuples(t, got, tups("order:o2#owner@user:alice"))
}
