// Package apierr carries errors with a public message and a private cause.
//
// Handlers return *Error; the edge (one place per transport) writes Public and
// Status to the client and logs Cause. Cause never reaches a response.
package apierr

import (
	"errors"
	"fmt"
	"net/http"
)

// Error is an error with a message safe to show and a private cause.
type Error struct {
	Status int    // HTTP status
	Code   string // machine-readable code, e.g. "invalid_request"
	Public string // safe to show to the caller
	Cause  error  // private; logged, never returned
}

func (e *Error) Error() string {
	if e.Cause != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Public, e.Cause)
	}
	return e.Code + ": " + e.Public
}

// Unwrap returns the private cause.
func (e *Error) Unwrap() error { return e.Cause }

// New returns an Error.
func New(status int, code, public string, cause error) *Error {
	return &Error{Status: status, Code: code, Public: public, Cause: cause}
}

// BadRequest is a 400 invalid_request with a public message.
func BadRequest(public string, cause error) *Error {
	return New(http.StatusBadRequest, "invalid_request", public, cause)
}

// NotFound is a 404 not_found.
func NotFound(public string) *Error { return New(http.StatusNotFound, "not_found", public, nil) }

// Internal hides cause behind a generic message.
func Internal(cause error) *Error {
	return New(http.StatusInternalServerError, "server_error", "internal error", cause)
}

// Unavailable is a 503 for a backend that is down.
func Unavailable(cause error) *Error {
	return New(http.StatusServiceUnavailable, "temporarily_unavailable", "service temporarily unavailable", cause)
}

// As extracts an *Error from err, or wraps err as Internal.
func As(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return Internal(err)
}
