package edge

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// MaxPathLen is the longest path (input and output) NormalizePath accepts.
const MaxPathLen = 8 << 10

// ErrBadPath is returned (possibly wrapped with a reason; test with
// errors.Is) for every path NormalizePath rejects. The reason never contains
// the path itself.
var ErrBadPath = errors.New("edge: path rejected")

func badPath(reason string) error { return fmt.Errorf("%w: %s", ErrBadPath, reason) }

// NormalizePath returns the one canonical form of an HTTP request path
// (r.URL.EscapedPath() or the raw request-target path without the query).
// The result is used for route matching, for authorization and is what the
// upstream receives (GW-03).
//
// Rules:
//   - the path must start with "/" and be at most MaxPathLen bytes;
//   - each percent escape is decoded at most once: escapes of unreserved
//     characters ("%7E", "%41", "%2e") become the character; other escapes
//     stay encoded with upper-case hex ("%3f" -> "%3F");
//   - rejected: "%2F" (encoded slash), "%5C" and a literal backslash, "%25"
//     (double encoding such as "%252f"), raw or encoded control bytes
//     (< 0x20, 0x7f, including NUL), invalid escapes ("%zz", "%4"),
//     invalid UTF-8 after decoding (e.g. the overlong "%c0%af"), '#', '?'
//     (the caller must split the query off first);
//   - empty segments are removed ("//a" -> "/a"), then dot segments "." and
//     ".." are resolved as in RFC 3986 §5.2.4; a ".." above the root is an
//     error, never silently clamped;
//   - case and a trailing slash are preserved;
//   - characters outside RFC 3986 pchar (e.g. space, '"', non-ASCII bytes)
//     are percent-encoded with upper-case hex.
//
// The result is idempotent: NormalizePath(NormalizePath(p)) == NormalizePath(p).
// A path that is already canonical and contains no '%' is returned without
// allocating.
func NormalizePath(escaped string) (string, error) {
	if escaped == "" || escaped[0] != '/' {
		return "", badPath("must start with /")
	}
	if len(escaped) > MaxPathLen {
		return "", badPath("too long")
	}
	if isCleanPath(escaped) {
		return escaped, nil
	}
	return normalizeSlow(escaped)
}

// isCleanPath reports whether p (starting with "/") is already canonical
// without containing any percent escape.
func isCleanPath(p string) bool {
	segStart := 1
	for i := 1; i <= len(p); i++ {
		if i == len(p) || p[i] == '/' {
			seg := p[segStart:i]
			if seg == "." || seg == ".." || (seg == "" && i != len(p)) {
				return false
			}
			segStart = i + 1
			continue
		}
		if !pcharTable[p[i]] {
			return false
		}
	}
	return true
}

func normalizeSlow(p string) (string, error) {
	out := make([]byte, 0, len(p)+8)
	var stackBuf [32]int
	stack := stackBuf[:0] // offsets in out of the '/' starting each kept segment
	var hiBuf [32]byte
	hi := hiBuf[:0] // current run of bytes >= 0x80, validated as UTF-8
	trailing := false
	rest := p[1:]
	for {
		seg, more := rest, false
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			seg, rest, more = rest[:i], rest[i+1:], true
		}
		mark := len(out)
		out = append(out, '/')
		var err error
		if out, hi, err = appendCanonicalSegment(out, hi, seg); err != nil {
			return "", err
		}
		switch string(out[mark+1:]) {
		case "", ".":
			out = out[:mark]
			trailing = !more
		case "..":
			if len(stack) == 0 {
				return "", badPath("dot-dot above root")
			}
			out = out[:stack[len(stack)-1]]
			stack = stack[:len(stack)-1]
			trailing = !more
		default:
			stack = append(stack, mark)
			trailing = false
		}
		if !more {
			break
		}
	}
	if trailing || len(out) == 0 {
		out = append(out, '/')
	}
	if len(out) > MaxPathLen {
		return "", badPath("too long")
	}
	return string(out), nil
}

// appendCanonicalSegment appends the canonical encoding of one raw path
// segment (no '/') to out. hi carries the scratch buffer used to validate
// runs of non-ASCII bytes as UTF-8.
func appendCanonicalSegment(out, hi []byte, seg string) ([]byte, []byte, error) {
	for j := 0; j < len(seg); {
		c := seg[j]
		if c == '%' {
			if j+2 >= len(seg) {
				return nil, nil, badPath("truncated percent escape")
			}
			h, ok1 := unhex(seg[j+1])
			l, ok2 := unhex(seg[j+2])
			if !ok1 || !ok2 {
				return nil, nil, badPath("invalid percent escape")
			}
			b := h<<4 | l
			j += 3
			switch {
			case b == '/':
				return nil, nil, badPath("encoded slash")
			case b == '\\':
				return nil, nil, badPath("encoded backslash")
			case b == '%':
				return nil, nil, badPath("encoded percent (double encoding)")
			case b < 0x20 || b == 0x7f:
				return nil, nil, badPath("encoded control byte")
			case b >= 0x80:
				hi = append(hi, b)
				out = appendEscape(out, b)
				continue
			case isUnreserved(b):
				out = append(out, b)
			default:
				out = appendEscape(out, b)
			}
		} else {
			j++
			switch {
			case c == '\\':
				return nil, nil, badPath("backslash")
			case c < 0x20 || c == 0x7f:
				return nil, nil, badPath("control byte")
			case c == '#':
				return nil, nil, badPath("fragment")
			case c == '?':
				return nil, nil, badPath("query in path")
			case c >= 0x80:
				hi = append(hi, c)
				out = appendEscape(out, c)
				continue
			case pcharTable[c]:
				out = append(out, c)
			default:
				out = appendEscape(out, c)
			}
		}
		// An ASCII byte ends any run of high bytes.
		if len(hi) > 0 {
			if !utf8.Valid(hi) {
				return nil, nil, badPath("invalid UTF-8")
			}
			hi = hi[:0]
		}
	}
	if len(hi) > 0 {
		if !utf8.Valid(hi) {
			return nil, nil, badPath("invalid UTF-8")
		}
		hi = hi[:0]
	}
	return out, hi, nil
}

const upperHex = "0123456789ABCDEF"

func appendEscape(out []byte, b byte) []byte {
	return append(out, '%', upperHex[b>>4], upperHex[b&0xf])
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

func isUnreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

// pcharTable marks the bytes RFC 3986 allows raw in a path segment
// (unreserved / sub-delims / ":" / "@"); '%' is handled separately.
var pcharTable = func() (t [256]bool) {
	for c := 0; c < 256; c++ {
		t[c] = isUnreserved(byte(c))
	}
	for _, c := range []byte("!$&'()*+,;=:@") {
		t[c] = true
	}
	return t
}()

// HasPathPrefix reports whether the normalized path equals prefix or starts
// with prefix followed by "/": "/orders" matches "/orders" and "/orders/1"
// but not "/orders-admin". A prefix ending in "/" matches anything under it
// (but not the path without the trailing slash: "/orders/" does not match
// "/orders"). Comparison is exact and case-sensitive. An empty prefix
// matches nothing (configuration must use "/" for "everything").
func HasPathPrefix(path, prefix string) bool {
	if prefix == "" || !strings.HasPrefix(path, prefix) {
		return false
	}
	if len(path) == len(prefix) || prefix[len(prefix)-1] == '/' {
		return true
	}
	return path[len(prefix)] == '/'
}
