package idp

import (
	"net"
	"net/url"
	"strings"
)

// MatchRedirectURI reports whether got is one of the registered redirect
// URIs (checklist OA-R). The comparison is an exact string match; the single
// exception (RFC 8252 §7.3) is an http loopback IP literal redirect
// (127.0.0.1 or [::1]) whose port may vary. "localhost" gets no exception
// beyond exact match, and localhost and 127.0.0.1 are never interchangeable.
func MatchRedirectURI(registered []string, got string) bool {
	if got == "" || len(got) > 2048 {
		return false
	}
	for _, r := range registered {
		if r == got {
			return true
		}
	}
	gu, ok := loopbackURL(got)
	if !ok {
		return false
	}
	for _, r := range registered {
		ru, ok := loopbackURL(r)
		if !ok {
			continue
		}
		if ru.Hostname() == gu.Hostname() && ru.EscapedPath() == gu.EscapedPath() &&
			ru.RawQuery == gu.RawQuery && stripPort(r) == stripPort(got) {
			return true
		}
	}
	return false
}

// loopbackURL parses s when it is a plain http URL whose host is a loopback
// IP literal, written canonically (lower-case scheme, no user info, no
// fragment, a numeric port when present).
func loopbackURL(s string) (*url.URL, bool) {
	if !strings.HasPrefix(s, "http://127.0.0.1") && !strings.HasPrefix(s, "http://[::1]") {
		return nil, false
	}
	u, err := url.Parse(s)
	if err != nil || u.User != nil || u.Fragment != "" || u.RawFragment != "" || u.Opaque != "" {
		return nil, false
	}
	ip := net.ParseIP(u.Hostname())
	if ip == nil || !ip.IsLoopback() {
		return nil, false
	}
	if p := u.Port(); p != "" {
		for _, c := range p {
			if c < '0' || c > '9' {
				return nil, false
			}
		}
	}
	return u, true
}

// stripPort removes the port of an http loopback URL, leaving everything
// else byte for byte.
func stripPort(s string) string {
	rest := strings.TrimPrefix(s, "http://")
	host := rest
	tail := ""
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		host, tail = rest[:i], rest[i:]
	}
	if strings.HasPrefix(host, "[") {
		if i := strings.Index(host, "]"); i >= 0 {
			host = host[:i+1]
		}
	} else if i := strings.LastIndex(host, ":"); i >= 0 {
		host = host[:i]
	}
	return "http://" + host + tail
}
