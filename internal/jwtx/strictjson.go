package jwtx

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxJSONDepth bounds the nesting of header and payload JSON (JWT-F01).
const maxJSONDepth = 16

// errDuplicateMember is wrapped in ErrMalformed when an object repeats a
// member, exactly or as a case variant (JWT-E02).
var errDuplicateMember = errors.New("duplicate JSON member")

// frame is one open JSON container while checkStrictObject walks tokens.
type frame struct {
	obj     bool
	wantKey bool                // next token in this object is a member name
	keys    map[string]struct{} // fold keys seen in this object
}

// checkStrictObject reports whether data is exactly one JSON object with
// valid UTF-8, no trailing data, nesting at most maxJSONDepth, and no object
// (at any depth) repeating a member name, either exactly or as a variant that
// encoding/json would match case-insensitively ("sub" and "Sub"). It walks
// tokens iteratively, so its cost is linear in len(data) with no recursion.
func checkStrictObject(data []byte) error {
	if !utf8.Valid(data) {
		// encoding/json silently replaces invalid UTF-8 with U+FFFD.
		return fmt.Errorf("%w: JSON is not valid UTF-8", ErrMalformed)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var stack []*frame
	started := false
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			if started && len(stack) == 0 {
				return nil
			}
			return fmt.Errorf("%w: truncated JSON", ErrMalformed)
		}
		if err != nil {
			return fmt.Errorf("%w: invalid JSON", ErrMalformed)
		}
		if !started {
			if d, ok := tok.(json.Delim); !ok || d != '{' {
				return fmt.Errorf("%w: JSON is not an object", ErrMalformed)
			}
			started = true
		} else if len(stack) == 0 {
			return fmt.Errorf("%w: trailing data after JSON object", ErrMalformed)
		}

		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.obj && top.wantKey {
			switch t := tok.(type) {
			case string:
				k := foldKey(t)
				if _, dup := top.keys[k]; dup {
					return fmt.Errorf("%w: %w", ErrMalformed, errDuplicateMember)
				}
				top.keys[k] = struct{}{}
				top.wantKey = false
				continue
			case json.Delim:
				if t == '}' {
					stack = stack[:len(stack)-1]
					continue
				}
			}
			return fmt.Errorf("%w: invalid JSON", ErrMalformed)
		}

		// tok starts a value (or closes an array).
		if top != nil && top.obj {
			top.wantKey = true
		}
		if d, ok := tok.(json.Delim); ok {
			switch d {
			case '{', '[':
				if len(stack) >= maxJSONDepth {
					return fmt.Errorf("%w: JSON nested too deeply", ErrMalformed)
				}
				f := &frame{obj: d == '{', wantKey: d == '{'}
				if f.obj {
					f.keys = make(map[string]struct{})
				}
				stack = append(stack, f)
			case ']', '}':
				// The decoder guarantees delimiters balance.
				stack = stack[:len(stack)-1]
			}
		}
	}
}

// foldKey maps s to a canonical representative of its case-folding class:
// two names have the same foldKey exactly when strings.EqualFold reports
// them equal, which is how encoding/json matches member names to fields.
func foldKey(s string) string {
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	if ascii {
		// The smallest rune of an ASCII letter's fold orbit is its upper
		// case ('K' < 'k' < U+212A KELVIN SIGN), matching the loop below.
		return strings.ToUpper(s)
	}
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		m := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			if f < m {
				m = f
			}
		}
		b.WriteRune(m)
	}
	return b.String()
}
