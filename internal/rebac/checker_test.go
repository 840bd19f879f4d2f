package rebac

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/storage"
)

// alice builds the scenario of docs/authz.md: team eng (manager usr_alice,
// member usr_bob), order o-2001 (owner usr_bob, team eng).
func alice(t testing.TB) (*MemReader, storage.Revision) {
	m := NewMemReader()
	rev := m.MustWrite(
		"team:eng#manager@user:usr_alice",
		"team:eng#member@user:usr_bob",
		"order:o-2001#owner@user:usr_bob",
		"order:o-2001#team@team:eng",
	)
	return m, rev
}

func TestCheckAlice(t *testing.T) {
	m, rev := alice(t)
	c := NewChecker(mustSchema(t, docSchema), m, Limits{CacheEntries: -1})
	tests := []struct {
		perm, subj string
		allowed    bool
		path       []string
	}{
		{"view", "user:usr_alice", true, []string{"order:o-2001#team@team:eng", "team:eng#manager@user:usr_alice"}},
		{"view", "user:usr_bob", true, []string{"order:o-2001#owner@user:usr_bob"}},
		{"view", "user:usr_carol", false, nil},
		{"owner", "user:usr_bob", true, []string{"order:o-2001#owner@user:usr_bob"}},
		{"pay", "user:usr_bob", true, []string{"order:o-2001#owner@user:usr_bob", "order:o-2001#team@team:eng", "team:eng#member@user:usr_bob"}},
		{"pay", "user:usr_alice", false, nil},
		{"delete", "user:usr_bob", true, []string{"order:o-2001#owner@user:usr_bob"}},
		{"delete", "user:usr_alice", false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.perm+"@"+tt.subj, func(t *testing.T) {
			res, err := c.Check(context.Background(), rev, mustObj(t, "order:o-2001"), tt.perm, mustSubj(t, tt.subj))
			if err != nil {
				t.Fatal(err)
			}
			if res.Allowed != tt.allowed || !slices.Equal(res.Path, tt.path) || (res.Path == nil) != (tt.path == nil) {
				t.Errorf("Check = %v %q, want %v %q", res.Allowed, res.Path, tt.allowed, tt.path)
			}
			if res.Cached || res.Dispatches == 0 || res.Cycle {
				t.Errorf("result flags = %+v", res)
			}
		})
	}
}

func TestCheckSnapshotRevisions(t *testing.T) {
	m, rev1 := alice(t)
	rev2 := m.MustWrite("order:o-2001#blocked@user:usr_bob")
	c := NewChecker(mustSchema(t, docSchema), m, Limits{})
	ctx := context.Background()
	for _, tt := range []struct {
		at   storage.Revision
		want bool
	}{{rev2, false}, {rev1, true}, {rev2, false}, {rev1, true}} {
		res, err := c.Check(ctx, tt.at, mustObj(t, "order:o-2001"), "delete", mustSubj(t, "user:usr_bob"))
		if err != nil || res.Allowed != tt.want {
			t.Fatalf("delete at %d = %+v, %v; want %v", tt.at, res, err, tt.want)
		}
	}
}

const opsSchema = `definition user {}
definition group { relation member: user | group#member }
definition doc {
  relation a: user | group#member
  relation b: user
  relation c: user
  permission any = a + b + c
  permission all = a & b & c
  permission a_not_b = a - b
  permission mixed = (a + c) & b - c
  permission nested = any - all
}`

func TestCheckOperators(t *testing.T) {
	m := NewMemReader()
	rev := m.MustWrite(
		"doc:d#a@user:x", "doc:d#b@user:x", "doc:d#c@user:x",
		"doc:d#a@user:y", "doc:d#b@user:y",
		"doc:d#c@user:z",
		"doc:d#a@group:g#member", "group:g#member@group:h#member", "group:h#member@user:w",
		"doc:d#b@user:w",
	)
	c := NewChecker(mustSchema(t, opsSchema), m, Limits{CacheEntries: -1})
	tests := []struct {
		perm string
		subj string
		want bool
	}{
		{"any", "user:x", true}, {"any", "user:z", true}, {"any", "user:w", true}, {"any", "user:v", false},
		{"all", "user:x", true}, {"all", "user:y", false}, {"all", "user:z", false},
		{"a_not_b", "user:x", false}, {"a_not_b", "user:y", false}, {"a_not_b", "user:z", false}, {"a_not_b", "user:w", false},
		{"mixed", "user:y", true}, {"mixed", "user:x", false}, {"mixed", "user:w", true}, {"mixed", "user:z", false},
		{"nested", "user:x", false}, {"nested", "user:y", true}, {"nested", "user:z", true}, {"nested", "user:v", false},
		{"a", "user:w", true},
		{"a", "group:h#member", true}, // a subject set reached through another
		{"a", "group:g#member", true}, // a subject set stored directly
	}
	for _, tt := range tests {
		t.Run(tt.perm+"@"+tt.subj, func(t *testing.T) {
			res, err := c.Check(context.Background(), rev, mustObj(t, "doc:d"), tt.perm, mustSubj(t, tt.subj))
			if err != nil || res.Allowed != tt.want {
				t.Fatalf("Check = %+v, %v; want %v", res, err, tt.want)
			}
		})
	}
	res, _ := c.Check(context.Background(), rev, mustObj(t, "doc:d"), "a", mustSubj(t, "user:w"))
	want := []string{"doc:d#a@group:g#member", "group:g#member@group:h#member", "group:h#member@user:w"}
	if !slices.Equal(res.Path, want) {
		t.Errorf("path = %q, want %q", res.Path, want)
	}
}

func TestCheckInvalidInput(t *testing.T) {
	m, rev := alice(t)
	c := NewChecker(mustSchema(t, docSchema), m, Limits{})
	tests := []struct {
		name string
		at   storage.Revision
		obj  Object
		perm string
		subj Subject
		want error
	}{
		{"revision 0", 0, Object{"order", "o-2001"}, "view", Subject{Type: "user", ID: "a"}, ErrInvalid},
		{"unknown type", rev, Object{"invoice", "i"}, "view", Subject{Type: "user", ID: "a"}, ErrUnknown},
		{"unknown permission", rev, Object{"order", "o-2001"}, "edit", Subject{Type: "user", ID: "a"}, ErrUnknown},
		{"unknown subject type", rev, Object{"order", "o-2001"}, "view", Subject{Type: "robot", ID: "a"}, ErrUnknown},
		{"unknown subject relation", rev, Object{"order", "o-2001"}, "view", Subject{Type: "team", ID: "a", Relation: "boss"}, ErrUnknown},
		{"bad object id", rev, Object{"order", "o 1"}, "view", Subject{Type: "user", ID: "a"}, ErrInvalid},
		{"bad subject id", rev, Object{"order", "o-1"}, "view", Subject{Type: "user", ID: "a:b"}, ErrInvalid},
		{"empty subject", rev, Object{"order", "o-1"}, "view", Subject{}, ErrInvalid},
		{"revision ahead", rev + 5, Object{"order", "o-2001"}, "view", Subject{Type: "user", ID: "a"}, storage.ErrRevisionAhead},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := c.Check(context.Background(), tt.at, tt.obj, tt.perm, tt.subj)
			if !errors.Is(err, tt.want) || res.Allowed {
				t.Fatalf("Check = %+v, %v; want %v", res, err, tt.want)
			}
		})
	}
}

const groupSchema = `definition user {}
definition group { relation member: user | group#member }
definition doc {
  relation owner: user
  relation blocked: user | group#member
  permission edit = owner - blocked
}`

// chain writes group:g0 <- g1 <- ... <- g<n> <- user:x (g<i> has member
// g<i+1>#member) and returns the revision.
func chain(m *MemReader, n int) storage.Revision {
	var ts []string
	for i := 0; i < n; i++ {
		ts = append(ts, fmt.Sprintf("group:g%d#member@group:g%d#member", i, i+1))
	}
	ts = append(ts, fmt.Sprintf("group:g%d#member@user:x", n))
	return m.MustWrite(ts...)
}

func TestCheckBudgetsAZ04(t *testing.T) {
	ctx := context.Background()
	schema := mustSchema(t, groupSchema)
	g0 := Object{"group", "g0"}
	x := Subject{Type: "user", ID: "x"}

	t.Run("AZ-04/cycle", func(t *testing.T) {
		m := NewMemReader()
		rev := m.MustWrite("group:a#member@group:b#member", "group:b#member@group:a#member", "group:b#member@user:y")
		c := NewChecker(schema, m, Limits{})
		res, err := c.Check(ctx, rev, Object{"group", "a"}, "member", x)
		if err != nil || res.Allowed || !res.Cycle {
			t.Fatalf("Check = %+v, %v; want deny with Cycle", res, err)
		}
		res, err = c.Check(ctx, rev, Object{"group", "a"}, "member", Subject{Type: "user", ID: "y"})
		if err != nil || !res.Allowed {
			t.Fatalf("member through the cycle: %+v, %v", res, err)
		}
	})
	t.Run("AZ-04/diamond is not a cycle", func(t *testing.T) {
		m := NewMemReader()
		rev := m.MustWrite("group:a#member@group:b#member", "group:a#member@group:c#member",
			"group:b#member@group:d#member", "group:c#member@group:d#member")
		res, err := NewChecker(schema, m, Limits{}).Check(ctx, rev, Object{"group", "a"}, "member", x)
		if err != nil || res.Allowed || res.Cycle {
			t.Fatalf("Check = %+v, %v", res, err)
		}
	})
	t.Run("AZ-04/deep", func(t *testing.T) {
		m := NewMemReader()
		rev := chain(m, 30)
		res, err := NewChecker(schema, m, Limits{}).Check(ctx, rev, g0, "member", x)
		if err != nil || !res.Allowed || len(res.Path) != 31 {
			t.Fatalf("depth 30: %v, %v (path %d)", res.Allowed, err, len(res.Path))
		}
		m = NewMemReader()
		rev = chain(m, 60)
		res, err = NewChecker(schema, m, Limits{}).Check(ctx, rev, g0, "member", x)
		if !errors.Is(err, ErrBudget) || err.Error() != "rebac: budget exceeded: depth 50" || res.Allowed {
			t.Fatalf("depth 60: %+v, %v", res, err)
		}
	})
	t.Run("AZ-04/dispatch", func(t *testing.T) {
		m := NewMemReader()
		rev := chain(m, 10)
		res, err := NewChecker(schema, m, Limits{MaxDispatch: 5}).Check(ctx, rev, g0, "member", x)
		if !errors.Is(err, ErrBudget) || err.Error() != "rebac: budget exceeded: dispatch 5" || res.Allowed {
			t.Fatalf("Check = %+v, %v", res, err)
		}
	})
	t.Run("AZ-04/time", func(t *testing.T) {
		m := NewMemReader()
		rev := chain(m, 3)
		c := NewChecker(schema, blockingReader{m}, Limits{Timeout: 20 * time.Millisecond})
		res, err := c.Check(ctx, rev, g0, "member", x)
		if !errors.Is(err, ErrBudget) || !strings.Contains(err.Error(), "budget exceeded: time 20ms") || res.Allowed {
			t.Fatalf("Check = %+v, %v", res, err)
		}
	})
	t.Run("AZ-04/exclusion under budget never allows", func(t *testing.T) {
		m := NewMemReader()
		chain(m, 60)
		rev := m.MustWrite("doc:d#owner@user:x", "doc:d#blocked@group:g0#member")
		res, err := NewChecker(schema, m, Limits{}).Check(ctx, rev, Object{"doc", "d"}, "edit", x)
		if !errors.Is(err, ErrBudget) || res.Allowed {
			t.Fatalf("Check = %+v, %v", res, err)
		}
	})
	t.Run("AZ-04/storage error never allows", func(t *testing.T) {
		m := NewMemReader()
		rev := m.MustWrite("doc:d#owner@user:x")
		boom := errors.New("db down")
		res, err := NewChecker(schema, &countingReader{Reader: m, fail: boom}, Limits{}).Check(ctx, rev, Object{"doc", "d"}, "edit", x)
		if !errors.Is(err, boom) || res.Allowed {
			t.Fatalf("Check = %+v, %v", res, err)
		}
	})
}

// blockingReader answers only when the context ends.
type blockingReader struct{ Reader }

func (blockingReader) ReadTuples(ctx context.Context, _ storage.Revision, _ storage.TupleFilter, _ string, _ int) ([]storage.RelationTuple, string, error) {
	<-ctx.Done()
	return nil, "", ctx.Err()
}

func TestCheckWideAZ04(t *testing.T) {
	ctx := context.Background()
	schema := mustSchema(t, groupSchema)
	m := NewMemReader()
	var ts []string
	for i := 0; i < 10000; i++ {
		ts = append(ts, fmt.Sprintf("group:users#member@user:u%05d", i))
		ts = append(ts, fmt.Sprintf("group:groups#member@group:s%05d#member", i))
	}
	ts = append(ts, "group:s09999#member@user:target")
	rev := m.MustWrite(ts...)
	// The time budget is generous so that -race on a loaded machine cannot
	// fail the test; the property under test is the number of queries.
	limits := Limits{Timeout: 2 * time.Second}
	tests := []struct {
		name     string
		obj      string
		subj     string
		want     bool
		maxCalls int64
	}{
		// one exact-match query
		{"AZ-04/wide/users allow", "group:users", "user:u09999", true, 1},
		// exact match + subject-set read
		{"AZ-04/wide/users deny", "group:users", "user:nobody", false, 2},
		// exact match (1) + 10 pages of subject sets + per 1000 subgroups one
		// exact-match and one subject-set query (20)
		{"AZ-04/wide/groups allow", "group:groups", "user:target", true, 31},
		{"AZ-04/wide/groups deny", "group:groups", "user:nobody", false, 31},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &countingReader{Reader: m}
			res, err := NewChecker(schema, r, limits).Check(ctx, rev, mustObj(t, tt.obj), "member", mustSubj(t, tt.subj))
			if err != nil || res.Allowed != tt.want {
				t.Fatalf("Check = %+v, %v", res, err)
			}
			t.Logf("%d reader calls, %d dispatches", r.calls.Load(), res.Dispatches)
			if n := r.calls.Load(); n > tt.maxCalls {
				t.Errorf("%d reader calls, want ≤ %d (batched)", n, tt.maxCalls)
			}
			if res.Dispatches > 20 {
				t.Errorf("%d dispatches", res.Dispatches)
			}
		})
	}
	t.Run("AZ-04/wide/dispatch budget", func(t *testing.T) {
		_, err := NewChecker(schema, m, Limits{Timeout: limits.Timeout, MaxDispatch: 5}).Check(ctx, rev, mustObj(t, "group:groups"), "member", mustSubj(t, "user:target"))
		if !errors.Is(err, ErrBudget) {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestCheckConcurrent(t *testing.T) {
	m, rev := alice(t)
	c := NewChecker(mustSchema(t, docSchema), m, Limits{CacheEntries: 128})
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				subj := Subject{Type: "user", ID: []string{"usr_alice", "usr_bob", "usr_carol"}[i%3]}
				res, err := c.Check(context.Background(), rev, Object{"order", "o-2001"}, "view", subj)
				if err != nil || res.Allowed != (i%3 != 2) {
					t.Errorf("Check = %+v, %v", res, err)
					return
				}
				if i%50 == 0 && g == 0 {
					c.SetSchema(c.Schema())
				}
			}
		}()
	}
	wg.Wait()
}

func TestCheckCycleSemanticsAZ04(t *testing.T) {
	ctx := context.Background()
	t.Run("AZ-04/cycle through an exclusion fails closed", func(t *testing.T) {
		s := mustSchema(t, `definition user {}
definition doc {
  relation parent: doc
  relation owner: user
  permission edit = owner - parent->edit
}`)
		m := NewMemReader()
		rev := m.MustWrite("doc:d#owner@user:x", "doc:d#parent@doc:d")
		res, err := NewChecker(s, m, Limits{}).Check(ctx, rev, Object{"doc", "d"}, "edit", Subject{Type: "user", ID: "x"})
		if err == nil || res.Allowed || err.Error() != "rebac: invalid input: data cycle through an exclusion at doc:d#edit" {
			t.Fatalf("Check = %+v, %v", res, err)
		}
	})
	t.Run("AZ-04/cycle inside the subtracted side is fine", func(t *testing.T) {
		m := NewMemReader()
		rev := m.MustWrite("doc:d#owner@user:x", "doc:d#owner@user:y", "doc:d#blocked@group:a#member",
			"group:a#member@group:b#member", "group:b#member@group:a#member", "group:b#member@user:y")
		c := NewChecker(mustSchema(t, groupSchema), m, Limits{})
		res, err := c.Check(ctx, rev, Object{"doc", "d"}, "edit", Subject{Type: "user", ID: "x"})
		if err != nil || !res.Allowed || !res.Cycle {
			t.Fatalf("x: %+v, %v", res, err)
		}
		res, err = c.Check(ctx, rev, Object{"doc", "d"}, "edit", Subject{Type: "user", ID: "y"})
		if err != nil || res.Allowed {
			t.Fatalf("y: %+v, %v", res, err)
		}
	})
	t.Run("AZ-04/a deny found inside a cycle is not reused", func(t *testing.T) {
		s := mustSchema(t, `definition user {}
definition group { relation member: user | group#member }
definition doc {
  relation v: group#member
  relation w: group#member
  permission p = v & w
}`)
		m := NewMemReader()
		rev := m.MustWrite("doc:d#v@group:a#member", "doc:d#w@group:b#member",
			"group:a#member@group:b#member", "group:b#member@group:a#member",
			"group:a#member@group:c#member", "group:c#member@user:x")
		res, err := NewChecker(s, m, Limits{}).Check(ctx, rev, Object{"doc", "d"}, "p", Subject{Type: "user", ID: "x"})
		if err != nil || !res.Allowed {
			t.Fatalf("Check = %+v, %v", res, err)
		}
		subjects, _, err := NewChecker(s, m, Limits{}).ListSubjects(ctx, rev, Object{"doc", "d"}, "p", "user", "", 0)
		if err != nil || !slices.Equal(subjects, []string{"x"}) {
			t.Fatalf("ListSubjects = %v, %v", subjects, err)
		}
	})
}
