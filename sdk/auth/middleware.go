package auth

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/gatehouse/gatehouse/sdk/jwtx"
)

// Option tunes the middleware and WriteError.
type Option func(*options)

type options struct {
	realm string
}

// WithRealm sets the realm attribute of WWW-Authenticate (default "api").
func WithRealm(realm string) Option { return func(o *options) { o.realm = realm } }

func buildOptions(opts []Option) options {
	o := options{realm: "api"}
	for _, f := range opts {
		f(&o)
	}
	return o
}

// Middleware authenticates every request with a and lets it through only if
// rule allows; the claims are then in the request context (see
// ClaimsFromContext). Both arguments are required: nil panics at
// construction, so a service cannot start unprotected by mistake. Refusals
// follow RFC 6750: 401 without a token or with an invalid one, 403
// insufficient_scope when the rule refuses, 400 for a malformed
// Authorization header, 503 while the authenticator has no keys.
func Middleware(a Authenticator, rule Rule, opts ...Option) func(http.Handler) http.Handler {
	if a == nil || rule == nil {
		panic("auth.Middleware: an Authenticator and a Rule are required (use AnyAuthenticated() to allow every valid token)")
	}
	o := buildOptions(opts)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			tok, err := BearerToken(r.Header)
			if err != nil {
				writeError(w, err, o)
				return
			}
			c, err := a.Authenticate(r.Context(), tok)
			if err != nil {
				writeError(w, err, o)
				return
			}
			if err := rule.Check(c); err != nil {
				writeError(w, err, o)
				return
			}
			next.ServeHTTP(w, r.WithContext(ContextWithClaims(r.Context(), c)))
		})
	}
}

// Protect is Middleware(a, rule, opts...)(h).
func Protect(a Authenticator, rule Rule, h http.Handler, opts ...Option) http.Handler {
	return Middleware(a, rule, opts...)(h)
}

// Require checks rule against the claims an outer Middleware put in the
// context, for per-route rules under one authenticating middleware. Without
// claims in the context it answers 401: it never allows by default.
func Require(rule Rule, h http.Handler, opts ...Option) http.Handler {
	if rule == nil || h == nil {
		panic("auth.Require: a Rule and a Handler are required")
	}
	o := buildOptions(opts)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, ok := ClaimsFromContext(r.Context())
		if !ok {
			writeError(w, ErrNoToken, o)
			return
		}
		if err := rule.Check(c); err != nil {
			writeError(w, err, o)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// BearerToken extracts the token of an "Authorization: Bearer <token>"
// header (RFC 6750 §2.1). Only the header is read: tokens in the query or
// form are never used. A missing header is ErrNoToken; a repeated header,
// another scheme with a token-looking value, or a value that is not a
// token68 is ErrInvalidRequest.
func BearerToken(h http.Header) (string, error) {
	vals := h.Values("Authorization")
	switch len(vals) {
	case 0:
		return "", ErrNoToken
	case 1:
	default:
		return "", errors.Join(ErrInvalidRequest, errors.New("repeated Authorization header"))
	}
	v := vals[0]
	const scheme = "bearer "
	if len(v) < len(scheme) || !strings.EqualFold(v[:len(scheme)], scheme) {
		// Another scheme (Basic, DPoP, ...) carries no bearer token.
		return "", ErrNoToken
	}
	tok := v[len(scheme):]
	if !isToken68(tok) {
		return "", errors.Join(ErrInvalidRequest, errors.New("malformed bearer token"))
	}
	return tok, nil
}

// isToken68 reports whether s matches RFC 7235 token68:
// 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
func isToken68(s string) bool {
	i := 0
	for i < len(s) && token68Chars[s[i]] {
		i++
	}
	if i == 0 {
		return false
	}
	for ; i < len(s); i++ {
		if s[i] != '=' {
			return false
		}
	}
	return true
}

// token68Chars marks the token68 characters other than '='.
var token68Chars = func() (t [256]bool) {
	for c := 0; c < 256; c++ {
		t[c] = 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
			c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/'
	}
	return t
}()

// WriteError writes the RFC 6750 answer for an error returned by an
// Authenticator, a Rule or BearerToken. Token contents are never echoed.
func WriteError(w http.ResponseWriter, err error, opts ...Option) {
	writeError(w, err, buildOptions(opts))
}

func writeError(w http.ResponseWriter, err error, o options) {
	realm := `Bearer realm="` + quote(o.realm) + `"`
	var fe *ForbiddenError
	status, code, desc := http.StatusUnauthorized, "invalid_token", describe(err)
	challenge := realm
	switch {
	case errors.Is(err, ErrNoToken):
		// RFC 6750 §3.1: no error code when the request had no token.
		code, desc = "unauthorized", "a bearer token is required"
	case errors.Is(err, ErrInvalidRequest):
		status, code, desc = http.StatusBadRequest, "invalid_request", "malformed Authorization header"
		challenge += `, error="invalid_request"`
	case errors.As(err, &fe):
		status, desc = http.StatusForbidden, fe.Reason
		if len(fe.Scopes) > 0 {
			code = "insufficient_scope"
			challenge += `, error="insufficient_scope", scope="` + quote(strings.Join(fe.Scopes, " ")) + `"`
		} else {
			code, challenge = "forbidden", ""
		}
	case errors.Is(err, ErrUnavailable):
		status, code, desc = http.StatusServiceUnavailable, "temporarily_unavailable", "token verification is not available yet"
		w.Header().Set("Retry-After", "5")
		challenge = ""
	default:
		challenge += `, error="invalid_token", error_description="` + quote(desc) + `"`
	}
	if challenge != "" {
		w.Header().Set("WWW-Authenticate", challenge)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
}

// describe gives a fixed public description for an invalid token; causes
// stay private.
func describe(err error) string {
	switch {
	case errors.Is(err, jwtx.ErrExpired):
		return "the token has expired"
	case errors.Is(err, jwtx.ErrNotYetValid):
		return "the token is not valid yet"
	case errors.Is(err, errAudience):
		return "the token is not meant for this API"
	default:
		return "the token is invalid"
	}
}

// quote makes s safe inside a quoted-string: printable ASCII without '"'
// and '\'.
func quote(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c < 0x7f && c != '"' && c != '\\' {
			b.WriteByte(c)
		}
	}
	return b.String()
}
