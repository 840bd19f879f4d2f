package policy

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/cedar-policy/cedar-go/types"
)

// TestIndexDifferential checks that evaluating only the bucket gives the same
// decision as evaluating the whole set with cedar.Authorize.
func TestIndexDifferential(t *testing.T) {
	for _, tc := range []struct {
		g genSpec
		n int
	}{
		{genSpec{nActions: 20, nTypes: 4, nPolicies: 300, open: 8, seed: 1}, 1000},
		{genSpec{nActions: 10, nTypes: 3, nPolicies: 60, open: 4, seed: 2}, 1000},
		{genSpec{nActions: 100, nTypes: 10, nPolicies: 1000, open: 4, seed: 3}, 300},
	} {
		g := tc.g
		s := mustLoad(t, g.files())
		all := &bucket{}
		for _, x := range s.policies {
			all.add(x)
		}
		r := rand.New(rand.NewPCG(g.seed, 7))
		allows, forbids, errs := 0, 0, 0
		for i := range tc.n {
			req := g.randomRequest(r)
			got, err1 := s.Authorize(req)
			want, err2 := s.authorize(req, all)
			if err1 != nil || err2 != nil {
				t.Fatalf("request %d: %v / %v", i, err1, err2)
			}
			if got.Allow != want.Allow || !slices.Equal(got.Policies, want.Policies) || !slices.Equal(got.Errors, want.Errors) || got.Reason != want.Reason {
				t.Fatalf("request %d %+v:\nbucket: %+v\nall:    %+v", i, req, got, want)
			}
			switch {
			case got.Allow:
				allows++
			case len(got.Policies) > 0:
				forbids++
			}
			if len(got.Errors) > 0 {
				errs++
			}
		}
		// The generated requests must exercise every outcome, or the
		// comparison proves little.
		if allows == 0 || forbids == 0 || errs == 0 {
			t.Fatalf("%+v: allows=%d forbids=%d errors=%d", g, allows, forbids, errs)
		}
		t.Logf("%+v: allows=%d forbids=%d errors=%d", g, allows, forbids, errs)
	}
}

func TestIndexScopes(t *testing.T) {
	s := mustLoad(t, map[string]string{"schema.cedarschema": testSchema, "main.cedar": testPolicies})
	ids := func(action string, typ types.EntityType) []string {
		var out []string
		for id := range s.candidates(types.NewEntityUID("Action", types.String(action)), typ).All() {
			out = append(out, string(id))
		}
		slices.Sort(out)
		return out
	}
	cases := []struct {
		action string
		typ    types.EntityType
		want   []string
	}{
		{"view", "document", []string{"admins-view", "no-archived", "overflowing", "owner-views", "tenant-readers"}},
		{"edit", "document", []string{"editors-edit-drafts", "no-archived"}},
		{"approve", "document", []string{"approve-small-with-step-up", "no-archived"}},
		{"purge", "document", []string{"no-archived", "team-purges"}},
		{"purge", "folder", []string{"team-purges"}},
		// Not declared: computed from the scopes (open dimensions apply).
		{"admin-ops", "folder", []string{"team-purges"}},
		{"nope", "document", []string{"no-archived"}},
	}
	for _, tc := range cases {
		if got := ids(tc.action, tc.typ); !slices.Equal(got, tc.want) {
			t.Errorf("candidates(%s, %s) = %v, want %v", tc.action, tc.typ, got, tc.want)
		}
	}
}
