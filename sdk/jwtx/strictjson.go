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

// maxFastKeys is the most members per object the allocation-free scanner
// tracks; larger objects (never seen in real tokens) take the slow path.
const maxFastKeys = 64

// checkStrictObject reports whether data is exactly one JSON object with
// valid UTF-8, no trailing data, nesting at most maxJSONDepth, and no object
// (at any depth) repeating a member name, either exactly or as a variant that
// encoding/json would match case-insensitively ("sub" and "Sub").
//
// The fast path validates syntax with json.Valid and then walks the bytes
// once without allocating; objects with escaped or very many member names
// fall back to checkStrictObjectSlow, the token-walking reference
// implementation (a differential fuzz test keeps the two in agreement).
func checkStrictObject(data []byte) error {
	if !utf8.Valid(data) {
		return fmt.Errorf("%w: JSON is not valid UTF-8", ErrMalformed)
	}
	if !json.Valid(data) {
		return fmt.Errorf("%w: invalid JSON", ErrMalformed)
	}
	type span struct{ a, b int }
	type frame struct {
		obj      bool
		keyStart int
	}
	var stackBuf [maxJSONDepth]frame
	var keyBuf [maxFastKeys]span
	stack, keys := stackBuf[:0], keyBuf[:0]
	var prev byte // last structural byte: '{', '[', ',', ':', or 'v' after a value
	started := false
	for i := 0; i < len(data); {
		switch c := data[i]; c {
		case ' ', '\t', '\n', '\r':
			i++
		case ',', ':':
			prev = c
			i++
		case '{', '[':
			if !started {
				if c != '{' {
					return fmt.Errorf("%w: JSON is not an object", ErrMalformed)
				}
				started = true
			}
			if len(stack) >= maxJSONDepth {
				return fmt.Errorf("%w: JSON nested too deeply", ErrMalformed)
			}
			stack = append(stack, frame{obj: c == '{', keyStart: len(keys)})
			prev = c
			i++
		case '}', ']':
			top := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if top.obj {
				keys = keys[:top.keyStart]
			}
			prev = 'v'
			i++
		case '"':
			j := i + 1
			for data[j] != '"' {
				if data[j] == '\\' {
					j++
				}
				j++
			}
			if !started {
				return fmt.Errorf("%w: JSON is not an object", ErrMalformed)
			}
			top := stack[len(stack)-1]
			if top.obj && (prev == '{' || prev == ',') {
				name := data[i+1 : j]
				if bytes.IndexByte(name, '\\') >= 0 || len(keys) == maxFastKeys {
					return checkStrictObjectSlow(data)
				}
				for _, k := range keys[top.keyStart:] {
					if bytes.EqualFold(data[k.a:k.b], name) {
						return fmt.Errorf("%w: %w", ErrMalformed, errDuplicateMember)
					}
				}
				keys = append(keys, span{i + 1, j})
			}
			prev = 'v'
			i = j + 1
		default:
			if !started {
				return fmt.Errorf("%w: JSON is not an object", ErrMalformed)
			}
			// A number or literal: json.Valid vouched for it.
			for i < len(data) && !isDelim(data[i]) {
				i++
			}
			prev = 'v'
		}
	}
	return nil
}

func isDelim(c byte) bool {
	switch c {
	case ' ', '\t', '\n', '\r', ',', ':', '{', '}', '[', ']', '"':
		return true
	}
	return false
}

// checkStrictObjectSlow is the reference implementation of
// checkStrictObject: it walks tokens with encoding/json's Decoder and keeps
// a fold-key set per object, so it handles escaped and any number of member
// names, at the price of allocations.
func checkStrictObjectSlow(data []byte) error {
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

// CheckObject reports whether data is exactly one JSON object in valid
// UTF-8, nested at most 16 deep, in which no object repeats a member name
// exactly or as a case variant that encoding/json (and go-jose) would match
// (JWT-E02). The SDK applies it to every JSON document it reads from the
// network: JWKS, discovery and introspection answers. Errors wrap
// ErrMalformed.
func CheckObject(data []byte) error { return checkStrictObject(data) }
