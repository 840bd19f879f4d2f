package decisionlog

import (
	"encoding/json"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// marshalEntry is json.Marshal(e) without reflection for the shapes an
// entry holds after Redact (nil, string, bool, json.Number, []any and
// map[string]any values); anything else takes json.Marshal. The output is
// byte for byte json.Marshal's (FuzzMarshalEntry).
func marshalEntry(e *Entry) ([]byte, error) {
	if b, ok := appendEntry(make([]byte, 0, 1024), e); ok {
		return b, nil
	}
	return json.Marshal(e)
}

func appendEntry(b []byte, e *Entry) ([]byte, bool) {
	var ok bool
	b = append(b, `{"decision_id":`...)
	b = AppendJSONString(b, e.ID)
	if b, ok = appendTime(append(b, `,"time":`...), e.Time); !ok {
		return nil, false
	}
	if e.Caller != "" {
		b = AppendJSONString(append(b, `,"caller":`...), e.Caller)
	}
	b = append(b, `,"principal":{"type":`...)
	b = AppendJSONString(b, e.Principal.Type)
	b = AppendJSONString(append(b, `,"id":`...), e.Principal.ID)
	if e.Principal.Issuer != "" {
		b = AppendJSONString(append(b, `,"issuer":`...), e.Principal.Issuer)
	}
	if e.Principal.TokenHash != "" {
		b = AppendJSONString(append(b, `,"token_hash":`...), e.Principal.TokenHash)
	}
	if len(e.Principal.Attrs) > 0 {
		if b, ok = appendMap(append(b, `,"attrs":`...), e.Principal.Attrs); !ok {
			return nil, false
		}
	}
	b = AppendJSONString(append(b, `},"action":`...), e.Action)
	b = AppendJSONString(append(b, `,"resource":{"type":`...), e.Resource.Type)
	b = AppendJSONString(append(b, `,"id":`...), e.Resource.ID)
	if len(e.Resource.Attrs) > 0 {
		if b, ok = appendMap(append(b, `,"attrs":`...), e.Resource.Attrs); !ok {
			return nil, false
		}
	}
	b = append(b, '}')
	if len(e.Context) > 0 {
		if b, ok = appendMap(append(b, `,"context":`...), e.Context); !ok {
			return nil, false
		}
	}
	b = strconv.AppendBool(append(b, `,"allow":`...), e.Allow)
	if e.Reason != "" {
		b = AppendJSONString(append(b, `,"reason":`...), e.Reason)
	}
	if len(e.Policies) > 0 {
		b = appendStrings(append(b, `,"policies":`...), e.Policies)
	}
	if len(e.Relations) > 0 {
		b = append(b, `,"relations":[`...)
		for i, r := range e.Relations {
			if i > 0 {
				b = append(b, ',')
			}
			b = AppendJSONString(append(b, `{"check":`...), r.Check)
			b = strconv.AppendBool(append(b, `,"allowed":`...), r.Allowed)
			if len(r.Path) > 0 {
				b = appendStrings(append(b, `,"path":`...), r.Path)
			}
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	if len(e.Errors) > 0 {
		b = appendStrings(append(b, `,"errors":`...), e.Errors)
	}
	if e.PolicyVersion != "" {
		b = AppendJSONString(append(b, `,"policy_version":`...), e.PolicyVersion)
	}
	if e.Revision != "" {
		b = AppendJSONString(append(b, `,"revision":`...), e.Revision)
	}
	b = strconv.AppendInt(append(b, `,"latency_us":`...), e.LatencyMicros, 10)
	if s := e.Shadow; s != nil {
		b = strconv.AppendBool(append(b, `,"shadow":{"allow":`...), s.Allow)
		if s.Reason != "" {
			b = AppendJSONString(append(b, `,"reason":`...), s.Reason)
		}
		if len(s.Policies) > 0 {
			b = appendStrings(append(b, `,"policies":`...), s.Policies)
		}
		if s.Version != "" {
			b = AppendJSONString(append(b, `,"version":`...), s.Version)
		}
		if s.Disagree {
			b = append(b, `,"disagree":true`...)
		}
		b = append(b, '}')
	}
	return append(b, '}'), true
}

// appendTime is time.Time's MarshalJSON for UTC instants of years 0-9999
// (ok = false otherwise).
func appendTime(b []byte, t time.Time) ([]byte, bool) {
	if t.Location() != time.UTC || t.Year() < 0 || t.Year() > 9999 {
		return nil, false
	}
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"'), true
}

func appendStrings(b []byte, l []string) []byte {
	b = append(b, '[')
	for i, s := range l {
		if i > 0 {
			b = append(b, ',')
		}
		b = AppendJSONString(b, s)
	}
	return append(b, ']')
}

// appendMap encodes m with its keys sorted, as encoding/json does.
func appendMap(b []byte, m map[string]any) ([]byte, bool) {
	if m == nil {
		return append(b, "null"...), true
	}
	var small [16]string
	keys := small[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(AppendJSONString(b, k), ':')
		var ok bool
		if b, ok = appendValue(b, m[k]); !ok {
			return nil, false
		}
	}
	return append(b, '}'), true
}

func appendValue(b []byte, v any) ([]byte, bool) {
	switch x := v.(type) {
	case nil:
		return append(b, "null"...), true
	case string:
		return AppendJSONString(b, x), true
	case bool:
		return strconv.AppendBool(b, x), true
	case json.Number:
		if !validNumber(string(x)) {
			return nil, false // json.Marshal words the error ("" is 0)
		}
		return append(b, x...), true
	case map[string]any:
		return appendMap(b, x)
	case []any:
		if x == nil {
			return append(b, "null"...), true
		}
		b = append(b, '[')
		for i, e := range x {
			if i > 0 {
				b = append(b, ',')
			}
			var ok bool
			if b, ok = appendValue(b, e); !ok {
				return nil, false
			}
		}
		return append(b, ']'), true
	}
	return nil, false
}

// validNumber reports whether s is a JSON number.
func validNumber(s string) bool {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	digits := func() int {
		start := i
		for i < len(s) && '0' <= s[i] && s[i] <= '9' {
			i++
		}
		return i - start
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case digits() == 0:
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		if digits() == 0 {
			return false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	return i == len(s)
}

const hexDigits = "0123456789abcdef"

// AppendJSONString appends s as encoding/json encodes a string, HTML
// escaping included (its default): <, > and & as \u003c, \u003e, \u0026, invalid UTF-8 as
// \ufffd, U+2028 and U+2029 escaped.
func AppendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
