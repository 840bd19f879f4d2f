package edge

import (
	"errors"
	"net/http"
	"strings"
)

// DefaultMaxTokenLen is the token length limit BearerToken uses when called
// with maxLen <= 0.
const DefaultMaxTokenLen = 16 << 10

// Errors returned by BearerToken. None of them ever contains the token.
var (
	ErrNoToken                = errors.New("edge: no bearer token")
	ErrMultipleAuthorization  = errors.New("edge: multiple Authorization headers")
	ErrTokenInQuery           = errors.New("edge: access token in query string")
	ErrMalformedAuthorization = errors.New("edge: malformed Authorization header")
)

const bearerPrefix = "Bearer "

// queryTokenNames are the parameter names treated as carrying a token in a
// query string (compared after percent-decoding, case-insensitively, with
// '-' equal to '_' and a PHP-style "[]" suffix ignored).
var queryTokenNames = []string{"access_token", "token", "id_token"}

// bodyTokenNames are the names BodyHasToken looks for (RFC 6750 §2.2).
var bodyTokenNames = []string{"access_token"}

// BearerToken extracts the access token (GW-04, JWT-F01). Checks, in order:
//   - any Authorization line longer than len("Bearer ")+maxLen is
//     ErrMalformedAuthorization (checked first, in O(1) per line; maxLen <= 0
//     means DefaultMaxTokenLen);
//   - more than one Authorization line (including non-canonical key
//     variants) is ErrMultipleAuthorization;
//   - a token-like query parameter (access_token, token, id_token, in any
//     case, percent-encoded or not) is ErrTokenInQuery, even with no header;
//   - no Authorization header is ErrNoToken;
//   - anything but "Bearer" (any case), exactly one space, and an RFC 9110
//     token68 ([A-Za-z0-9-._~+/]+=*) is ErrMalformedAuthorization.
//
// A form body is not inspected here: when Content-Type is
// application/x-www-form-urlencoded and an Authorization header is present,
// the caller checks a bounded peek of the body with BodyHasToken.
func BearerToken(h http.Header, rawQuery string, maxLen int) (string, error) {
	if maxLen <= 0 {
		maxLen = DefaultMaxTokenLen
	}
	var value string
	lines := 0
	for k, vs := range h {
		if len(k) != len("Authorization") || !strings.EqualFold(k, "Authorization") {
			continue
		}
		for _, v := range vs {
			if len(v) > len(bearerPrefix)+maxLen {
				return "", ErrMalformedAuthorization
			}
			value = v
			lines++
		}
	}
	if lines > 1 {
		return "", ErrMultipleAuthorization
	}
	if hasParam(rawQuery, queryTokenNames) {
		return "", ErrTokenInQuery
	}
	if lines == 0 {
		return "", ErrNoToken
	}
	if len(value) <= len(bearerPrefix) ||
		!strings.EqualFold(value[:len(bearerPrefix)-1], "Bearer") || value[len(bearerPrefix)-1] != ' ' {
		return "", ErrMalformedAuthorization
	}
	tok := value[len(bearerPrefix):]
	if !isToken68(tok) {
		return "", ErrMalformedAuthorization
	}
	return tok, nil
}

// isToken68 reports whether s matches [A-Za-z0-9-._~+/]+=* .
func isToken68(s string) bool {
	i := 0
	for i < len(s) && isToken68Char(s[i]) {
		i++
	}
	if i == 0 {
		return false
	}
	for i < len(s) && s[i] == '=' {
		i++
	}
	return i == len(s)
}

func isToken68Char(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/'
}

// BodyHasToken reports whether an application/x-www-form-urlencoded body (or
// a bounded prefix of one) has an access_token parameter (name compared
// after percent-decoding, case-insensitively). The caller rejects the
// request when it also has an Authorization header (GW-04).
func BodyHasToken(body []byte) bool {
	return hasParam(string(body), bodyTokenNames)
}

// hasParam reports whether the url-encoded string q has a parameter whose
// decoded name matches one of names. Both '&' and ';' separate parameters
// (some frameworks accept either, so both are checked).
func hasParam(q string, names []string) bool {
	maxEnc := 0
	for _, n := range names {
		maxEnc = max(maxEnc, 3*len(n)+6) // fully percent-encoded, plus "%5B%5D"
	}
	for q != "" {
		part := q
		if i := strings.IndexAny(q, "&;"); i >= 0 {
			part, q = q[:i], q[i+1:]
		} else {
			q = ""
		}
		name := part
		if i := strings.IndexByte(part, '='); i >= 0 {
			name = part[:i]
		}
		if name == "" || len(name) > maxEnc+8 {
			continue
		}
		if paramNameMatches(name, names) {
			return true
		}
	}
	return false
}

// paramNameMatches decodes a (short) form-encoded parameter name and compares
// it with names. Invalid escapes are kept literally, as lenient decoders do.
func paramNameMatches(enc string, names []string) bool {
	var buf [64]byte
	dec := buf[:0]
	for i := 0; i < len(enc); i++ {
		c := enc[i]
		switch {
		case c == '+':
			c = ' '
		case c == '%' && i+2 < len(enc):
			if h, ok := unhex(enc[i+1]); ok {
				if l, ok := unhex(enc[i+2]); ok {
					c = h<<4 | l
					i += 2
				}
			}
		}
		dec = append(dec, c)
	}
	s := strings.TrimSpace(string(dec))
	s = strings.TrimSuffix(s, "[]")
	for _, n := range names {
		if len(s) != len(n) {
			continue
		}
		match := true
		for j := 0; j < len(s); j++ {
			a := s[j]
			switch {
			case 'A' <= a && a <= 'Z':
				a += 'a' - 'A'
			case a == '-':
				a = '_'
			}
			if a != n[j] { // names are lower-case with '_'
				match = false
				break
			}
		}
		if match {
			return true
		}
	}
	return false
}
