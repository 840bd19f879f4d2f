package main

import (
	"fmt"
	"math/rand/v2"
	"slices"

	"github.com/gatehouse/gatehouse/internal/storage"
)

// graphSchema is the relationship schema of the nested-groups benchmark.
const graphSchema = `definition user {}
definition group {
  relation member: user | group#member
}
definition doc {
  relation owner: user
  relation viewer: user | group#member
  permission view = owner + viewer
}
`

// graph is the nested-groups benchmark data, generated deterministically
// from its shape (the same shape always yields the same tuples, so a loaded
// database can be reused):
//
//   - users u0..u<users-1>, each a direct member of perUser distinct leaf
//     groups (level 0);
//   - groups nested levels deep: level l+1 group i has the level-l groups
//     i*fanout .. i*fanout+fanout-1 as members (group:g<l+1>_<i>#member@
//     group:g<l>_<j>#member), top level (levels-1) has top groups;
//   - docs d0..d<docs-1>, each with one owner (a user) and viewers top
//     groups (doc:d#viewer@group:g<levels-1>_<t>#member).
//
// A doc is viewable by its owner and by every user under its viewer groups:
// proving it walks doc -> top group -> ... -> leaf group -> user, levels
// groups deep.
type graph struct {
	users, perUser, levels, fanout, top, docs, viewers int
	seed                                               uint64
}

// defaultGraph is the shape: 100,000 users, groups nested 5 deep,
// 999,999 tuples in all.
func defaultGraph() graph {
	g := graph{users: 100000, perUser: 3, levels: 5, fanout: 3, top: 400, viewers: 2, seed: 5}
	g.docs = (1_000_000 - g.users*g.perUser - g.nestTuples()) / (1 + g.viewers)
	return g
}

// groupsAt is the number of groups at level l (0 = leaves).
func (g graph) groupsAt(l int) int {
	n := g.top
	for range g.levels - 1 - l {
		n *= g.fanout
	}
	return n
}

func (g graph) nestTuples() int {
	n := 0
	for l := 0; l < g.levels-1; l++ {
		n += g.groupsAt(l)
	}
	return n
}

// tupleCount is the number of distinct tuples the graph has.
func (g graph) tupleCount() int {
	return g.users*g.perUser + g.nestTuples() + g.docs*(1+g.viewers)
}

func (g graph) check() error {
	switch {
	case g.users < 1 || g.perUser < 1 || g.levels < 1 || g.fanout < 1 || g.top < 1 || g.docs < 1:
		return fmt.Errorf("graph: every size must be positive: %+v", g)
	case g.viewers < 1 || g.viewers > g.top:
		return fmt.Errorf("graph: viewers must be in [1, top groups]")
	case g.perUser > g.groupsAt(0):
		return fmt.Errorf("graph: a user cannot be in more leaf groups than there are")
	case g.tupleCount() > 10_000_000:
		return fmt.Errorf("graph: %d tuples is more than this benchmark handles", g.tupleCount())
	}
	return nil
}

func groupID(level, i int) string { return fmt.Sprintf("g%d_%d", level, i) }

// leafGroups returns the perUser distinct leaf groups of every user.
func (g graph) leafGroups() [][]int32 {
	r := rand.New(rand.NewPCG(g.seed, 1))
	leaves := g.groupsAt(0)
	out := make([][]int32, g.users)
	flat := make([]int32, g.users*g.perUser)
	for u := range out {
		gs := flat[u*g.perUser : (u+1)*g.perUser : (u+1)*g.perUser]
		for k := range gs {
			for {
				c := int32(r.IntN(leaves))
				if !slices.Contains(gs[:k], c) {
					gs[k] = c
					break
				}
			}
		}
		out[u] = gs
	}
	return out
}

// docInfo returns doc d's owner and its distinct viewer top groups.
func (g graph) docInfo(d int) (owner int, viewers []int) {
	r := rand.New(rand.NewPCG(g.seed+uint64(d)*0x9e3779b97f4a7c15, 2))
	owner = r.IntN(g.users)
	for len(viewers) < g.viewers {
		t := r.IntN(g.top)
		dup := false
		for _, v := range viewers {
			dup = dup || v == t
		}
		if !dup {
			viewers = append(viewers, t)
		}
	}
	return owner, viewers
}

// tuples calls emit with batches of at most batch tuples, in a fixed order.
func (g graph) tuples(batch int, emit func([]storage.RelationTuple) error) error {
	buf := make([]storage.RelationTuple, 0, batch)
	add := func(t storage.RelationTuple) error {
		buf = append(buf, t)
		if len(buf) == batch {
			err := emit(buf)
			buf = buf[:0]
			return err
		}
		return nil
	}
	for u, gs := range g.leafGroups() {
		for _, l := range gs {
			if err := add(storage.RelationTuple{ObjectType: "group", ObjectID: groupID(0, int(l)), Relation: "member",
				SubjectType: "user", SubjectID: fmt.Sprintf("u%d", u)}); err != nil {
				return err
			}
		}
	}
	for l := 1; l < g.levels; l++ {
		for i := range g.groupsAt(l) {
			for c := range g.fanout {
				if err := add(storage.RelationTuple{ObjectType: "group", ObjectID: groupID(l, i), Relation: "member",
					SubjectType: "group", SubjectID: groupID(l-1, i*g.fanout+c), SubjectRelation: "member"}); err != nil {
					return err
				}
			}
		}
	}
	for d := range g.docs {
		owner, viewers := g.docInfo(d)
		if err := add(storage.RelationTuple{ObjectType: "doc", ObjectID: fmt.Sprintf("d%d", d), Relation: "owner",
			SubjectType: "user", SubjectID: fmt.Sprintf("u%d", owner)}); err != nil {
			return err
		}
		for _, t := range viewers {
			if err := add(storage.RelationTuple{ObjectType: "doc", ObjectID: fmt.Sprintf("d%d", d), Relation: "viewer",
				SubjectType: "group", SubjectID: groupID(g.levels-1, t), SubjectRelation: "member"}); err != nil {
				return err
			}
		}
	}
	if len(buf) > 0 {
		return emit(buf)
	}
	return nil
}

// pair is one check question doc:d#view@user:u with its expected answer.
type pair struct {
	doc, user string
	allowed   bool
}

// pairs draws n check questions, alternately allowed and denied, each of
// which needs the full walk: an allowed pair's user is reached only through
// levels groups (never the owner), a denied pair's user is under none of
// the doc's viewer groups (every group below them is visited).
func (g graph) pairs(n int, seed uint64) []pair {
	leaf := g.leafGroups()
	members := make([][]int32, g.groupsAt(0)) // leaf group -> users
	for u, gs := range leaf {
		for _, l := range gs {
			members[l] = append(members[l], int32(u))
		}
	}
	topOf := func(l int32) int {
		t := int(l)
		for range g.levels - 1 {
			t /= g.fanout
		}
		return t
	}
	under := func(u int, viewers []int) bool {
		for _, l := range leaf[u] {
			for _, v := range viewers {
				if topOf(l) == v {
					return true
				}
			}
		}
		return false
	}
	r := rand.New(rand.NewPCG(seed, 3))
	out := make([]pair, 0, n)
	for len(out) < n {
		d := r.IntN(g.docs)
		owner, viewers := g.docInfo(d)
		allowed := len(out)%2 == 0
		u := -1
		if allowed {
			// Walk down from one viewer group to a random non-empty leaf.
			i := viewers[r.IntN(len(viewers))]
			for range g.levels - 1 {
				i = i*g.fanout + r.IntN(g.fanout)
			}
			if len(members[i]) > 0 {
				u = int(members[i][r.IntN(len(members[i]))])
			}
		} else {
			u = r.IntN(g.users)
			if under(u, viewers) {
				u = -1
			}
		}
		if u < 0 || u == owner {
			continue
		}
		out = append(out, pair{doc: fmt.Sprintf("d%d", d), user: fmt.Sprintf("u%d", u), allowed: allowed})
	}
	return out
}
