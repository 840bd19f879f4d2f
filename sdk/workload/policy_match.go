package workload

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// idMatcher is one compiled `from`/`to` entry.
type idMatcher struct {
	td     string // trust domain name
	id     string // exact: the whole ID string
	prefix string // set: path prefix ending in "/" ("/" for the whole trust domain)
	set    bool
}

func (m *idMatcher) match(id spiffeid.ID) bool {
	if !m.set {
		return id.String() == m.id
	}
	if id.TrustDomain().Name() != m.td {
		return false
	}
	p := id.Path()
	return len(p) > len(m.prefix) && strings.HasPrefix(p, m.prefix)
}

func matchAny(ms []idMatcher, id spiffeid.ID) bool {
	for i := range ms {
		if ms[i].match(id) {
			return true
		}
	}
	return false
}

// pathMatcher is one compiled `paths` entry.
type pathMatcher struct {
	exact  string // exact path, or
	prefix string // "/x/" for "/x/*"
}

func (m *pathMatcher) match(p string) bool {
	if m.prefix == "" {
		return p == m.exact
	}
	return len(p) > len(m.prefix) && strings.HasPrefix(p, m.prefix)
}

type compiledRule struct {
	name    string
	deny    bool
	from    []idMatcher
	to      []idMatcher
	paths   []pathMatcher // empty: any
	methods []string      // empty: any
	reason  string        // precomputed Decision.Reason
}

// connectionLevel reports whether the rule ignores method and path.
func (c *compiledRule) connectionLevel() bool { return len(c.paths) == 0 && len(c.methods) == 0 }

func (c *compiledRule) matchRequest(method, path string) bool {
	if len(c.methods) > 0 {
		ok := false
		for _, m := range c.methods {
			// net/http serves HEAD with the GET handler: a deny on GET
			// denies HEAD too (an allow on GET does not widen to HEAD).
			if m == method || c.deny && m == "GET" && method == "HEAD" {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	if len(c.paths) == 0 {
		return true
	}
	for i := range c.paths {
		// A deny on "/x/*" also covers "/x/" itself, which net/http's
		// subtree pattern "/x/" serves (an allow keeps the exact meaning).
		if c.paths[i].match(path) || c.deny && c.paths[i].prefix != "" && path == c.paths[i].prefix {
			return true
		}
	}
	return false
}

func compileRule(i int, r *Rule) (compiledRule, []error) {
	c := compiledRule{name: r.Name}
	var errs []error
	switch r.Effect {
	case EffectAllow:
		c.reason = "allowed by rule " + strconv.Quote(r.Name)
	case EffectDeny:
		c.deny = true
		c.reason = "denied by rule " + strconv.Quote(r.Name)
	default:
		errs = append(errs, fmt.Errorf("rules[%d].effect: %q is not allow or deny", i, truncate(r.Effect, 40)))
	}
	var e []error
	c.from, e = compileIDs(i, "from", r.From)
	errs = append(errs, e...)
	c.to, e = compileIDs(i, "to", r.To)
	errs = append(errs, e...)
	for j, p := range r.Paths {
		m, err := compilePath(p)
		if err != nil {
			errs = append(errs, fmt.Errorf("rules[%d].paths[%d]: %w", i, j, err))
			continue
		}
		c.paths = append(c.paths, m)
	}
	for j, m := range r.Methods {
		if !validMethod(m) {
			errs = append(errs, fmt.Errorf("rules[%d].methods[%d]: %q is not an upper-case HTTP method", i, j, truncate(m, 40)))
			continue
		}
		c.methods = append(c.methods, m)
	}
	return c, errs
}

func compileIDs(i int, field string, pats []string) ([]idMatcher, []error) {
	if len(pats) == 0 {
		return nil, []error{fmt.Errorf("rules[%d].%s: at least one SPIFFE ID or pattern is required", i, field)}
	}
	var errs []error
	out := make([]idMatcher, 0, len(pats))
	for j, s := range pats {
		m, err := compileID(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("rules[%d].%s[%d]: %q: %w", i, field, j, truncate(s, 100), err))
			continue
		}
		out = append(out, m)
	}
	return out, errs
}

// compileID parses an exact SPIFFE ID ("spiffe://td/path"), a set
// "spiffe://td/prefix/*" or a whole trust domain "spiffe://td/*".
func compileID(s string) (idMatcher, error) {
	if base, ok := strings.CutSuffix(s, "/*"); ok {
		id, err := spiffeid.FromString(base)
		if err != nil {
			return idMatcher{}, fmt.Errorf("not a SPIFFE ID pattern: %w", err)
		}
		if id.String() != base {
			return idMatcher{}, errors.New("not in canonical form")
		}
		return idMatcher{td: id.TrustDomain().Name(), prefix: id.Path() + "/", set: true}, nil
	}
	if strings.Contains(s, "*") {
		return idMatcher{}, errors.New(`"*" is allowed only as the whole last segment`)
	}
	id, err := spiffeid.FromString(s)
	if err != nil {
		return idMatcher{}, fmt.Errorf("not a SPIFFE ID: %w", err)
	}
	if id.Path() == "" {
		return idMatcher{}, errors.New(`a SPIFFE ID needs a path (use "spiffe://td/*" for the whole trust domain)`)
	}
	if id.String() != s {
		return idMatcher{}, errors.New("not in canonical form")
	}
	return idMatcher{td: id.TrustDomain().Name(), id: s}, nil
}

// compilePath parses an exact path or "/prefix/*". Patterns are written as
// decoded paths (what the handler sees in r.URL.Path) and must be canonical.
func compilePath(p string) (pathMatcher, error) {
	if strings.ContainsAny(p, "%?#") {
		return pathMatcher{}, errors.New(`a path pattern must not contain "%", "?" or "#"`)
	}
	if base, ok := strings.CutSuffix(p, "/*"); ok {
		if strings.Contains(base, "*") {
			return pathMatcher{}, errors.New(`"*" is allowed only as the whole last segment`)
		}
		if base != "" {
			if why := nonCanonicalPattern(base); why != "" {
				return pathMatcher{}, fmt.Errorf("not canonical: %s", why)
			}
			if strings.HasSuffix(base, "/") {
				return pathMatcher{}, errors.New("not canonical: empty segment")
			}
		}
		return pathMatcher{prefix: base + "/"}, nil
	}
	if strings.Contains(p, "*") {
		return pathMatcher{}, errors.New(`"*" is allowed only as the whole last segment ("/x/*")`)
	}
	if why := nonCanonicalPattern(p); why != "" {
		return pathMatcher{}, fmt.Errorf("not canonical: %s", why)
	}
	return pathMatcher{exact: p}, nil
}

// nonCanonicalPattern returns why the decoded path pattern p is not
// canonical, or "" when it is: it must start with "/", be valid UTF-8 with
// no control character or backslash, and have no empty ("//"), "." or ".."
// segment (a trailing "/" is allowed).
func nonCanonicalPattern(p string) string {
	if p == "" {
		return "empty path"
	}
	if p[0] != '/' {
		return "no leading /"
	}
	if !utf8.ValidString(p) {
		return "invalid UTF-8"
	}
	for _, r := range p {
		if r < 0x20 || r == 0x7f || r == '\\' {
			return "control character or backslash"
		}
	}
	segs := strings.Split(p[1:], "/")
	for i, seg := range segs {
		if seg == "" && i == len(segs)-1 {
			break // trailing slash
		}
		if why := badSegment(seg); why != "" {
			return why
		}
	}
	return ""
}

// validMethod reports whether m is an HTTP token without lower-case letters.
func validMethod(m string) bool {
	if m == "" || len(m) > 32 {
		return false
	}
	for i := 0; i < len(m); i++ {
		c := m[i]
		switch {
		case c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// nonCanonical returns why the escaped request path p is not canonical, or
// "" when it is: it must start with "/", have no empty segment inside ("//"),
// no "." or ".." segment, no backslash, no control or non-ASCII byte, only
// well-formed percent-escapes, and no escape of "/", "\" or "." (any case),
// nor of an unreserved character (which has a shorter spelling).
func nonCanonical(p string) string {
	if p == "" {
		return "empty path"
	}
	if p[0] != '/' {
		return "no leading /"
	}
	segStart := 1
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '/':
			if i > 0 {
				if why := badSegment(p[segStart:i]); why != "" {
					return why
				}
				segStart = i + 1
			}
		case c == '\\':
			return "backslash"
		case c <= 0x20 || c >= 0x7f:
			return "control, space or non-ASCII byte"
		case c == '%':
			if i+2 >= len(p) || !isHex(p[i+1]) || !isHex(p[i+2]) {
				return "malformed percent-escape"
			}
			b := unhex(p[i+1])<<4 | unhex(p[i+2])
			switch {
			case b == '/' || b == '\\':
				return "encoded / or \\"
			case b == '.':
				return "encoded ."
			case isUnreserved(b):
				return "needless percent-escape"
			}
			i += 2
		}
	}
	if segStart < len(p) {
		return badSegment(p[segStart:])
	}
	return ""
}

func badSegment(s string) string {
	switch s {
	case "":
		return "empty segment (//)"
	case ".", "..":
		return "dot segment"
	}
	return ""
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

func isUnreserved(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' ||
		b == '-' || b == '.' || b == '_' || b == '~'
}

// MayConnect reports whether caller may open a connection to target: some
// allow rule's from matches caller and to matches target, and no deny rule
// without paths and methods matches them. A nil policy denies.
func (p *Policy) MayConnect(caller, target spiffeid.ID) bool {
	if p == nil || caller.IsZero() || target.IsZero() {
		return false
	}
	allowed := false
	deny := false
	p.eachCandidate(target, func(c *compiledRule) bool {
		if !matchAny(c.from, caller) {
			return true
		}
		if c.deny {
			if c.connectionLevel() {
				deny = true
				return false
			}
			return true
		}
		allowed = true
		return true
	})
	return allowed && !deny
}

// Decide decides one request: caller calls target with method on path.
// path is the escaped request path as on the wire (r.URL.EscapedPath()); a
// non-canonical path or method is denied before any rule is looked at. The
// path is then matched decoded, as the handler sees it. A matching deny rule
// wins over any allow; with no matching rule the answer is deny. A nil
// policy denies.
func (p *Policy) Decide(caller, target spiffeid.ID, method, path string) Decision {
	if p == nil {
		return Decision{Reason: "no policy loaded: every call is denied"}
	}
	if caller.IsZero() || target.IsZero() {
		return Decision{Reason: "caller or target SPIFFE ID missing"}
	}
	if !validMethod(method) {
		return Decision{Reason: "request method " + quoteForReason(method) + " is not an upper-case HTTP method"}
	}
	if why := nonCanonical(path); why != "" {
		return Decision{Reason: "request path " + quoteForReason(path) + " is not canonical: " + why}
	}
	decoded := path
	if strings.IndexByte(path, '%') >= 0 {
		d, err := url.PathUnescape(path)
		if err != nil {
			return Decision{Reason: "request path " + quoteForReason(path) + " is not canonical: malformed percent-escape"}
		}
		decoded = d
	}
	var allow, deny *compiledRule
	p.eachCandidate(target, func(c *compiledRule) bool {
		if (c.deny || allow == nil) && matchAny(c.from, caller) && c.matchRequest(method, decoded) {
			if c.deny {
				deny = c
				return false
			}
			allow = c
		}
		return true
	})
	switch {
	case deny != nil:
		return Decision{Rule: deny.name, Reason: deny.reason}
	case allow != nil:
		return Decision{Allow: true, Rule: allow.name, Reason: allow.reason}
	}
	return Decision{Reason: "no rule allows " + caller.String() + " to call " + target.String() + " " +
		method + " " + quoteForReason(path)}
}

// eachCandidate calls fn, in rule order, for every rule with a `to` entry
// matching target, until fn returns false.
func (p *Policy) eachCandidate(target spiffeid.ID, fn func(*compiledRule) bool) {
	a := p.byExactTo[target.String()]
	b := p.byTDTo[target.TrustDomain().Name()]
	for len(a) > 0 || len(b) > 0 {
		var i int32
		switch {
		case len(b) == 0 || len(a) > 0 && a[0] < b[0]:
			i, a = a[0], a[1:]
		case len(a) == 0 || b[0] < a[0]:
			i, b = b[0], b[1:]
		default: // same rule in both lists
			i, a, b = a[0], a[1:], b[1:]
		}
		c := &p.compiled[i]
		if c.to != nil && !matchAny(c.to, target) {
			continue
		}
		if !fn(c) {
			return
		}
	}
}

// quoteForReason returns s for a Reason: as is when it is short printable
// ASCII, quoted and truncated otherwise.
func quoteForReason(s string) string {
	const max = 256
	plain := len(s) > 0 && len(s) <= max
	for i := 0; plain && i < len(s); i++ {
		if s[i] <= 0x20 || s[i] >= 0x7f || s[i] == '"' {
			plain = false
		}
	}
	if plain {
		return s
	}
	return strconv.Quote(truncate(s, max))
}
