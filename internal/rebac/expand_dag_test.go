package rebac

import (
	"context"
	"fmt"
	"testing"
)

// countNodes walks t as the HTTP layer serializes it (every child pointer
// followed) and stops at limit.
func countNodes(t *Tree, limit int) int {
	n := 0
	var walk func(*Tree)
	walk = func(x *Tree) {
		if x == nil || n >= limit {
			return
		}
		n++
		for _, c := range x.Children {
			walk(c)
		}
	}
	walk(t)
	return n
}

// TestExpandSharedSubtreesStayLinear: a chain of diamonds (g_i reaches
// g_{i+1} through a_i and b_i) is 4 nodes per level; the expansion tree must
// not repeat the shared g_{i+1} subtree under both a_i and b_i, which would
// make the answer 2^levels nodes (AZ-04: a wide or deep graph stays within
// a budget, also when it is serialized).
func TestExpandSharedSubtreesStayLinear(t *testing.T) {
	const levels = 30
	m := NewMemReader()
	var tuples []string
	for i := range levels {
		tuples = append(tuples,
			fmt.Sprintf("group:g%d#member@group:a%d#member", i, i),
			fmt.Sprintf("group:g%d#member@group:b%d#member", i, i),
			fmt.Sprintf("group:a%d#member@group:g%d#member", i, i+1),
			fmt.Sprintf("group:b%d#member@group:g%d#member", i, i+1))
	}
	tuples = append(tuples, fmt.Sprintf("group:g%d#member@user:x", levels))
	rev := m.MustWrite(tuples...)
	c := NewChecker(mustSchema(t, groupSchema), m, Limits{MaxDepth: 200})
	tree, err := c.Expand(context.Background(), rev, Object{"group", "g0"}, "member")
	if err != nil {
		t.Fatal(err)
	}
	const limit = 100_000
	if n := countNodes(tree, limit); n >= limit {
		t.Fatalf("AZ-04/expand-dag: expansion tree has at least %d nodes for %d graph nodes", n, 3*levels+1)
	}
	// Every node is still explained once: the deepest leaf is reachable.
	found := false
	var walk func(*Tree)
	walk = func(x *Tree) {
		if found {
			return
		}
		if x.Op == "leaf" && x.Object == fmt.Sprintf("group:g%d", levels) {
			for _, s := range x.Subjects {
				found = found || s == "user:x"
			}
		}
		for _, ch := range x.Children {
			walk(ch)
		}
	}
	walk(tree)
	if !found {
		t.Fatal("the expansion no longer reaches user:x")
	}
}
