package conformance

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/storage"
)

// allChanges follows the feed from after with limit until it is drained.
func allChanges(t *testing.T, ctx context.Context, s storage.Store, after storage.Revision, limit int) []storage.Change {
	t.Helper()
	var out []storage.Change
	for range 100000 {
		cs, err := s.Changes(ctx, after, limit)
		must(t, err)
		if len(cs) == 0 {
			return out
		}
		out = append(out, cs...)
		after = cs[len(cs)-1].Revision
	}
	t.Fatal("Changes does not terminate")
	return nil
}

// stripAt checks that every change has a time and zeroes it for comparison.
func stripAt(t *testing.T, cs []storage.Change) []storage.Change {
	t.Helper()
	out := slices.Clone(cs)
	for i := range out {
		if out[i].At.IsZero() || time.Since(out[i].At) > time.Hour || time.Until(out[i].At) > time.Hour {
			t.Fatalf("change %d has time %v, want about now", i, out[i].At)
		}
		out[i].At = time.Time{}
	}
	return out
}

func tupleChange(rev storage.Revision, kind storage.ChangeKind, s string) storage.Change {
	return storage.Change{Revision: rev, Kind: kind, Tuple: tup(s)}
}

func testEntitiesAndChanges(t *testing.T, newStore func(*testing.T) storage.Store) {
	sub(t, newStore, "EntityVersions", func(t *testing.T, ctx context.Context, s storage.Store) {
		_, err := s.GetEntity(ctx, "order", "o1")
		wantErr(t, err, storage.ErrNotFound)
		put := func(version int64, attrs string) (storage.Revision, bool) {
			t.Helper()
			rev, applied, err := s.PutEntity(ctx, storage.Entity{Type: "order", ID: "o1", Attrs: []byte(attrs), Version: version,
				Revision: 999, Deleted: true}) // Revision and Deleted are the store's
			must(t, err)
			return rev, applied
		}
		get := func() storage.Entity {
			t.Helper()
			e, err := s.GetEntity(ctx, "order", "o1")
			must(t, err)
			return e
		}
		r1, ok := put(2, `{"amount":10}`)
		if !ok || r1 != 1 {
			t.Fatalf("first put: revision %d applied %v", r1, ok)
		}
		equal(t, get(), storage.Entity{Type: "order", ID: "o1", Attrs: []byte(`{"amount":10}`), Version: 2, Revision: r1})
		for _, v := range []int64{1, 2, -5} {
			if rev, ok := put(v, `{"amount":99}`); ok || rev != r1 {
				t.Fatalf("put of version %d at stored 2: revision %d applied %v", v, rev, ok)
			}
		}
		r2, ok := put(3, `{"amount":20}`)
		if !ok || r2 != r1+1 {
			t.Fatalf("newer put: revision %d applied %v", r2, ok)
		}
		if rev, ok, err := s.DeleteEntity(ctx, "order", "o1", 3); err != nil || ok || rev != r2 {
			t.Fatalf("delete at the stored version: %d %v %v", rev, ok, err)
		}
		r3, ok, err := s.DeleteEntity(ctx, "order", "o1", 4)
		if err != nil || !ok || r3 != r2+1 {
			t.Fatalf("delete: %d %v %v", r3, ok, err)
		}
		_, err = s.GetEntity(ctx, "order", "o1")
		wantErr(t, err, storage.ErrNotFound)
		// The tombstone keeps its version: an older put replayed late is ignored.
		if rev, ok := put(4, `{"amount":30}`); ok || rev != r3 {
			t.Fatalf("put at the tombstone's version: %d %v", rev, ok)
		}
		if rev, ok, err := s.DeleteEntity(ctx, "order", "o1", 4); err != nil || ok || rev != r3 {
			t.Fatalf("repeated delete: %d %v %v", rev, ok, err)
		}
		r4, ok := put(5, `{"amount":40}`)
		if !ok || r4 != r3+1 {
			t.Fatalf("put after the tombstone: %d %v", r4, ok)
		}
		equal(t, get(), storage.Entity{Type: "order", ID: "o1", Attrs: []byte(`{"amount":40}`), Version: 5, Revision: r4})
		// Delete of an entity never stored leaves a tombstone.
		r5, ok, err := s.DeleteEntity(ctx, "order", "o2", 7)
		if err != nil || !ok || r5 != r4+1 {
			t.Fatalf("delete of a missing entity: %d %v %v", r5, ok, err)
		}
		if rev, ok, err := s.PutEntity(ctx, storage.Entity{Type: "order", ID: "o2", Attrs: []byte(`{}`), Version: 6}); err != nil || ok || rev != r5 {
			t.Fatalf("put below a tombstone of a never-stored entity: %d %v %v", rev, ok, err)
		}
		// Entities and tuples share one revision sequence.
		if rev := write(t, ctx, s, touch("order:o1#owner@user:alice")); rev != r5+1 {
			t.Fatalf("tuple write after entity writes: revision %d, want %d", rev, r5+1)
		}
		// Keys are case-sensitive and independent per type.
		_, err = s.GetEntity(ctx, "order", "O1")
		wantErr(t, err, storage.ErrNotFound)
		_, err = s.GetEntity(ctx, "invoice", "o1")
		wantErr(t, err, storage.ErrNotFound)
		for _, tc := range []struct{ name, typ, id string }{{"empty-type", "", "o1"}, {"empty-id", "order", ""}} {
			t.Run("AZ-05/"+tc.name, func(t *testing.T) {
				_, _, err := s.PutEntity(ctx, storage.Entity{Type: tc.typ, ID: tc.id, Version: 100})
				wantErr(t, err, storage.ErrInvalid)
				_, _, err = s.DeleteEntity(ctx, tc.typ, tc.id, 100)
				wantErr(t, err, storage.ErrInvalid)
			})
		}
	})

	sub(t, newStore, "Changes", func(t *testing.T, ctx context.Context, s storage.Store) {
		if cs, err := s.Changes(ctx, 0, 0); err != nil || len(cs) != 0 {
			t.Fatalf("changes of an empty store: %v %v", cs, err)
		}
		r1 := write(t, ctx, s, touch("order:o1#owner@user:alice", "order:o1#viewer@team:eng#member"))
		write(t, ctx, s, touch("order:o1#owner@user:alice")) // no-op
		r2 := write(t, ctx, s, append(append(del("order:o1#owner@user:alice"), touch("order:o2#owner@user:bob")...),
			del("order:o9#owner@user:nobody")...)) // the last is a no-op
		r3, _, err := s.PutEntity(ctx, storage.Entity{Type: "order", ID: "o1", Attrs: []byte(`{"a":1}`), Version: 1})
		must(t, err)
		_, _, err = s.PutEntity(ctx, storage.Entity{Type: "order", ID: "o1", Attrs: []byte(`{"a":2}`), Version: 1}) // ignored
		must(t, err)
		r4, _, err := s.DeleteEntity(ctx, "order", "o1", 2)
		must(t, err)
		want := []storage.Change{
			tupleChange(r1, storage.ChangeTupleTouch, "order:o1#owner@user:alice"),
			tupleChange(r1, storage.ChangeTupleTouch, "order:o1#viewer@team:eng#member"),
			tupleChange(r2, storage.ChangeTupleDelete, "order:o1#owner@user:alice"),
			tupleChange(r2, storage.ChangeTupleTouch, "order:o2#owner@user:bob"),
			{Revision: r3, Kind: storage.ChangeEntityPut, Entity: storage.Entity{Type: "order", ID: "o1", Attrs: []byte(`{"a":1}`), Version: 1, Revision: r3}},
			{Revision: r4, Kind: storage.ChangeEntityDelete, Entity: storage.Entity{Type: "order", ID: "o1", Version: 2, Revision: r4, Deleted: true}},
		}
		if r4 != 4 || head(t, ctx, s) != r4 {
			t.Fatalf("revisions %d %d %d %d, head %d: want 1..4", r1, r2, r3, r4, head(t, ctx, s))
		}
		cs, err := s.Changes(ctx, 0, 0)
		must(t, err)
		equal(t, stripAt(t, cs), want)
		for _, tc := range []struct {
			after storage.Revision
			limit int
			want  []storage.Change
		}{
			{r1, 0, want[2:]},
			{r2, 100, want[4:]},
			{r4, 0, nil},
			{r4 + 100, 0, nil},
			// Beyond int64: never read as a negative revision (which
			// would replay the whole feed).
			{1 << 63, 0, nil},
			{math.MaxUint64, 0, nil},
			{0, 1, want[:2]}, // the first revision is returned whole
			{0, 2, want[:2]},
			{0, 3, want[:2]}, // r2 is not split
			{0, 4, want[:4]},
			{0, 5, want[:5]},
			{r1, 1, want[2:4]},
			{r1, 3, want[2:5]},
		} {
			t.Run(fmt.Sprintf("after-%d-limit-%d", tc.after, tc.limit), func(t *testing.T) {
				cs, err := s.Changes(ctx, tc.after, tc.limit)
				must(t, err)
				equal(t, stripAt(t, cs), tc.want)
			})
		}
		for _, limit := range []int{1, 2, 3} {
			equal(t, stripAt(t, allChanges(t, ctx, s, 0, limit)), want)
		}
		for _, at := range []storage.Revision{1 << 63, math.MaxUint64} {
			if _, _, err := s.ReadTuples(ctx, at, storage.TupleFilter{ObjectType: "order"}, "", 0); !errors.Is(err, storage.ErrRevisionAhead) {
				t.Errorf("ReadTuples at %d: %v, want ErrRevisionAhead", at, err)
			}
			if _, _, err := s.ObjectIDs(ctx, at, "order", "", 0); !errors.Is(err, storage.ErrRevisionAhead) {
				t.Errorf("ObjectIDs at %d: %v, want ErrRevisionAhead", at, err)
			}
			f := storage.SubjectFilter{SubjectType: "user", SubjectID: "bob"}
			if _, _, err := s.ReadBySubject(ctx, at, f, "", 0); !errors.Is(err, storage.ErrRevisionAhead) {
				t.Errorf("ReadBySubject at %d: %v, want ErrRevisionAhead", at, err)
			}
		}
	})

	sub(t, newStore, "AZ-05/concurrent-writes", testConcurrentWrites)
	sub(t, newStore, "AZ-05/concurrent-same-tuple", testConcurrentSameTuple)
	sub(t, newStore, "AZ-05/concurrent-entity", testConcurrentEntity)
}

// testConcurrentWrites: 8 writers × 50 effective writes (and no-ops) give
// 400 distinct revisions 1..400, and the feed lists every change once, in
// revision order, with the tuple of the write that got that revision.
func testConcurrentWrites(t *testing.T, ctx context.Context, s storage.Store) {
	const writers, perWriter = 8, 50
	revs := make([][]storage.Revision, writers)
	errs := race(writers, func(g int) error {
		for j := range perWriter {
			ws := touch(fmt.Sprintf("doc:g%d-%d#owner@user:u%d", g, j, g))
			rev, err := s.WriteTuples(ctx, ws)
			if err != nil {
				return err
			}
			revs[g] = append(revs[g], rev)
			if j%10 == 9 { // a no-op returns a head at least as new as our last write
				again, err := s.WriteTuples(ctx, ws)
				if err != nil {
					return err
				}
				if again < rev {
					return fmt.Errorf("no-op write returned %d, below the writer's own %d", again, rev)
				}
			}
		}
		return nil
	})
	for _, err := range errs {
		must(t, err)
	}
	byRev := map[storage.Revision]string{}
	for g, rs := range revs {
		for j, r := range rs {
			if j > 0 && r <= rs[j-1] {
				t.Fatalf("writer %d: revision %d after %d", g, r, rs[j-1])
			}
			if prev, dup := byRev[r]; dup {
				t.Fatalf("revision %d given to %s and g%d-%d", r, prev, g, j)
			}
			byRev[r] = fmt.Sprintf("g%d-%d", g, j)
		}
	}
	if h := head(t, ctx, s); h != writers*perWriter {
		t.Fatalf("head %d, want %d", h, writers*perWriter)
	}
	cs := allChanges(t, ctx, s, 0, 37)
	if len(cs) != writers*perWriter {
		t.Fatalf("%d changes, want %d", len(cs), writers*perWriter)
	}
	for i, c := range cs {
		if c.Revision != storage.Revision(i+1) || c.Kind != storage.ChangeTupleTouch {
			t.Fatalf("change %d: revision %d kind %d", i, c.Revision, c.Kind)
		}
		if want := "doc:" + byRev[c.Revision]; c.Tuple.ObjectType+":"+c.Tuple.ObjectID != want {
			t.Fatalf("change at revision %d is about %s:%s, want %s", c.Revision, c.Tuple.ObjectType, c.Tuple.ObjectID, want)
		}
	}
	if ids := objectIDsAll(t, ctx, s, 0, "doc", 1000); len(ids) != writers*perWriter {
		t.Fatalf("%d live objects, want %d", len(ids), writers*perWriter)
	}
}

// testConcurrentSameTuple: of concurrent touches (then deletes) of one tuple
// exactly one takes effect.
func testConcurrentSameTuple(t *testing.T, ctx context.Context, s storage.Store) {
	const n = 8
	f := storage.TupleFilter{ObjectType: "order", ObjectIDs: []string{"o1"}}
	for round, op := range []storage.TupleOp{storage.TupleTouch, storage.TupleDelete, storage.TupleTouch} {
		revs := make([]storage.Revision, n)
		errs := race(n, func(i int) error {
			var err error
			revs[i], err = s.WriteTuples(ctx, writes(op, "order:o1#owner@user:alice"))
			return err
		})
		for _, err := range errs {
			must(t, err)
		}
		want := storage.Revision(round + 1)
		for i, r := range revs {
			if r != want {
				t.Fatalf("round %d writer %d: revision %d, want %d", round, i, r, want)
			}
		}
		if h := head(t, ctx, s); h != want {
			t.Fatalf("round %d: head %d, want %d", round, h, want)
		}
	}
	sameTuples(t, readAll(t, ctx, s, 0, f, 0), tups("order:o1#owner@user:alice"))
	sameTuples(t, readAll(t, ctx, s, 2, f, 0), nil)
	equal(t, stripAt(t, allChanges(t, ctx, s, 0, 0)), []storage.Change{
		tupleChange(1, storage.ChangeTupleTouch, "order:o1#owner@user:alice"),
		tupleChange(2, storage.ChangeTupleDelete, "order:o1#owner@user:alice"),
		tupleChange(3, storage.ChangeTupleTouch, "order:o1#owner@user:alice"),
	})
}

// testConcurrentEntity: concurrent puts of versions 1..8 end at version 8;
// every applied put has its own revision and feed entry.
func testConcurrentEntity(t *testing.T, ctx context.Context, s storage.Store) {
	const n = 8
	type result struct {
		rev     storage.Revision
		applied bool
	}
	res := make([]result, n)
	errs := race(n, func(i int) error {
		rev, ok, err := s.PutEntity(ctx, storage.Entity{Type: "order", ID: "o1", Attrs: fmt.Appendf(nil, `{"v":%d}`, i+1), Version: int64(i + 1)})
		res[i] = result{rev, ok}
		return err
	})
	for _, err := range errs {
		must(t, err)
	}
	applied := map[storage.Revision]int64{}
	for i, r := range res {
		if r.applied {
			if _, dup := applied[r.rev]; dup {
				t.Fatalf("revision %d applied twice", r.rev)
			}
			applied[r.rev] = int64(i + 1)
		}
	}
	if _, ok := applied[storage.Revision(len(applied))]; !ok || !res[n-1].applied {
		t.Fatalf("applied revisions %v: want 1..k with version %d among them", applied, n)
	}
	e, err := s.GetEntity(ctx, "order", "o1")
	must(t, err)
	if e.Version != n || string(e.Attrs) != fmt.Sprintf(`{"v":%d}`, n) {
		t.Fatalf("final entity %+v, want version %d", e, n)
	}
	cs := allChanges(t, ctx, s, 0, 0)
	if len(cs) != len(applied) {
		t.Fatalf("%d changes for %d applied puts", len(cs), len(applied))
	}
	for i, c := range cs {
		if c.Revision != storage.Revision(i+1) || c.Entity.Version != applied[c.Revision] || (i > 0 && c.Entity.Version <= cs[i-1].Entity.Version) {
			t.Fatalf("change %d: %+v (applied %v)", i, c, applied)
		}
	}
}
