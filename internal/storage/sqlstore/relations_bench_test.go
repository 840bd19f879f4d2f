package sqlstore_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/storage"
	"github.com/gatehouse/gatehouse/internal/storage/sqlstore"
)

// seedGroups bulk-loads n tuples: teams t0..t(n/10) whose members are 8
// users and the next two teams' members (nested groups), and documents
// whose viewers are teams; it returns the head revision.
func seedGroups(b *testing.B, s *sqlstore.Store, n int) storage.Revision {
	b.Helper()
	teams := n / 20
	var batch []storage.RelationTuple
	var rev storage.Revision
	flush := func() {
		r, err := s.BulkLoadTuples(b.Context(), batch)
		if err != nil {
			b.Fatal(err)
		}
		rev, batch = r, batch[:0]
	}
	for i := range teams {
		for u := range 8 {
			batch = append(batch, storage.RelationTuple{ObjectType: "team", ObjectID: fmt.Sprintf("t%d", i), Relation: "member",
				SubjectType: "user", SubjectID: fmt.Sprintf("u%d", (i*8+u)%50000)})
		}
		for k := 1; k <= 2; k++ {
			batch = append(batch, storage.RelationTuple{ObjectType: "team", ObjectID: fmt.Sprintf("t%d", i), Relation: "member",
				SubjectType: "team", SubjectID: fmt.Sprintf("t%d", (i+k)%teams), SubjectRelation: "member"})
		}
		for d := range 10 {
			batch = append(batch, storage.RelationTuple{ObjectType: "doc", ObjectID: fmt.Sprintf("d%d-%d", i, d), Relation: "viewer",
				SubjectType: "team", SubjectID: fmt.Sprintf("t%d", i), SubjectRelation: "member"})
		}
		if len(batch) >= 100000 {
			flush()
		}
	}
	flush()
	return rev
}

// benchmarkNestedCheck walks 5 levels of nested groups, one ReadTuples per
// level for the direct member and one for the subject sets, as a check does.
func benchmarkNestedCheck(b *testing.B, s *sqlstore.Store, n int) {
	start := time.Now()
	rev := seedGroups(b, s, n)
	b.Logf("seeded %d tuples in %v", n, time.Since(start))
	ctx := b.Context()
	member, direct := "member", ""
	var durs []time.Duration
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		t0 := time.Now()
		ids := []string{fmt.Sprintf("t%d", (i*7919)%(n/20))}
		for range 5 {
			if _, _, err := s.ReadTuples(ctx, rev, storage.TupleFilter{ObjectType: "team", ObjectIDs: ids, Relation: "member",
				SubjectType: "user", SubjectID: "nobody", SubjectRelation: &direct}, "", 1); err != nil {
				b.Fatal(err)
			}
			sets, _, err := s.ReadTuples(ctx, rev, storage.TupleFilter{ObjectType: "team", ObjectIDs: ids, Relation: "member",
				SubjectType: "team", SubjectRelation: &member}, "", 1000)
			if err != nil {
				b.Fatal(err)
			}
			ids = ids[:0]
			for _, t := range sets {
				ids = append(ids, t.SubjectID)
			}
		}
		durs = append(durs, time.Since(t0))
	}
	slices.Sort(durs)
	b.ReportMetric(float64(durs[len(durs)*95/100].Microseconds()), "p95-µs")
}

// BenchmarkNestedCheck: go test -run '^$' -bench NestedCheck/postgres-1M
// (the 1M seed takes a while).
func BenchmarkNestedCheck(b *testing.B) {
	b.Run("sqlite-100k", func(b *testing.B) { benchmarkNestedCheck(b, newSQLite(b), 100000) })
	b.Run("postgres-100k", func(b *testing.B) { benchmarkNestedCheck(b, openPG(b), 100000) })
	b.Run("postgres-1M", func(b *testing.B) { benchmarkNestedCheck(b, openPG(b), 1000000) })
}
