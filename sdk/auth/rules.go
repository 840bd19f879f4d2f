package auth

import (
	"errors"
	"slices"
	"strings"
)

// A Rule decides whether an authenticated caller may proceed. It returns nil
// to allow, or an error (usually *ForbiddenError) to refuse. Rules are a
// required argument of the middleware and interceptors: there is no default
// that lets every valid token through; say AnyAuthenticated() to mean it.
type Rule interface {
	Check(c *Claims) error
}

// RuleFunc adapts a function to a Rule.
type RuleFunc func(c *Claims) error

// Check calls f(c).
func (f RuleFunc) Check(c *Claims) error { return f(c) }

// AnyAuthenticated allows every caller whose token verified. Use it
// deliberately: most routes should require a scope.
func AnyAuthenticated() Rule { return RuleFunc(func(*Claims) error { return nil }) }

// RequireScopes allows callers whose token carries every one of scopes.
func RequireScopes(scopes ...string) Rule {
	need := slices.Clone(scopes)
	return RuleFunc(func(c *Claims) error {
		for _, s := range need {
			if !c.HasScope(s) {
				return &ForbiddenError{Reason: "scope " + s + " required", Scopes: need}
			}
		}
		return nil
	})
}

// RequireAnyScope allows callers whose token carries at least one of scopes.
func RequireAnyScope(scopes ...string) Rule {
	any := slices.Clone(scopes)
	return RuleFunc(func(c *Claims) error {
		for _, s := range any {
			if c.HasScope(s) {
				return nil
			}
		}
		return &ForbiddenError{Reason: "one of scopes " + strings.Join(any, ", ") + " required", Scopes: any}
	})
}

// RequireAnyRole allows callers with at least one of roles, in the spirit of
// ASP.NET's [Authorize(Roles = "admin,manager")].
func RequireAnyRole(roles ...string) Rule {
	any := slices.Clone(roles)
	return RuleFunc(func(c *Claims) error {
		for _, r := range any {
			if c.HasRole(r) {
				return nil
			}
		}
		return &ForbiddenError{Reason: "one of roles " + strings.Join(any, ", ") + " required"}
	})
}

// RequireTenant allows callers whose token names exactly tenant. An empty
// tenant never matches.
func RequireTenant(tenant string) Rule {
	return RuleFunc(func(c *Claims) error {
		if tenant == "" || c.Tenant != tenant {
			return &ForbiddenError{Reason: "tenant not allowed"}
		}
		return nil
	})
}

// RequireEndUser allows only tokens that act for an end user (not client
// credentials tokens).
func RequireEndUser() Rule {
	return RuleFunc(func(c *Claims) error {
		if !c.EndUser() {
			return &ForbiddenError{Reason: "an end user is required"}
		}
		return nil
	})
}

// RequireClient allows only tokens issued to one of the given client ids.
func RequireClient(clientIDs ...string) Rule {
	ids := slices.Clone(clientIDs)
	return RuleFunc(func(c *Claims) error {
		if !slices.Contains(ids, c.ClientID) {
			return &ForbiddenError{Reason: "client not allowed"}
		}
		return nil
	})
}

// All allows when every rule allows; the first refusal is returned. All()
// with no rules refuses (fail closed).
func All(rules ...Rule) Rule {
	rs := slices.Clone(rules)
	return RuleFunc(func(c *Claims) error {
		if len(rs) == 0 {
			return &ForbiddenError{Reason: "no rule"}
		}
		for _, r := range rs {
			if err := r.Check(c); err != nil {
				return err
			}
		}
		return nil
	})
}

// AnyOf allows when at least one rule allows. With no rules it refuses. When
// every rule refuses, the reasons are joined; only when every refusal was
// for missing scopes is the answer insufficient_scope, naming them all.
func AnyOf(rules ...Rule) Rule {
	rs := slices.Clone(rules)
	return RuleFunc(func(c *Claims) error {
		if len(rs) == 0 {
			return &ForbiddenError{Reason: "no rule"}
		}
		var reasons, scopes []string
		allScopes := true
		for _, r := range rs {
			err := r.Check(c)
			if err == nil {
				return nil
			}
			var fe *ForbiddenError
			if errors.As(err, &fe) {
				reasons = append(reasons, fe.Reason)
				scopes = append(scopes, fe.Scopes...)
				allScopes = allScopes && len(fe.Scopes) > 0
			} else {
				reasons = append(reasons, "refused")
				allScopes = false
			}
		}
		if !allScopes {
			scopes = nil
		}
		return &ForbiddenError{Reason: strings.Join(reasons, "; or "), Scopes: scopes}
	})
}
