package edge

import (
	"net/netip"
	"strings"
)

const (
	maxHostNameLen = 253
	maxLabelLen    = 63
)

// HostName normalizes a Host header value for routing: ASCII lower-case,
// port removed, one trailing dot removed; IDNA is not decoded (punycode
// stays as sent). IPv6 literals keep their brackets and are written in
// canonical form ("[0:0::1]:8443" -> "[::1]").
//
// It reports ok=false for: empty input; control bytes, whitespace or any
// non-ASCII byte; '/', '\\', '@', '?', '#', '%'; more than one ':' outside
// brackets; a non-numeric or out-of-range port; empty labels ("a..b");
// characters other than letters, digits, '-', '_' and '.'; a name longer
// than 253 bytes or a label longer than 63; an invalid or zoned IPv6
// literal.
func HostName(host string) (string, bool) {
	if host == "" || len(host) > maxHostNameLen+len("[]:65535.") {
		return "", false
	}
	for i := 0; i < len(host); i++ {
		c := host[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte("/\\@?#%", c) >= 0 {
			return "", false
		}
	}
	if host[0] == '[' {
		end := strings.IndexByte(host, ']')
		if end < 0 || !validPort(host[end+1:]) {
			return "", false
		}
		a, err := netip.ParseAddr(host[1:end])
		if err != nil || !a.Is6() || a.Zone() != "" {
			return "", false
		}
		return "[" + a.String() + "]", true
	}
	name := host
	if i := strings.IndexByte(host, ':'); i >= 0 {
		if !validPort(host[i:]) {
			return "", false
		}
		name = host[:i]
	}
	name = strings.TrimSuffix(name, ".")
	if name == "" || len(name) > maxHostNameLen {
		return "", false
	}
	label := 0
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c == '.':
			if label == 0 {
				return "", false
			}
			label = 0
			continue
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_':
		default:
			return "", false
		}
		label++
		if label > maxLabelLen {
			return "", false
		}
	}
	if label == 0 {
		return "", false
	}
	return strings.ToLower(name), true
}

// validPort reports whether s is "" or ":" followed by at most 5 digits
// forming a number <= 65535 (an empty port after ':' is allowed by RFC 3986).
func validPort(s string) bool {
	if s == "" {
		return true
	}
	if s[0] != ':' || len(s) > 6 {
		return false
	}
	n := 0
	for i := 1; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
		n = n*10 + int(s[i]-'0')
	}
	return n <= 65535
}
