package edge

import (
	"net/http"
	"net/textproto"
	"strings"
)

// IdentityHeaders is the canonical list of header names the gateway sets or
// that downstream services might trust (GW-01). A trailing '*' makes an entry
// a prefix pattern ("X-Auth-*" covers every header whose name starts with
// "X-Auth-"). Names are compared case-insensitively with '_' equal to '-'.
//
// ScrubIdentityHeaders uses a private copy taken at start-up; modifying this
// slice does not change what is scrubbed (pass extra names instead). It is
// meant to be passed as RemoveHopByHop's protected list.
var IdentityHeaders = []string{
	"X-Auth-*",
	"X-User-Id",
	"X-User",
	"X-Forwarded-User",
	"X-Forwarded-Email",
	"X-Forwarded-Groups",
	"X-Forwarded-Preferred-Username",
	"X-Forwarded-Access-Token",
	"X-Forwarded-Client-Cert",
	"X-Client-Cert",
	"X-Client-Cert-Chain",
	"Client-Cert",
	"Client-Cert-Chain",
	"X-Ssl-Client-Cert",
	"X-Remote-User",
	"Remote-User",
	"Remote-Groups",
	"Remote-Email",
	"Remote-Name",
}

// identityExact and identityPrefixes are the private, folded copy of
// IdentityHeaders (exact names and '*' prefix patterns).
var identityExact, identityPrefixes = func() (map[string]struct{}, []string) {
	exact := make(map[string]struct{}, len(IdentityHeaders))
	var prefixes []string
	for _, n := range IdentityHeaders {
		if f := foldString(n); strings.HasSuffix(f, "*") {
			prefixes = append(prefixes, f)
		} else {
			exact[f] = struct{}{}
		}
	}
	return exact, prefixes
}()

// maxFoldedLookup is the longest name isDefaultIdentity folds on the stack;
// every default exact name is shorter.
const maxFoldedLookup = 64

func isDefaultIdentity(name string) bool {
	if matchesAny(name, identityPrefixes) {
		return true
	}
	if len(name) > maxFoldedLookup {
		return false
	}
	var buf [maxFoldedLookup]byte
	for i := 0; i < len(name); i++ {
		buf[i] = foldByte(name[i])
	}
	_, ok := identityExact[string(buf[:len(name)])]
	return ok
}

// foldByte lower-cases ASCII letters and maps '_' to '-'.
func foldByte(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + ('a' - 'A')
	}
	if c == '_' {
		return '-'
	}
	return c
}

func foldString(s string) string {
	b := make([]byte, len(s))
	for i := 0; i < len(s); i++ {
		b[i] = foldByte(s[i])
	}
	return string(b)
}

// foldMatch reports whether name matches pattern under folding; a pattern
// ending in '*' is a prefix pattern. Empty patterns and a bare "*" match
// nothing.
func foldMatch(name, pattern string) bool {
	if pattern == "" || pattern == "*" {
		return false
	}
	if pattern[len(pattern)-1] == '*' {
		pattern = pattern[:len(pattern)-1]
		if len(name) < len(pattern) {
			return false
		}
		name = name[:len(pattern)]
	} else if len(name) != len(pattern) {
		return false
	}
	for i := 0; i < len(name); i++ {
		if foldByte(name[i]) != foldByte(pattern[i]) {
			return false
		}
	}
	return true
}

func matchesAny(name string, patterns []string) bool {
	for _, p := range patterns {
		if foldMatch(name, p) {
			return true
		}
	}
	return false
}

// IsIdentityHeader reports whether name is an identity header (GW-01) or
// matches one of extra, under the folding ScrubIdentityHeaders uses.
func IsIdentityHeader(name string, extra ...string) bool {
	return isDefaultIdentity(name) || matchesAny(name, extra)
}

// ScrubIdentityHeaders deletes from h, with all their values, every header
// whose name is an identity header after folding (case-insensitive, '_'
// equal to '-': "x_auth_subject", "X-AUTH-SUBJECT" and "X_Auth-Subject" all
// go). extra lists additional configured names (a trailing '*' makes a
// prefix pattern). If strictUnderscore is true, every header whose name
// contains '_' is deleted as well (nginx-style).
func ScrubIdentityHeaders(h http.Header, strictUnderscore bool, extra ...string) {
	for k := range h {
		if (strictUnderscore && strings.IndexByte(k, '_') >= 0) || IsIdentityHeader(k, extra...) {
			delete(h, k)
		}
	}
}

// hopByHopHeaders are removed by every proxy (RFC 9110 §7.6.1 plus the
// legacy Proxy-Connection and Keep-Alive).
var hopByHopHeaders = []string{
	"Connection",
	"Keep-Alive",
	"Proxy-Connection",
	"Proxy-Authenticate",
	"Proxy-Authorization",
	"Te",
	"Trailer",
	"Transfer-Encoding",
	"Upgrade",
}

const (
	// maxConnectionNamesReported bounds RemoveHopByHop's result.
	maxConnectionNamesReported = 32
	// maxReportedNameLen truncates each reported name (for logging).
	maxReportedNameLen = 64
)

// RemoveHopByHop deletes the hop-by-hop headers and every header named in
// Connection, except that names matching protected (case-insensitive, '_'
// equal to '-', trailing '*' as prefix pattern) are never deleted because of
// Connection (GW-05: "Connection: X-Auth-Subject" must not delete the header
// the gateway sets). It returns the syntactically valid names requested via
// Connection, in order, at most 32, each truncated to 64 bytes, for logging.
func RemoveHopByHop(h http.Header, protected ...string) []string {
	var named []string
	for k, lines := range h {
		if !strings.EqualFold(k, "Connection") {
			continue
		}
		for _, line := range lines {
			for line != "" {
				name := line
				if i := strings.IndexByte(line, ','); i >= 0 {
					name, line = line[:i], line[i+1:]
				} else {
					line = ""
				}
				name = textproto.TrimString(name)
				if !isToken(name) {
					continue
				}
				if len(named) < maxConnectionNamesReported {
					named = append(named, name[:min(len(name), maxReportedNameLen)])
				}
				if matchesAny(name, protected) {
					continue
				}
				h.Del(name)
			}
		}
	}
	for _, k := range hopByHopHeaders {
		h.Del(k)
	}
	// Non-canonical keys (set directly on the map) are removed too.
	for k := range h {
		for _, hop := range hopByHopHeaders {
			if strings.EqualFold(k, hop) {
				delete(h, k)
				break
			}
		}
	}
	return named
}

// isToken reports whether s is a non-empty RFC 9110 token.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isTchar(s[i]) {
			return false
		}
	}
	return true
}

func isTchar(c byte) bool {
	if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' {
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}
