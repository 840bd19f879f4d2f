package decisionlog

import (
	"bytes"
	"encoding/json"
	"strings"
)

// Redacted replaces the value of every sensitive key.
const Redacted = "[redacted]"

// maxRedactDepth bounds recursion so that a self-referencing map handed in
// by a caller cannot exhaust the stack; deeper values are replaced.
const maxRedactDepth = 32

// sensitiveKey reports whether the value under key k must be redacted. The
// sensitive words are matched, case-insensitively and ignoring '-', '_', '.'
// and spaces, as substrings of the key: "access_token", "X-Api-Key",
// "Set-Cookie", "private_key" and "clientSecret" are all sensitive.
func sensitiveKey(k string) bool {
	if sensitive, ok := sensitiveASCIIKey(k); ok {
		return sensitive
	}
	sensitiveWords := [...]string{
		"token", "secret", "password", "passwd", "authorization", "cookie", "apikey", "private",
	}
	n := strings.Map(func(r rune) rune {
		switch r {
		case '-', '_', '.', ' ':
			return -1
		}
		return r
	}, strings.ToLower(k))
	for _, w := range sensitiveWords {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}

// Redact returns a deep copy of m in which the value of every key matching
// (case-insensitively, as a substring, ignoring '-', '_' and '.') token,
// secret, password, passwd, authorization, cookie, api_key/apikey/api-key,
// client_secret or private is replaced by "[redacted]", recursively through
// nested objects and arrays. Values that are not JSON-shaped (structs,
// typed slices and maps) are converted through JSON first, so the copy never
// aliases the caller's memory. A nil map stays nil; m is not modified.
func Redact(m map[string]any) map[string]any {
	return redactMap(m, 0)
}

func redactMap(m map[string]any, depth int) map[string]any {
	if m == nil {
		return nil
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		if sensitiveKey(k) {
			out[k] = Redacted
			continue
		}
		out[k] = redactValue(v, depth+1)
	}
	return out
}

func redactValue(v any, depth int) any {
	if depth > maxRedactDepth {
		return "[too deep]"
	}
	switch x := v.(type) {
	case nil, string, bool, json.Number,
		float64, float32, int, int8, int16, int32, int64,
		uint, uint8, uint16, uint32, uint64:
		return x
	case map[string]any:
		return redactMap(x, depth)
	case []any:
		if x == nil {
			return []any(nil)
		}
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = redactValue(e, depth+1)
		}
		return out
	default:
		// Anything else (structs, []string, map[string]string, time.Time,
		// named types) is snapshotted through its JSON form.
		b, err := json.Marshal(x)
		if err != nil {
			return "[unencodable]"
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		var y any
		if err := dec.Decode(&y); err != nil {
			return "[unencodable]"
		}
		switch y.(type) {
		case map[string]any, []any:
			return redactValue(y, depth)
		}
		return y
	}
}
