package auth

import (
	"errors"
	"strings"
)

var (
	// ErrNoToken: the request carries no bearer token.
	ErrNoToken = errors.New("auth: no bearer token")
	// ErrInvalidToken: the token is malformed, forged, expired, for another
	// audience or issuer, or otherwise unacceptable (RFC 6750 invalid_token).
	ErrInvalidToken = errors.New("auth: invalid token")
	// ErrInvalidRequest: the Authorization header is malformed or repeated
	// (RFC 6750 invalid_request).
	ErrInvalidRequest = errors.New("auth: invalid request")
	// ErrUnavailable: the authenticator cannot decide now (no keys loaded,
	// introspection endpoint unreachable). Fail closed: the caller is
	// refused, and readiness reports why.
	ErrUnavailable = errors.New("auth: authenticator unavailable")
	// ErrForbidden: the token is valid but a Rule refused it.
	ErrForbidden = errors.New("auth: forbidden")
)

// ForbiddenError is returned by a Rule that refuses valid claims. Scopes,
// when set, names the scopes that would have been enough and turns the HTTP
// answer into 403 insufficient_scope with a scope attribute (RFC 6750 §3.1).
type ForbiddenError struct {
	Reason string   // public, e.g. "role admin required"
	Scopes []string // scopes needed, for insufficient_scope
}

func (e *ForbiddenError) Error() string {
	if len(e.Scopes) > 0 {
		return "auth: insufficient scope: " + strings.Join(e.Scopes, " ")
	}
	return "auth: forbidden: " + e.Reason
}

// Unwrap makes errors.Is(err, ErrForbidden) true.
func (e *ForbiddenError) Unwrap() error { return ErrForbidden }
