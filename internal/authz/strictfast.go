package authz

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"
)

// errMalformedJSON is the scanner's syntax error: the caller falls back to
// encoding/json, which decides (and words) the answer.
var errMalformedJSON = errors.New("malformed JSON")

// linearMembers is how many member names of one object are compared
// pairwise before a map takes over (keeps large objects linear).
const linearMembers = 16

// strictScan is a validating JSON scanner that allocates nothing per token.
// It is never more permissive than encoding/json: whatever it accepts,
// json.Valid accepts (FuzzCheckStrict, FuzzSplitObject). It also refuses
// duplicate member names (decoded, compared byte for byte) and nesting
// deeper than maxDepth, as checkStrict's token walker does.
type strictScan struct {
	b []byte
	i int
}

// fastStrict is checkStrict's fast path for a UTF-8 body. decided is false
// when the token walker must give the answer (a syntax error, a duplicate
// member or too deep a nesting: its messages are the reference).
func fastStrict(body []byte) (decided bool, err error) {
	s := strictScan{b: body}
	s.space()
	if s.i >= len(s.b) || s.b[s.i] != '{' {
		return true, errNotObject // whatever follows, as the walker says
	}
	if err := s.object(1); err != nil {
		return false, err
	}
	s.space()
	if s.i != len(s.b) {
		return true, errTrailing
	}
	return true, nil
}

func (s *strictScan) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// next skips white space and returns the byte at s.i (0 at the end).
func (s *strictScan) next() byte {
	s.space()
	if s.i >= len(s.b) {
		return 0
	}
	return s.b[s.i]
}

// object scans the object at s.i (its '{') at depth.
func (s *strictScan) object(depth int) error {
	if depth > maxDepth {
		return errTooDeep
	}
	s.i++ // '{'
	if s.next() == '}' {
		s.i++
		return nil
	}
	// The names seen so far: on this frame's stack while the object is
	// small, then in a map.
	var small [linearMembers][]byte
	names := small[:0]
	var seen map[string]struct{}
	for {
		if s.next() != '"' {
			return errMalformedJSON
		}
		k, err := s.name()
		if err != nil {
			return err
		}
		if names, err = member(names, &seen, k); err != nil {
			return err
		}
		if s.next() != ':' {
			return errMalformedJSON
		}
		s.i++
		s.space()
		if err := s.value(depth); err != nil {
			return err
		}
		switch s.next() {
		case ',':
			s.i++
		case '}':
			s.i++
			return nil
		default:
			return errMalformedJSON
		}
	}
}

// member records the name k in names (or, past linearMembers names, in
// *seen), refusing a duplicate.
func member(names [][]byte, seen *map[string]struct{}, k []byte) ([][]byte, error) {
	if *seen != nil {
		if _, dup := (*seen)[string(k)]; dup {
			return names, fmt.Errorf("duplicate member %s", quoteName(string(k)))
		}
		(*seen)[string(k)] = struct{}{}
		return names, nil
	}
	for _, prev := range names {
		if string(prev) == string(k) {
			return names, fmt.Errorf("duplicate member %s", quoteName(string(k)))
		}
	}
	if len(names) < cap(names) {
		return append(names, k), nil
	}
	*seen = make(map[string]struct{}, 2*linearMembers)
	for _, prev := range names {
		(*seen)[string(prev)] = struct{}{}
	}
	(*seen)[string(k)] = struct{}{}
	return names, nil
}

// value scans the value at s.i inside a container at depth.
func (s *strictScan) value(depth int) error {
	if s.i >= len(s.b) {
		return errMalformedJSON
	}
	switch c := s.b[s.i]; {
	case c == '{':
		return s.object(depth + 1)
	case c == '[':
		return s.array(depth + 1)
	case c == '"':
		_, err := s.str()
		return err
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	case c == '-' || ('0' <= c && c <= '9'):
		return s.number()
	}
	return errMalformedJSON
}

func (s *strictScan) array(depth int) error {
	if depth > maxDepth {
		return errTooDeep
	}
	s.i++ // '['
	if s.next() == ']' {
		s.i++
		return nil
	}
	for {
		s.space()
		if err := s.value(depth); err != nil {
			return err
		}
		switch s.next() {
		case ',':
			s.i++
		case ']':
			s.i++
			return nil
		default:
			return errMalformedJSON
		}
	}
}

func (s *strictScan) literal(lit string) error {
	if len(s.b)-s.i < len(lit) || string(s.b[s.i:s.i+len(lit)]) != lit {
		return errMalformedJSON
	}
	s.i += len(lit)
	return nil
}

// number scans -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?.
func (s *strictScan) number() error {
	if s.b[s.i] == '-' {
		s.i++
	}
	switch {
	case s.i < len(s.b) && s.b[s.i] == '0':
		s.i++
	case s.digits() == 0:
		return errMalformedJSON
	}
	if s.i < len(s.b) && s.b[s.i] == '.' {
		s.i++
		if s.digits() == 0 {
			return errMalformedJSON
		}
	}
	if s.i < len(s.b) && (s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		s.i++
		if s.i < len(s.b) && (s.b[s.i] == '+' || s.b[s.i] == '-') {
			s.i++
		}
		if s.digits() == 0 {
			return errMalformedJSON
		}
	}
	return nil
}

func (s *strictScan) digits() int {
	start := s.i
	for s.i < len(s.b) && '0' <= s.b[s.i] && s.b[s.i] <= '9' {
		s.i++
	}
	return s.i - start
}

// str scans the string at s.i and reports whether it holds an escape.
func (s *strictScan) str() (escaped bool, err error) {
	s.i++ // opening quote
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			return escaped, nil
		case c == '\\':
			escaped = true
			if s.i+1 >= len(s.b) {
				return false, errMalformedJSON
			}
			switch s.b[s.i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.i += 2
			case 'u':
				if len(s.b)-s.i < 6 || !isHex(s.b[s.i+2]) || !isHex(s.b[s.i+3]) || !isHex(s.b[s.i+4]) || !isHex(s.b[s.i+5]) {
					return false, errMalformedJSON
				}
				s.i += 6
			default:
				return false, errMalformedJSON
			}
		case c < 0x20:
			return false, errMalformedJSON
		default:
			s.i++
		}
	}
	return false, errMalformedJSON
}

func isHex(c byte) bool {
	return ('0' <= c && c <= '9') || ('a' <= c && c <= 'f') || ('A' <= c && c <= 'F')
}

// name returns the decoded member name at s.i: the raw bytes when it has no
// escape (the body is valid UTF-8), else its decoding.
func (s *strictScan) name() ([]byte, error) {
	start := s.i
	escaped, err := s.str()
	if err != nil {
		return nil, err
	}
	if !escaped {
		return s.b[start+1 : s.i-1], nil
	}
	var k string
	// A copy: handing s.b itself to json.Unmarshal would move every
	// scanner's buffers to the heap (escape analysis).
	if err := json.Unmarshal(bytes.Clone(s.b[start:s.i]), &k); err != nil {
		return nil, errMalformedJSON
	}
	return []byte(k), nil
}

// splitObject splits raw, a JSON object of valid UTF-8, into its members
// without copying: each value is a sub-slice of raw. ok is false whenever
// the scanner does not decide alone (malformed JSON, a repeated name at any
// depth, nesting deeper than maxDepth): json.Unmarshal then does.
func splitObject(raw []byte) (m map[string]json.RawMessage, ok bool) {
	if !utf8.Valid(raw) {
		return nil, false
	}
	s := strictScan{b: raw}
	if s.next() != '{' {
		return nil, false
	}
	m = make(map[string]json.RawMessage, 8)
	// Depth 1 checks names of the top level for duplicates and bounds the
	// recursion; the values are scanned by the same code.
	start := s.i
	if err := s.object(1); err != nil {
		return nil, false
	}
	end := s.i
	if s.space(); s.i != len(s.b) {
		return nil, false
	}
	// Second pass over the now validated object, collecting the members.
	s.i = start + 1
	if s.next() == '}' {
		return m, true
	}
	for s.i < end {
		s.space()
		k, _ := s.name()
		s.next()
		s.i++ // ':'
		s.space()
		v := s.i
		_ = s.value(1)
		m[string(k)] = json.RawMessage(raw[v:s.i:s.i])
		s.next()
		s.i++ // ',' or '}'
	}
	return m, true
}

// plainString returns the contents of raw when it is a JSON string that
// decodes to its own bytes (no escape, no control character, ASCII).
func plainString(raw []byte) (string, bool) {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return "", false
	}
	in := raw[1 : len(raw)-1]
	for _, c := range in {
		if c < 0x20 || c == '"' || c == '\\' || c >= 0x80 {
			return "", false
		}
	}
	return string(in), true
}

// decodeObject decodes raw, a JSON object, as json.Decoder with UseNumber
// into map[string]any would (numbers as json.Number, arrays as []any),
// when the scanner decides alone (ok = false otherwise: malformed JSON,
// invalid UTF-8, a repeated name, nesting deeper than maxDepth).
func decodeObject(raw []byte) (map[string]any, bool) {
	if !utf8.Valid(raw) {
		return nil, false
	}
	s := strictScan{b: raw}
	if s.next() != '{' {
		return nil, false
	}
	start := s.i
	if err := s.object(1); err != nil {
		return nil, false
	}
	if s.space(); s.i != len(s.b) {
		return nil, false
	}
	s.i = start
	v, err := s.build()
	if err != nil {
		return nil, false
	}
	return v.(map[string]any), true
}

// build decodes the validated value at s.i.
func (s *strictScan) build() (any, error) {
	switch c := s.b[s.i]; {
	case c == '{':
		s.i++
		m := map[string]any{}
		if s.next() == '}' {
			s.i++
			return m, nil
		}
		for {
			s.space()
			k, err := s.name()
			if err != nil {
				return nil, err
			}
			s.next()
			s.i++ // ':'
			s.space()
			v, err := s.build()
			if err != nil {
				return nil, err
			}
			m[string(k)] = v
			if s.next() == '}' {
				s.i++
				return m, nil
			}
			s.i++ // ','
		}
	case c == '[':
		s.i++
		l := []any{}
		if s.next() == ']' {
			s.i++
			return l, nil
		}
		for {
			s.space()
			v, err := s.build()
			if err != nil {
				return nil, err
			}
			l = append(l, v)
			if s.next() == ']' {
				s.i++
				return l, nil
			}
			s.i++ // ','
		}
	case c == '"':
		start := s.i
		if _, err := s.str(); err != nil {
			return nil, err
		}
		if v, ok := plainString(s.b[start:s.i]); ok {
			return v, nil
		}
		var v string
		if err := json.Unmarshal(bytes.Clone(s.b[start:s.i]), &v); err != nil {
			return nil, errMalformedJSON
		}
		return v, nil
	case c == 't':
		s.i += 4
		return true, nil
	case c == 'f':
		s.i += 5
		return false, nil
	case c == 'n':
		s.i += 4
		return nil, nil
	}
	start := s.i
	if err := s.number(); err != nil {
		return nil, err
	}
	return json.Number(s.b[start:s.i]), nil
}
