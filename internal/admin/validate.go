package admin

import (
	"fmt"
	"net/mail"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gatehouse/gatehouse/internal/apierr"
	"github.com/gatehouse/gatehouse/internal/storage"
)

// Supported grant types (OA-G: implicit and password are not).
const (
	GrantAuthorizationCode = "authorization_code"
	GrantRefreshToken      = "refresh_token"
	GrantClientCredentials = "client_credentials"
	// GrantTokenExchange is RFC 8693 token exchange (confidential clients only).
	GrantTokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange"
)

// Limits on sizes of registered values.
const (
	maxURILen   = 2048
	maxListLen  = 100
	maxTokenLen = 256
	maxNameLen  = 200
	maxTTL      = 366 * 24 * time.Hour
	maxAccess   = 24 * time.Hour
)

// problems collects every validation failure so one 400 lists them all.
type problems []string

// err returns nil or a 400 listing every problem.
func (p problems) err() error {
	if len(p) == 0 {
		return nil
	}
	return apierr.BadRequest(strings.Join(p, "; "), nil)
}

func (p *problems) addf(format string, args ...any) { *p = append(*p, fmt.Sprintf(format, args...)) }

// validClientID reports whether id matches [A-Za-z0-9._-]{1,128}.
func validClientID(id string) bool { return matchIDChars(id, 128, true) }

// validUsername reports whether s matches [a-z0-9._-]{1,64}.
func validUsername(s string) bool { return matchIDChars(s, 64, false) }

func matchIDChars(s string, max int, upper bool) bool {
	if len(s) == 0 || len(s) > max {
		return false
	}
	for i := range len(s) {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
		case upper && c >= 'A' && c <= 'Z':
		default:
			return false
		}
	}
	return true
}

// validScopeToken reports whether s is an RFC 6749 scope-token: one or more
// of %x21 / %x23-5B / %x5D-7E (printable ASCII without space, '"', '\').
func validScopeToken(s string) bool {
	if len(s) == 0 || len(s) > maxTokenLen {
		return false
	}
	for i := range len(s) {
		c := s[i]
		if c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// validText reports whether s has at most max bytes, is valid UTF-8 and has
// no control characters.
func validText(s string, max int) bool {
	return len(s) <= max && utf8.ValidString(s) && !hasControl(s)
}

func hasControl(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f || r == '\uFFFD' || (r >= 0x80 && r < 0xa0) {
			return true
		}
	}
	return false
}

// isLoopbackHost reports whether host (from URL.Hostname) is one of the
// loopback names allowed with plain http.
func isLoopbackHost(host string) bool {
	return host == "127.0.0.1" || host == "::1" || host == "localhost"
}

// checkRedirectURI validates one URI for registration (OA-R): absolute, no
// fragment, no wildcard, no user info, https (http only for loopback hosts)
// or a private-use reverse-domain scheme (RFC 8252 §7.1) for native apps.
func checkRedirectURI(field, raw string, p *problems) {
	bad := func(why string) { p.addf("%s: %q %s", field, clip(raw), why) }
	switch {
	case raw == "":
		bad("is empty")
		return
	case len(raw) > maxURILen:
		bad(fmt.Sprintf("is longer than %d bytes", maxURILen))
		return
	case strings.ContainsAny(raw, " \t\r\n\\") || hasControl(raw):
		bad("contains whitespace, backslash or control characters")
		return
	case strings.Contains(raw, "#"):
		bad("must not contain a fragment")
		return
	case strings.Contains(raw, "*"):
		bad("must not contain a wildcard")
		return
	}
	u, err := url.Parse(raw)
	if err != nil {
		bad("is not a valid URI")
		return
	}
	if u.Scheme == "" {
		bad("must be an absolute URI")
		return
	}
	// url.Parse lower-cases the scheme; look at the raw text.
	if !strings.HasPrefix(raw, u.Scheme+":") {
		bad("must have a lower-case scheme")
		return
	}
	if u.User != nil {
		bad("must not contain user information")
		return
	}
	if hasDotSegment(u.Path) || hasDotSegment(u.Opaque) {
		bad("must not contain dot segments")
		return
	}
	if hasEncodedSeparator(u.EscapedPath()) || hasEncodedSeparator(u.Opaque) {
		bad("must not contain encoded slashes or backslashes")
		return
	}
	switch u.Scheme {
	case "https", "http":
		if u.Opaque != "" || u.Host == "" {
			bad("must have a host")
			return
		}
		if u.Host != strings.ToLower(u.Host) {
			bad("must have a lower-case host")
			return
		}
		if u.Scheme == "http" && !isLoopbackHost(u.Hostname()) {
			bad("must use https (http is allowed only for 127.0.0.1, [::1] and localhost)")
			return
		}
	default:
		// Private-use URI scheme for native apps: a reverse domain name
		// such as com.example.app. This also refuses javascript:, data:,
		// file: and friends, none of which contain a dot.
		if !strings.Contains(u.Scheme, ".") {
			bad("must use https, http on a loopback host, or a private-use scheme such as com.example.app:/callback")
			return
		}
		if u.Host != "" {
			bad("with a private-use scheme must have no authority (use com.example.app:/callback)")
			return
		}
	}
}

// hasDotSegment reports "." or ".." segments of a decoded path (so
// percent-encoded dots count too).
func hasDotSegment(path string) bool {
	for seg := range strings.SplitSeq(path, "/") {
		if seg == "." || seg == ".." {
			return true
		}
	}
	return false
}

// hasEncodedSeparator reports %2F or %5C in an escaped path.
func hasEncodedSeparator(escaped string) bool {
	l := strings.ToLower(escaped)
	return strings.Contains(l, "%2f") || strings.Contains(l, "%5c")
}

// clip shortens values echoed in error messages.
func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

// checkList validates a list of tokens with one rule.
func checkList(field string, vals []string, ok func(string) bool, what string, p *problems) {
	if len(vals) > maxListLen {
		p.addf("%s: at most %d entries", field, maxListLen)
		return
	}
	for _, v := range vals {
		if !ok(v) {
			p.addf("%s: %q is not %s", field, clip(v), what)
		}
	}
}

// dedupe returns vals without repeats, keeping order; nil stays nil.
func dedupe(vals []string) []string {
	var out []string
	for _, v := range vals {
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

// parseTTL parses a lifetime; "" is the server default (zero).
func parseTTL(field, s string, max time.Duration, p *problems) time.Duration {
	if s == "" {
		return 0
	}
	d, err := time.ParseDuration(s)
	switch {
	case err != nil:
		p.addf("%s: %q is not a duration such as 15m or 720h", field, clip(s))
	case d <= 0:
		p.addf("%s: must be positive", field)
	case d > max:
		p.addf("%s: must not exceed %s", field, max)
	default:
		return d
	}
	return 0
}

// validateClient adds every problem of a complete client to p.
func validateClient(c storage.Client, p *problems) {
	if !validClientID(c.ID) {
		p.addf("id: must match [A-Za-z0-9._-]{1,128}")
	}
	if strings.TrimSpace(c.Name) == "" || !validText(c.Name, maxNameLen) {
		p.addf("name: required, at most %d bytes, no control characters", maxNameLen)
	}
	if len(c.RedirectURIs) > maxListLen || len(c.PostLogoutRedirectURIs) > maxListLen {
		p.addf("redirect_uris, post_logout_redirect_uris: at most %d entries each", maxListLen)
	} else {
		for _, u := range c.RedirectURIs {
			checkRedirectURI("redirect_uris", u, p)
		}
		for _, u := range c.PostLogoutRedirectURIs {
			checkRedirectURI("post_logout_redirect_uris", u, p)
		}
	}
	for _, g := range c.GrantTypes {
		switch g {
		case GrantAuthorizationCode, GrantRefreshToken, GrantClientCredentials, GrantTokenExchange:
		case "implicit", "token", "password":
			p.addf("grant_types: %q is not supported (removed by the OAuth 2.0 Security BCP); use authorization_code with PKCE", g)
		default:
			p.addf("grant_types: %q is unknown (supported: authorization_code, refresh_token, client_credentials, %s)", clip(g), GrantTokenExchange)
		}
	}
	if len(c.GrantTypes) == 0 {
		p.addf("grant_types: at least one is required")
	}
	has := func(g string) bool { return slices.Contains(c.GrantTypes, g) }
	if c.Public && has(GrantClientCredentials) {
		p.addf("grant_types: public clients cannot use client_credentials")
	}
	if c.Public && has(GrantTokenExchange) {
		p.addf("grant_types: public clients cannot use token exchange")
	}
	if has(GrantAuthorizationCode) && len(c.RedirectURIs) == 0 {
		p.addf("redirect_uris: authorization_code requires at least one redirect URI")
	}
	if has(GrantRefreshToken) && !has(GrantAuthorizationCode) {
		p.addf("grant_types: refresh_token requires authorization_code")
	}
	checkList("scopes", c.Scopes, validScopeToken, "a scope token (printable ASCII without spaces, quotes or backslash)", p)
	checkList("audiences", c.Audiences, validScopeToken, "a valid audience (printable ASCII without spaces, quotes or backslash)", p)
	if c.RefreshIdleTTL > 0 && c.RefreshMaxTTL > 0 && c.RefreshIdleTTL > c.RefreshMaxTTL {
		p.addf("refresh_idle_ttl: must not exceed refresh_max_ttl")
	}
	if c.SPIFFEID != "" {
		checkSPIFFEID("spiffe_id", c.SPIFFEID, p)
		if c.Public {
			p.addf("spiffe_id: public clients cannot have one (a SPIFFE ID is obtained with client credentials)")
		}
	}
}

// validateUser adds every problem of a complete user to p.
func validateUser(u storage.User, p *problems) {
	if !validUsername(u.Username) {
		p.addf("username: must match [a-z0-9._-]{1,64} after lower-casing")
	}
	if u.Email != "" {
		a, err := mail.ParseAddress(u.Email)
		if err != nil || a.Address != u.Email || a.Name != "" || len(u.Email) > 254 {
			p.addf("email: %q is not a plain email address", clip(u.Email))
		}
	}
	if !validText(u.Name, maxNameLen) {
		p.addf("name: at most %d bytes, no control characters", maxNameLen)
	}
	checkList("roles", u.Roles, validScopeToken, "a valid role (printable ASCII without spaces, quotes or backslash)", p)
	checkList("groups", u.Groups, validScopeToken, "a valid group (printable ASCII without spaces, quotes or backslash)", p)
	if u.Tenant != "" && !validClientID(u.Tenant) {
		p.addf("tenant: must match [A-Za-z0-9._-]{1,128}")
	}
}
