package rebac

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestCheckRandomRecursivePermissions compares Check with a least-fixpoint
// reference on random cyclic graphs whose recursion goes through
// permissions built with exclusion and intersection (the subtracted and
// intersected relations are direct, so the program is stratified and has
// one exact answer). Any error other than a budget is a failure; a wrong
// allow is a fail-open.
func TestCheckRandomRecursivePermissions(t *testing.T) {
	ctx := context.Background()
	schema := mustSchema(t, `definition user {}
definition group {
  relation member: user | group#member | group#ok | group#both
  relation banned: user
  relation vetted: user
  permission ok = member - banned
  permission both = member & vetted
}`)
	const groups, users = 30, 6
	for seed := uint64(1); seed <= 20; seed++ {
		rng := rand.New(rand.NewPCG(seed, 7))
		type edge struct {
			to  int
			rel string // member, ok or both
		}
		edges := map[int][]edge{}
		direct, banned, vetted := map[[2]int]bool{}, map[[2]int]bool{}, map[[2]int]bool{}
		var ts []string
		rels := []string{"member", "ok", "both"}
		for g := range groups {
			for range rng.IntN(3) {
				e := edge{to: rng.IntN(groups), rel: rels[rng.IntN(3)]}
				if !slices.Contains(edges[g], e) {
					edges[g] = append(edges[g], e)
					ts = append(ts, fmt.Sprintf("group:g%d#member@group:g%d#%s", g, e.to, e.rel))
				}
			}
			for u := range users {
				if rng.IntN(8) == 0 {
					direct[[2]int{g, u}] = true
					ts = append(ts, fmt.Sprintf("group:g%d#member@user:u%d", g, u))
				}
				if rng.IntN(4) == 0 {
					banned[[2]int{g, u}] = true
					ts = append(ts, fmt.Sprintf("group:g%d#banned@user:u%d", g, u))
				}
				if rng.IntN(2) == 0 {
					vetted[[2]int{g, u}] = true
					ts = append(ts, fmt.Sprintf("group:g%d#vetted@user:u%d", g, u))
				}
			}
		}
		m := NewMemReader()
		rev := m.MustWrite(ts...)
		// Reference: iterate member/ok/both to the least fixpoint per user.
		member := map[[2]int]bool{}
		val := func(rel string, g, u int) bool {
			k := [2]int{g, u}
			switch rel {
			case "ok":
				return member[k] && !banned[k]
			case "both":
				return member[k] && vetted[k]
			}
			return member[k]
		}
		for changed := true; changed; {
			changed = false
			for g := range groups {
				for u := range users {
					k := [2]int{g, u}
					if member[k] {
						continue
					}
					v := direct[k]
					for _, e := range edges[g] {
						v = v || val(e.rel, e.to, u)
					}
					if v {
						member[k], changed = true, true
					}
				}
			}
		}
		for _, c := range []*Checker{
			NewChecker(schema, m, Limits{Timeout: 5e9, CacheEntries: -1}),
			NewChecker(schema, m, Limits{Timeout: 5e9}), // cached answers must be as exact
		} {
			for g := range groups {
				for u := range users {
					for _, perm := range rels {
						res, err := c.Check(ctx, rev, Object{"group", fmt.Sprint("g", g)}, perm, Subject{Type: "user", ID: fmt.Sprint("u", u)})
						if errors.Is(err, ErrBudget) {
							continue
						}
						if want := val(perm, g, u); err != nil || res.Allowed != want {
							t.Fatalf("seed %d: g%d#%s@u%d = %+v, %v; want %v", seed, g, perm, u, res, err, want)
						}
					}
				}
			}
		}
	}
}
