package conformance

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/storage"
)

// filterData is the data set of the filter tests.
var filterData = []string{
	"order:o1#owner@user:alice",
	"order:o1#viewer@user:bob",
	"order:o1#viewer@team:eng#member",
	"order:o1#viewer@team:eng#manager",
	"order:o1#viewer@team:eng",
	"order:o2#owner@user:bob",
	"order:o2#team@team:eng",
	"order:o3#owner@user:Alice",
	"team:eng#member@user:alice",
	"team:eng#member@team:ops#member",
}

func testTupleFilters(t *testing.T, ctx context.Context, s storage.Store) {
	rev := write(t, ctx, s, touch(filterData...))
	for _, tc := range []struct {
		name string
		f    storage.TupleFilter
		want []string
	}{
		{"type", storage.TupleFilter{ObjectType: "order"}, filterData[:8]},
		{"other-type", storage.TupleFilter{ObjectType: "team"}, filterData[8:]},
		{"unknown-type", storage.TupleFilter{ObjectType: "invoice"}, nil},
		{"one-id", storage.TupleFilter{ObjectType: "order", ObjectIDs: []string{"o2"}}, filterData[5:7]},
		{"ids", storage.TupleFilter{ObjectType: "order", ObjectIDs: []string{"o3", "o2", "missing"}}, filterData[5:8]},
		{"ids-with-duplicates", storage.TupleFilter{ObjectType: "order", ObjectIDs: []string{"o3", "o3"}}, filterData[7:8]},
		{"empty-ids-match-any", storage.TupleFilter{ObjectType: "order", ObjectIDs: []string{}}, filterData[:8]},
		{"id-of-other-type", storage.TupleFilter{ObjectType: "order", ObjectIDs: []string{"eng"}}, nil},
		{"relation", storage.TupleFilter{ObjectType: "order", Relation: "owner"}, []string{filterData[0], filterData[5], filterData[7]}},
		{"subject-type", storage.TupleFilter{ObjectType: "order", SubjectType: "team"}, []string{filterData[2], filterData[3], filterData[4], filterData[6]}},
		{"subject-id", storage.TupleFilter{ObjectType: "order", SubjectID: "bob"}, []string{filterData[1], filterData[5]}},
		{"subject-id-case-sensitive", storage.TupleFilter{ObjectType: "order", SubjectID: "Alice"}, filterData[7:8]},
		{"subject-relation-any", storage.TupleFilter{ObjectType: "order", ObjectIDs: []string{"o1"}, SubjectType: "team"}, filterData[2:5]},
		{"subject-relation-direct", storage.TupleFilter{ObjectType: "order", ObjectIDs: []string{"o1"}, SubjectType: "team", SubjectRelation: ptr("")}, filterData[4:5]},
		{"subject-relation-member", storage.TupleFilter{ObjectType: "order", SubjectRelation: ptr("member")}, filterData[2:3]},
		{"all-fields", storage.TupleFilter{ObjectType: "order", ObjectIDs: []string{"o1"}, Relation: "viewer", SubjectType: "team", SubjectID: "eng", SubjectRelation: ptr("manager")},
			filterData[3:4]},
		{"all-fields-miss", storage.TupleFilter{ObjectType: "order", ObjectIDs: []string{"o1"}, Relation: "owner", SubjectType: "team", SubjectID: "eng", SubjectRelation: ptr("")}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := sortedBy(tups(tc.want...), tupleKey)
			sameTuples(t, readAll(t, ctx, s, 0, tc.f, 0), want)
			sameTuples(t, readAll(t, ctx, s, rev, tc.f, 0), want)
			sameTuples(t, readAll(t, ctx, s, rev, tc.f, 1), want)
		})
	}
	t.Run("many-ids", func(t *testing.T) {
		ids := make([]string, 1000)
		for i := range ids {
			ids[i] = fmt.Sprintf("x%d", i)
		}
		ids[999] = "o1"
		sameTuples(t, readAll(t, ctx, s, rev, storage.TupleFilter{ObjectType: "order", ObjectIDs: ids, Relation: "owner"}, 0), tups(filterData[0]))
	})
	for _, tc := range []struct {
		name string
		f    storage.TupleFilter
	}{
		{"no-object-type", storage.TupleFilter{ObjectIDs: []string{"o1"}}},
		{"too-many-ids", storage.TupleFilter{ObjectType: "order", ObjectIDs: make([]string, 1001)}},
	} {
		t.Run("AZ-05/"+tc.name, func(t *testing.T) {
			_, _, err := s.ReadTuples(ctx, 0, tc.f, "", 0)
			wantErr(t, err, storage.ErrInvalid)
		})
	}
	for _, tc := range []struct {
		name string
		f    storage.SubjectFilter
	}{
		{"no-subject-type", storage.SubjectFilter{SubjectID: "alice"}},
		{"no-subject-id", storage.SubjectFilter{SubjectType: "user"}},
	} {
		t.Run("AZ-05/"+tc.name, func(t *testing.T) {
			_, _, err := s.ReadBySubject(ctx, 0, tc.f, "", 0)
			wantErr(t, err, storage.ErrInvalid)
		})
	}
	_, _, err := s.ObjectIDs(ctx, 0, "", "", 0)
	wantErr(t, err, storage.ErrInvalid)
}

// testPagination writes 2,500 tuples whose keys differ in every sort column
// and in byte order (upper case, digits, punctuation), then pages through
// them at a fixed revision while more are written.
func testPagination(t *testing.T, ctx context.Context, s storage.Store) {
	ids := []string{"A", "a", "B", "_x", "~", "0", "9z", "a-b", "a.b", "Ab"}
	var all []storage.RelationTuple
	for i := range 2500 {
		srel := []string{"", "member", "manager"}[i%3]
		subj := fmt.Sprintf("user:u%03d", i/30)
		if srel != "" {
			subj = fmt.Sprintf("team:t%03d#%s", i/30, srel)
		}
		all = append(all, tup(fmt.Sprintf("doc:%s%d#%s@%s", ids[i%len(ids)], i%7, []string{"owner", "viewer"}[i%2], subj)))
	}
	all = sortedBy(slices.Compact(sortedBy(all, tupleKey)), tupleKey)
	if len(all) < 2000 {
		t.Fatalf("test data has only %d distinct tuples", len(all))
	}
	var rev storage.Revision
	for chunk := range slices.Chunk(all, 1000) {
		ws := make([]storage.TupleWrite, len(chunk))
		for i, tu := range chunk {
			ws[i] = storage.TupleWrite{Op: storage.TupleTouch, Tuple: tu}
		}
		rev = write(t, ctx, s, ws)
	}
	f := storage.TupleFilter{ObjectType: "doc"}
	for _, limit := range []int{0, 5000} { // 5000 is capped at 1000
		t.Run(fmt.Sprintf("limit-%d", limit), func(t *testing.T) {
			sameTuples(t, readAll(t, ctx, s, rev, f, limit), all)
		})
	}
	t.Run("stable-under-writes", func(t *testing.T) {
		var got []storage.RelationTuple
		cursor := ""
		for page := 0; ; page++ {
			ts, next, err := s.ReadTuples(ctx, rev, f, cursor, 500)
			must(t, err)
			got = append(got, ts...)
			if next == "" {
				break
			}
			cursor = next
			// Concurrent change: new tuples before and after the cursor, one deleted.
			write(t, ctx, s, append(touch(fmt.Sprintf("doc:0#owner@user:new%d", page), fmt.Sprintf("doc:~~#owner@user:new%d", page)),
				storage.TupleWrite{Op: storage.TupleDelete, Tuple: all[len(all)-1-page]}))
		}
		sameTuples(t, got, all)
	})
	t.Run("by-subject", func(t *testing.T) {
		want := sortedBy(slices.DeleteFunc(slices.Clone(all), func(tu storage.RelationTuple) bool {
			return tu.SubjectType != "team" || tu.SubjectID != "t001"
		}), subjectKey)
		if len(want) < 3 {
			t.Fatalf("only %d tuples of team:t001", len(want))
		}
		sameTuples(t, readBySubjectAll(t, ctx, s, rev, storage.SubjectFilter{SubjectType: "team", SubjectID: "t001"}, 2), want)
	})
}

func testReadBySubject(t *testing.T, ctx context.Context, s storage.Store) {
	r1 := write(t, ctx, s, touch(filterData...))
	for _, tc := range []struct {
		name string
		f    storage.SubjectFilter
		want []string
	}{
		{"subject", storage.SubjectFilter{SubjectType: "user", SubjectID: "alice"}, []string{filterData[0], filterData[8]}},
		{"case-sensitive", storage.SubjectFilter{SubjectType: "user", SubjectID: "Alice"}, filterData[7:8]},
		{"any-relation", storage.SubjectFilter{SubjectType: "team", SubjectID: "eng"},
			[]string{filterData[2], filterData[3], filterData[4], filterData[6]}},
		{"object-type-order", storage.SubjectFilter{SubjectType: "team", SubjectID: "eng", ObjectType: "order"},
			[]string{filterData[2], filterData[3], filterData[4], filterData[6]}},
		{"object-type-miss", storage.SubjectFilter{SubjectType: "team", SubjectID: "eng", ObjectType: "team"}, nil},
		{"direct", storage.SubjectFilter{SubjectType: "team", SubjectID: "eng", SubjectRelation: ptr("")}, []string{filterData[4], filterData[6]}},
		{"member", storage.SubjectFilter{SubjectType: "team", SubjectID: "eng", SubjectRelation: ptr("member")}, filterData[2:3]},
		{"object-type", storage.SubjectFilter{SubjectType: "user", SubjectID: "alice", ObjectType: "team"}, filterData[8:9]},
		{"relation", storage.SubjectFilter{SubjectType: "user", SubjectID: "bob", Relation: "viewer"}, filterData[1:2]},
		{"all-fields", storage.SubjectFilter{SubjectType: "team", SubjectID: "ops", SubjectRelation: ptr("member"), ObjectType: "team", Relation: "member"},
			filterData[9:10]},
		{"unknown", storage.SubjectFilter{SubjectType: "user", SubjectID: "mallory"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := sortedBy(tups(tc.want...), subjectKey)
			sameTuples(t, readBySubjectAll(t, ctx, s, 0, tc.f, 0), want)
			sameTuples(t, readBySubjectAll(t, ctx, s, r1, tc.f, 1), want)
		})
	}
	r2 := write(t, ctx, s, del("order:o1#owner@user:alice"))
	alice := storage.SubjectFilter{SubjectType: "user", SubjectID: "alice"}
	sameTuples(t, readBySubjectAll(t, ctx, s, r2, alice, 0), tups(filterData[8]))
	sameTuples(t, readBySubjectAll(t, ctx, s, r1, alice, 0), tups(filterData[0], filterData[8]))
}

func testObjectIDs(t *testing.T, ctx context.Context, s storage.Store) {
	if ids := objectIDsAll(t, ctx, s, 0, "order", 0); len(ids) != 0 {
		t.Fatalf("ObjectIDs of an empty store = %v", ids)
	}
	r1 := write(t, ctx, s, touch(filterData...))
	want := []string{"o1", "o2", "o3"}
	for _, limit := range []int{0, 1, 2, 3} {
		if got := objectIDsAll(t, ctx, s, r1, "order", limit); !slices.Equal(got, want) {
			t.Fatalf("limit %d: ObjectIDs = %v, want %v", limit, got, want)
		}
	}
	got, next, err := s.ObjectIDs(ctx, r1, "order", "", 3)
	must(t, err)
	if !slices.Equal(got, want) || next != "" {
		t.Fatalf("exact page: %v, cursor %q", got, next)
	}
	// o3 loses its only tuple: gone at r2, still there at r1; o1 keeps others.
	r2 := write(t, ctx, s, del("order:o3#owner@user:Alice", "order:o1#owner@user:alice"))
	if got := objectIDsAll(t, ctx, s, r2, "order", 1); !slices.Equal(got, []string{"o1", "o2"}) {
		t.Fatalf("at r2: %v", got)
	}
	if got := objectIDsAll(t, ctx, s, r1, "order", 1); !slices.Equal(got, want) {
		t.Fatalf("at r1: %v", got)
	}
	if got := objectIDsAll(t, ctx, s, 0, "team", 0); !slices.Equal(got, []string{"eng"}) {
		t.Fatalf("team ids: %v", got)
	}
	// Many ids, paged: each exactly once, in byte order.
	var ws []storage.TupleWrite
	var many []string
	for i := range 250 {
		id := fmt.Sprintf("%c%d", "Aa_~0"[i%5], i)
		many = append(many, id)
		ws = append(ws, touch("folder:"+id+"#owner@user:alice", "folder:"+id+"#viewer@user:bob")...)
	}
	write(t, ctx, s, ws)
	slices.SortFunc(many, strings.Compare)
	if got := objectIDsAll(t, ctx, s, 0, "folder", 30); !slices.Equal(got, many) {
		t.Fatalf("folder ids: %d ids, want %d in order", len(got), len(many))
	}
}
