package rebac

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
)

// listData: 2,500 orders; usr_alice owns every third, manages team t3 that
// every seventh order belongs to; team big has 2,500 members, half through
// the nested team sub.
func listData(t testing.TB) (*Checker, *MemReader, []string) {
	m := NewMemReader()
	var ts, want []string
	for i := 0; i < 2500; i++ {
		id := fmt.Sprintf("o-%04d", i)
		ts = append(ts, "order:"+id+"#owner@user:usr_bob")
		ok := false
		if i%3 == 0 {
			ts = append(ts, "order:"+id+"#owner@user:usr_alice")
			ok = true
		}
		if i%7 == 0 {
			ts = append(ts, "order:"+id+"#team@team:t3")
			ok = true
		}
		if ok {
			want = append(want, id)
		}
		if i%2 == 0 {
			ts = append(ts, fmt.Sprintf("team:big#member@user:m%04d", i))
		} else {
			ts = append(ts, fmt.Sprintf("team:sub#member@user:m%04d", i))
		}
	}
	ts = append(ts, "team:t3#manager@user:usr_alice", "team:big#member@team:sub#member", "team:sub#member@team:big#member")
	m.MustWrite(ts...)
	return NewChecker(mustSchema(t, docSchema), m, Limits{Timeout: 5e9}), m, want
}

func TestListObjects(t *testing.T) {
	c, m, want := listData(t)
	rev, _ := m.HeadRevision(context.Background())
	ctx := context.Background()
	alice := Subject{Type: "user", ID: "usr_alice"}
	for _, limit := range []int{1, 7, 100, 1000, 0} {
		t.Run(fmt.Sprint("limit ", limit), func(t *testing.T) {
			var got []string
			cursor := ""
			for pages := 0; ; pages++ {
				if pages > 2500 {
					t.Fatal("paging does not end")
				}
				ids, next, err := c.ListObjects(ctx, rev, "order", "view", alice, cursor, limit)
				if err != nil {
					t.Fatal(err)
				}
				if eff := max(limit, 100*btoi(limit == 0)); len(ids) > eff {
					t.Fatalf("%d ids for limit %d", len(ids), limit)
				}
				if next != "" && len(ids) == 0 {
					t.Fatalf("empty page with a cursor")
				}
				got = append(got, ids...)
				if next == "" {
					break
				}
				cursor = next
			}
			if !slices.Equal(got, want) {
				t.Fatalf("got %d ids, want %d (first diff around %v)", len(got), len(want), firstDiff(got, want))
			}
		})
	}
	t.Run("bad cursor", func(t *testing.T) {
		if _, _, err := c.ListObjects(ctx, rev, "order", "view", alice, "!!", 10); !errors.Is(err, ErrInvalid) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("unknown permission", func(t *testing.T) {
		if _, _, err := c.ListObjects(ctx, rev, "order", "nope", alice, "", 10); !errors.Is(err, ErrUnknown) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("budget returns a cursor, never a silent truncation", func(t *testing.T) {
		small := NewChecker(c.Schema(), m, Limits{MaxDispatch: 1}) // one page of 1000 per call
		var got []string
		cursor := ""
		calls := 0
		for i := 0; ; i++ {
			calls++
			if i > 1000 {
				t.Fatal("no progress")
			}
			ids, next, err := small.ListObjects(ctx, rev, "order", "owner", alice, cursor, 1000)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, ids...)
			if next == "" {
				break
			}
			cursor = next
		}
		var owners []string
		for i := 0; i < 2500; i += 3 {
			owners = append(owners, fmt.Sprintf("o-%04d", i))
		}
		if !slices.Equal(got, owners) || calls != 3 {
			t.Fatalf("got %d in %d calls, want %d in 3", len(got), calls, len(owners))
		}
	})
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func firstDiff(a, b []string) string {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return a[i] + " vs " + b[i]
		}
	}
	return "the tail"
}

func TestListSubjects(t *testing.T) {
	c, m, _ := listData(t)
	rev, _ := m.HeadRevision(context.Background())
	ctx := context.Background()
	for _, limit := range []int{1000, 100, 33} {
		t.Run(fmt.Sprint("limit ", limit), func(t *testing.T) {
			var got []string
			cursor := ""
			for {
				ids, next, err := c.ListSubjects(ctx, rev, Object{"team", "big"}, "member", "user", cursor, limit)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, ids...)
				if next == "" {
					break
				}
				cursor = next
			}
			if len(got) != 2500 || !slices.IsSorted(got) || len(slices.Compact(slices.Clone(got))) != 2500 {
				t.Fatalf("got %d subjects", len(got))
			}
		})
	}
	m2, rev2 := alice(t)
	m2.MustWrite("order:o-2001#owner@user:usr_dave", "order:o-2001#blocked@user:usr_bob")
	rev2, _ = m2.HeadRevision(ctx)
	c2 := NewChecker(mustSchema(t, docSchema), m2, Limits{})
	tests := []struct {
		perm string
		want []string
	}{
		{"view", []string{"usr_alice", "usr_bob", "usr_dave"}},
		{"delete", []string{"usr_dave"}},
		{"pay", []string{"usr_bob"}},
		{"team", nil},
	}
	for _, tt := range tests {
		got, next, err := c2.ListSubjects(ctx, rev2, Object{"order", "o-2001"}, tt.perm, "user", "", 0)
		if err != nil || next != "" || !slices.Equal(got, tt.want) {
			t.Errorf("%s: %q %q %v, want %q", tt.perm, got, next, err, tt.want)
		}
	}
	if _, _, err := c2.ListSubjects(ctx, rev2, Object{"order", "o-2001"}, "view", "robot", "", 0); !errors.Is(err, ErrUnknown) {
		t.Errorf("unknown subject type: %v", err)
	}
	small := NewChecker(c.Schema(), m, Limits{MaxDispatch: 1})
	if _, _, err := small.ListSubjects(ctx, rev, Object{"team", "big"}, "member", "user", "", 10); !errors.Is(err, ErrBudget) {
		t.Errorf("budget: %v", err)
	}
}

func TestExpand(t *testing.T) {
	m, rev := alice(t)
	m.MustWrite("team:eng#member@team:ops#member", "team:ops#member@user:usr_dave")
	rev, _ = m.HeadRevision(context.Background())
	c := NewChecker(mustSchema(t, docSchema), m, Limits{})
	tree, err := c.Expand(context.Background(), rev, Object{"order", "o-2001"}, "view")
	if err != nil {
		t.Fatal(err)
	}
	if got := render(tree); got != `union order:o-2001#view [relation order:o-2001#owner [leaf order:o-2001#owner {user:usr_bob}] arrow order:o-2001#team->manager [relation team:eng#manager [leaf team:eng#manager {user:usr_alice}]]]` {
		t.Errorf("tree = %s", got)
	}
	tree, err = c.Expand(context.Background(), rev, Object{"order", "o-2001"}, "pay")
	if err != nil {
		t.Fatal(err)
	}
	if got := render(tree); got != `intersection order:o-2001#pay [relation order:o-2001#owner [leaf order:o-2001#owner {user:usr_bob}] arrow order:o-2001#team->member [relation team:eng#member [leaf team:eng#member {team:ops#member user:usr_bob} relation team:ops#member [leaf team:ops#member {user:usr_dave}]]]]` {
		t.Errorf("tree = %s", got)
	}
	small := NewChecker(c.Schema(), m, Limits{MaxDispatch: 2})
	tree, err = small.Expand(context.Background(), rev, Object{"order", "o-2001"}, "view")
	if err != nil {
		t.Fatal(err)
	}
	if got := render(tree); got != `union order:o-2001#view [relation order:o-2001#owner [leaf order:o-2001#owner {user:usr_bob}] arrow order:o-2001#team->manager [relation team:eng#manager (truncated)]]` {
		t.Errorf("truncated tree = %s", got)
	}
	if _, err := c.Expand(context.Background(), 0, Object{"order", "o-2001"}, "view"); !errors.Is(err, ErrInvalid) {
		t.Errorf("revision 0: %v", err)
	}
}

func TestExpandCycle(t *testing.T) {
	m := NewMemReader()
	rev := m.MustWrite("group:a#member@group:b#member", "group:b#member@group:a#member")
	tree, err := NewChecker(mustSchema(t, groupSchema), m, Limits{}).Expand(context.Background(), rev, Object{"group", "a"}, "member")
	if err != nil {
		t.Fatal(err)
	}
	if got := render(tree); got != `relation group:a#member [leaf group:a#member {group:b#member} relation group:b#member [leaf group:b#member {group:a#member} relation group:a#member]]` {
		t.Errorf("tree = %s", got)
	}
}

func render(t *Tree) string {
	s := t.Op + " " + t.Object + "#" + t.Relation
	if t.Op == "leaf" {
		s += " {"
		for i, x := range t.Subjects {
			if i > 0 {
				s += " "
			}
			s += x
		}
		s += "}"
	}
	if t.Truncated {
		s += " (truncated)"
	}
	if len(t.Children) > 0 {
		s += " ["
		for i, c := range t.Children {
			if i > 0 {
				s += " "
			}
			s += render(c)
		}
		s += "]"
	}
	return s
}

func TestListSubjectsWideAZ04(t *testing.T) {
	m := NewMemReader()
	var ts []string
	for i := 0; i < 10000; i++ {
		ts = append(ts, fmt.Sprintf("group:groups#member@group:s%05d#member", i))
		ts = append(ts, fmt.Sprintf("group:s%05d#member@user:u%05d", i, i%500))
	}
	rev := m.MustWrite(ts...)
	r := &countingReader{Reader: m}
	c := NewChecker(mustSchema(t, groupSchema), r, Limits{Timeout: 5e9})
	ids, next, err := c.ListSubjects(context.Background(), rev, Object{"group", "groups"}, "member", "user", "", 1000)
	if err != nil || next != "" || len(ids) != 500 {
		t.Fatalf("ListSubjects = %d ids, %q, %v", len(ids), next, err)
	}
	// 10 pages of subgroups, then 10 chunks of 1000 subgroups (one page each).
	if n := r.calls.Load(); n > 21 {
		t.Errorf("%d reader calls, want ≤ 21 (batched)", n)
	}
}
