package rebac

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestCheckRandomGroupGraphs compares Check and ListSubjects with plain
// reachability on random (cyclic) group graphs.
func TestCheckRandomGroupGraphs(t *testing.T) {
	ctx := context.Background()
	schema := mustSchema(t, `definition user {}
definition group { relation member: user | group#member }
definition doc {
  relation v: group#member
  relation w: group#member | user
  permission p = v & w
  permission q = v - w
}`)
	budget, checks := 0, 0
	defer func() {
		if budget*10 > checks {
			t.Errorf("%d of %d checks ran out of budget", budget, checks)
		}
	}()
	for seed := uint64(1); seed <= 12; seed++ {
		rng := rand.New(rand.NewPCG(seed, 42))
		const groups, users = 60, 10
		edges := map[int][]int{}
		direct := map[int][]int{}
		m := NewMemReader()
		var ts []string
		for g := 0; g < groups; g++ {
			for range rng.IntN(4) {
				h := rng.IntN(groups)
				if !slices.Contains(edges[g], h) {
					edges[g] = append(edges[g], h)
					ts = append(ts, fmt.Sprintf("group:g%d#member@group:g%d#member", g, h))
				}
			}
			if rng.IntN(5) == 0 {
				u := rng.IntN(users)
				direct[g] = append(direct[g], u)
				ts = append(ts, fmt.Sprintf("group:g%d#member@user:u%d", g, u))
			}
		}
		docV, docW := map[int][]int{}, map[int][]int{}
		for d := 0; d < 10; d++ {
			for range 3 {
				docV[d] = append(docV[d], rng.IntN(groups))
				docW[d] = append(docW[d], rng.IntN(groups))
			}
			for _, g := range docV[d] {
				ts = append(ts, fmt.Sprintf("doc:d%d#v@group:g%d#member", d, g))
			}
			for _, g := range docW[d] {
				ts = append(ts, fmt.Sprintf("doc:d%d#w@group:g%d#member", d, g))
			}
		}
		ts = slices.Compact(slices.Sorted(slices.Values(ts)))
		rev := m.MustWrite(ts...)
		reach := func(g int) map[int]bool {
			seen, out := map[int]bool{g: true}, map[int]bool{}
			stack := []int{g}
			for len(stack) > 0 {
				n := stack[len(stack)-1]
				stack = stack[:len(stack)-1]
				for _, u := range direct[n] {
					out[u] = true
				}
				for _, h := range edges[n] {
					if !seen[h] {
						seen[h] = true
						stack = append(stack, h)
					}
				}
			}
			return out
		}
		c := NewChecker(schema, m, Limits{Timeout: 5e9, CacheEntries: -1})
		for u := 0; u < users; u++ {
			var want []string
			for g := 0; g < groups; g++ {
				if reach(g)[u] {
					want = append(want, fmt.Sprint("g", g))
				}
			}
			slices.Sort(want)
			got, next, err := c.ListObjects(ctx, rev, "group", "member", Subject{Type: "user", ID: fmt.Sprint("u", u)}, "", 1000)
			if err != nil || next != "" || !slices.Equal(got, want) {
				t.Fatalf("seed %d: ListObjects u%d = %v %q %v; want %v", seed, u, got, next, err, want)
			}
		}
		union := func(gs []int) map[int]bool {
			out := map[int]bool{}
			for _, g := range gs {
				for u := range reach(g) {
					out[u] = true
				}
			}
			return out
		}
		for d := 0; d < 10; d++ {
			v, w := union(docV[d]), union(docW[d])
			for _, perm := range []string{"p", "q"} {
				var want []string
				for u := 0; u < users; u++ {
					if perm == "p" && v[u] && w[u] || perm == "q" && v[u] && !w[u] {
						want = append(want, fmt.Sprint("u", u))
					}
				}
				slices.Sort(want)
				obj := Object{"doc", fmt.Sprint("d", d)}
				got, _, err := c.ListSubjects(ctx, rev, obj, perm, "user", "", 0)
				if err != nil || !slices.Equal(got, want) {
					t.Fatalf("seed %d: ListSubjects d%d#%s = %v, %v; want %v", seed, d, perm, got, err, want)
				}
				for u := 0; u < users; u++ {
					res, err := c.Check(ctx, rev, obj, perm, Subject{Type: "user", ID: fmt.Sprint("u", u)})
					if err != nil || res.Allowed != slices.Contains(want, fmt.Sprint("u", u)) {
						t.Fatalf("seed %d: Check d%d#%s u%d = %+v, %v", seed, d, perm, u, res, err)
					}
				}
			}
		}
		for g := 0; g < groups; g++ {
			want := reach(g)
			for u := 0; u < users; u++ {
				checks++
				res, err := c.Check(ctx, rev, Object{"group", fmt.Sprint("g", g)}, "member", Subject{Type: "user", ID: fmt.Sprint("u", u)})
				if errors.Is(err, ErrBudget) {
					budget++
					continue // allowed outcome, never a wrong answer
				}
				if err != nil || res.Allowed != want[u] {
					t.Fatalf("seed %d: g%d member u%d = %+v, %v; want %v", seed, g, u, res, err, want[u])
				}
			}
			var wantIDs []string
			for u := range want {
				wantIDs = append(wantIDs, fmt.Sprint("u", u))
			}
			slices.Sort(wantIDs)
			got, _, err := c.ListSubjects(ctx, rev, Object{"group", fmt.Sprint("g", g)}, "member", "user", "", 0)
			if err == nil && !slices.Equal(got, wantIDs) || err != nil && !errors.Is(err, ErrBudget) {
				t.Fatalf("seed %d: ListSubjects g%d = %v, %v; want %v", seed, g, got, err, wantIDs)
			}
		}
	}
}

// TestBatchSiblings: objects checked in one batch reach each other (c is a
// member of b); a sibling being evaluated at the same time is not a cycle.
func TestBatchSiblings(t *testing.T) {
	ctx := context.Background()
	s := mustSchema(t, `definition user {}
definition group { relation member: user | group#member }
definition doc { relation viewer: group#member }`)
	m := NewMemReader()
	rev := m.MustWrite("doc:d1#viewer@group:b#member", "doc:d2#viewer@group:c#member",
		"group:c#member@group:b#member", "group:b#member@group:e#member", "group:e#member@user:x",
		"doc:d3#viewer@group:f#member", "group:f#member@group:g#member", "group:g#member@group:f#member")
	c := NewChecker(s, m, Limits{})
	ids, next, err := c.ListObjects(ctx, rev, "doc", "viewer", Subject{Type: "user", ID: "x"}, "", 0)
	if err != nil || next != "" || !slices.Equal(ids, []string{"d1", "d2"}) {
		t.Fatalf("ListObjects = %v %q %v", ids, next, err)
	}
	ids, next, err = c.ListObjects(ctx, rev, "group", "member", Subject{Type: "user", ID: "x"}, "", 0)
	if err != nil || next != "" || !slices.Equal(ids, []string{"b", "c", "e"}) {
		t.Fatalf("ListObjects groups = %v %q %v", ids, next, err)
	}
	for _, obj := range []string{"d1", "d2"} {
		got, _, err := c.ListSubjects(ctx, rev, Object{"doc", obj}, "viewer", "user", "", 0)
		if err != nil || !slices.Equal(got, []string{"x"}) {
			t.Fatalf("ListSubjects %s = %v, %v", obj, got, err)
		}
	}
}
