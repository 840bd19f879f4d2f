package decisionlog

import "bytes"

// sensitiveASCIIKey is sensitiveKey without allocating, for the common
// keys: ASCII and at most 64 bytes (ok = false otherwise, and the general
// form decides: strings.ToLower maps some non-ASCII runes to ASCII
// letters, e.g. the Kelvin sign to 'k').
func sensitiveASCIIKey(k string) (sensitive, ok bool) {
	var buf [64]byte
	if len(k) > len(buf) {
		return false, false
	}
	n := 0
	for i := 0; i < len(k); i++ {
		c := k[i]
		switch {
		case c >= 0x80:
			return false, false
		case c == '-' || c == '_' || c == '.' || c == ' ':
			continue
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		}
		buf[n] = c
		n++
	}
	norm := buf[:n]
	for _, w := range [...]string{"token", "secret", "password", "passwd", "authorization", "cookie", "apikey", "private"} {
		if bytes.Contains(norm, []byte(w)) {
			return true, true
		}
	}
	return false, true
}
