package auth

import (
	"errors"
	"slices"
	"testing"
)

func TestRules(t *testing.T) {
	c := &Claims{Subject: "usr_alice", ClientID: "web", Scopes: []string{"a", "b"}, Roles: []string{"user"}, Tenant: "acme"}
	cases := []struct {
		name   string
		rule   Rule
		allow  bool
		scopes []string // expected insufficient_scope list on refusal
	}{
		{"scopes-all-present", RequireScopes("a", "b"), true, nil},
		{"scopes-one-missing", RequireScopes("a", "c"), false, []string{"a", "c"}},
		{"scopes-none-required", RequireScopes(), true, nil},
		{"any-scope", RequireAnyScope("c", "b"), true, nil},
		{"any-scope-none", RequireAnyScope("c", "d"), false, []string{"c", "d"}},
		{"any-scope-empty-refuses", RequireAnyScope(), false, nil},
		{"role", RequireAnyRole("admin", "user"), true, nil},
		{"role-missing", RequireAnyRole("admin"), false, nil},
		{"role-empty-refuses", RequireAnyRole(), false, nil},
		{"tenant", RequireTenant("acme"), true, nil},
		{"tenant-other", RequireTenant("globex"), false, nil},
		{"tenant-empty-never-matches", RequireTenant(""), false, nil},
		{"end-user", RequireEndUser(), true, nil},
		{"client", RequireClient("web"), true, nil},
		{"client-other", RequireClient("billing"), false, nil},
		{"all", All(RequireScopes("a"), RequireAnyRole("user")), true, nil},
		{"all-one-fails", All(RequireScopes("a"), RequireAnyRole("admin")), false, nil},
		{"all-empty-refuses", All(), false, nil},
		{"anyof-one-passes", AnyOf(RequireAnyRole("admin"), RequireScopes("a")), true, nil},
		{"anyof-scopes-merged", AnyOf(RequireScopes("c"), RequireScopes("d")), false, []string{"c", "d"}},
		{"anyof-mixed-is-not-scope", AnyOf(RequireScopes("c"), RequireAnyRole("admin")), false, nil},
		{"anyof-empty-refuses", AnyOf(), false, nil},
		{"rulefunc", RuleFunc(func(*Claims) error { return errors.New("custom") }), false, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.rule.Check(c)
			if (err == nil) != tc.allow {
				t.Fatalf("err = %v, want allow=%v", err, tc.allow)
			}
			var fe *ForbiddenError
			if err != nil && errors.As(err, &fe) && !slices.Equal(fe.Scopes, tc.scopes) {
				t.Fatalf("scopes %v, want %v", fe.Scopes, tc.scopes)
			}
			if err != nil && errors.As(err, &fe) && !errors.Is(err, ErrForbidden) {
				t.Fatal("ForbiddenError does not wrap ErrForbidden")
			}
		})
	}
}
