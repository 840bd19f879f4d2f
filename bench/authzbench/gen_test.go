package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/authz/policy"
	"github.com/gatehouse/gatehouse/internal/rebac"
	"github.com/gatehouse/gatehouse/internal/storage"
)

// TestGeneratedPolicies loads both sizes and checks that the small set is a
// prefix of the large one and that, because every question targets a bucket
// of the small set, both sizes answer every question alike (the index hands
// Cedar the same bucket).
func TestGeneratedPolicies(t *testing.T) {
	dir := t.TempDir()
	sets := map[int]*policy.Set{}
	for _, n := range []int{10, 1000} {
		if err := writePolicies(policyDir(dir, n), n); err != nil {
			t.Fatal(err)
		}
		s, err := policy.Load(policyDir(dir, n))
		if err != nil {
			t.Fatalf("size %d: %v", n, err)
		}
		if s.Len() != n {
			t.Fatalf("size %d: %d policies", n, s.Len())
		}
		if got := s.Relations("a7"); strings.Join(got, ",") != "owner,viewer" {
			t.Fatalf("relations of a7 = %v", got)
		}
		sets[n] = s
	}
	small, err := os.ReadFile(filepath.Join(policyDir(dir, 10), "gen.cedar"))
	if err != nil {
		t.Fatal(err)
	}
	large, err := os.ReadFile(filepath.Join(policyDir(dir, 1000), "gen.cedar"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(large), string(small)) {
		t.Fatal("the 10-policy set is not a prefix of the 1,000-policy set")
	}
	qs, tuples := questions(256)
	if len(tuples) == 0 {
		t.Fatal("no relation tuples generated")
	}
	allowed := 0
	for i, req := range requests(qs) {
		d10, err10 := sets[10].Authorize(req)
		d1000, err1000 := sets[1000].Authorize(req)
		if err10 != nil || err1000 != nil {
			t.Fatalf("question %d: %v / %v", i, err10, err1000)
		}
		if d10.Allow != d1000.Allow || strings.Join(d10.Policies, ",") != strings.Join(d1000.Policies, ",") {
			t.Fatalf("question %d: 10 policies %+v, 1000 policies %+v", i, d10, d1000)
		}
		if d10.Allow {
			allowed++
		}
	}
	if allowed == 0 || allowed == len(qs) {
		t.Fatalf("%d of %d questions allowed: want a mix", allowed, len(qs))
	}
}

func TestRelSchemaAcceptsTuples(t *testing.T) {
	s, err := rebac.ParseSchema("bench.zed", []byte(relSchema()))
	if err != nil {
		t.Fatal(err)
	}
	_, tuples := questions(64)
	for _, x := range tuples {
		tp, err := rebac.ParseTuple(x)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.ValidateTuple(tp); err != nil {
			t.Fatalf("%s: %v", x, err)
		}
	}
}

func tinyGraph() graph {
	return graph{users: 300, perUser: 2, levels: 4, fanout: 2, top: 6, docs: 120, viewers: 2, seed: 5}
}

// TestGraph checks the generator against its own description: the tuple
// count, no duplicates, valid tuples, and every drawn pair's expected answer
// as the real checker computes it over the tuples in memory.
func TestGraph(t *testing.T) {
	g := tinyGraph()
	if err := g.check(); err != nil {
		t.Fatal(err)
	}
	schema, err := rebac.ParseSchema("graph.zed", []byte(graphSchema))
	if err != nil {
		t.Fatal(err)
	}
	mem := rebac.NewMemReader()
	seen := map[storage.RelationTuple]bool{}
	batches := 0
	err = g.tuples(50, func(ts []storage.RelationTuple) error {
		batches++
		if len(ts) > 50 {
			return fmt.Errorf("batch of %d", len(ts))
		}
		var ws []storage.TupleWrite
		for _, tp := range ts {
			if seen[tp] {
				return fmt.Errorf("duplicate %s", rebac.FormatTuple(tp))
			}
			seen[tp] = true
			if err := schema.ValidateTuple(tp); err != nil {
				return err
			}
			ws = append(ws, storage.TupleWrite{Op: storage.TupleTouch, Tuple: tp})
		}
		_, err := mem.WriteTuples(context.Background(), ws)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != g.tupleCount() || batches != (g.tupleCount()+49)/50 {
		t.Fatalf("%d tuples in %d batches, want %d", len(seen), batches, g.tupleCount())
	}
	head, err := mem.HeadRevision(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	c := rebac.NewChecker(schema, mem, rebac.Limits{CacheEntries: -1, Timeout: time.Minute})
	ps := g.pairs(40, 3)
	allowed := 0
	for _, p := range ps {
		res, err := c.Check(context.Background(), head, rebac.Object{Type: "doc", ID: p.doc}, "view", rebac.Subject{Type: "user", ID: p.user})
		if err != nil {
			t.Fatal(err)
		}
		if res.Allowed != p.allowed {
			t.Fatalf("doc:%s#view@user:%s = %v, want %v", p.doc, p.user, res.Allowed, p.allowed)
		}
		if p.allowed {
			allowed++
			// doc -> top group -> ... -> leaf group -> user: levels+1 tuples.
			if len(res.Path) != g.levels+1 {
				t.Fatalf("path %v: want the full %d-deep walk", res.Path, g.levels)
			}
		}
	}
	if allowed != len(ps)/2 {
		t.Fatalf("%d of %d pairs allowed, want half", allowed, len(ps))
	}
}

func TestDefaultGraphShape(t *testing.T) {
	g := defaultGraph()
	if err := g.check(); err != nil {
		t.Fatal(err)
	}
	if n := g.tupleCount(); n < 990_000 || n > 1_000_000 {
		t.Fatalf("%d tuples, want about 1,000,000", n)
	}
	if g.levels != 5 || g.users != 100_000 {
		t.Fatalf("shape %s", g.shape())
	}
}
