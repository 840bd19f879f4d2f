package jwtx

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"
)

// members calls fn for each member of the top-level object in data, in
// order, with the decoded member name and the member's raw value (both may
// alias data; fn must copy what it keeps). data must already have passed
// checkStrictObject, so the walk can rely on valid syntax and unique names;
// it allocates only for names that contain escapes.
func members(data []byte, fn func(name, raw []byte) error) error {
	i := skipSpace(data, 0)
	if i >= len(data) || data[i] != '{' {
		return fmt.Errorf("%w: JSON is not an object", ErrMalformed)
	}
	i = skipSpace(data, i+1)
	if i < len(data) && data[i] == '}' {
		return nil
	}
	for i < len(data) {
		end := valueEnd(data, i)
		rawName := data[i:end]
		name := rawName[1 : len(rawName)-1]
		if bytes.IndexByte(rawName, '\\') >= 0 {
			var s string
			if err := json.Unmarshal(rawName, &s); err != nil {
				return fmt.Errorf("%w: member name", ErrMalformed)
			}
			name = []byte(s)
		}
		i = skipSpace(data, end)
		i = skipSpace(data, i+1) // ':'
		end = valueEnd(data, i)
		if err := fn(name, data[i:end]); err != nil {
			return err
		}
		i = skipSpace(data, end)
		if i >= len(data) || data[i] == '}' {
			return nil
		}
		i = skipSpace(data, i+1) // ','
	}
	return nil
}

func skipSpace(data []byte, i int) int {
	for i < len(data) && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r') {
		i++
	}
	return i
}

// valueEnd returns the index just past the JSON value starting at data[i],
// which must be valid JSON.
func valueEnd(data []byte, i int) int {
	switch data[i] {
	case '"':
		return stringEnd(data, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(data); j++ {
			switch data[j] {
			case '"':
				j = stringEnd(data, j) - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}
		return len(data)
	default:
		j := i
		for j < len(data) && !isDelim(data[j]) {
			j++
		}
		return j
	}
}

// stringEnd returns the index just past the string starting at data[i].
func stringEnd(data []byte, i int) int {
	j := i + 1
	for j < len(data) && data[j] != '"' {
		if data[j] == '\\' {
			j++
		}
		j++
	}
	return j + 1
}

// StringList decodes raw, which must be a JSON array of strings (null, a
// bare string, and non-string members are refused). It is meant for claims
// such as roles and groups in a payload that Verify or ParseClaims accepted.
func StringList(raw []byte) ([]string, error) {
	if !utf8.Valid(raw) || !json.Valid(raw) {
		return nil, errors.New("jwtx: invalid JSON")
	}
	i := skipSpace(raw, 0)
	if i >= len(raw) || raw[i] != '[' {
		return nil, errors.New("jwtx: not an array")
	}
	i = skipSpace(raw, i+1)
	out := make([]string, 0, 4)
	if i < len(raw) && raw[i] == ']' {
		return out, nil
	}
	for i < len(raw) {
		if raw[i] != '"' {
			return nil, errors.New("jwtx: array member is not a string")
		}
		end := stringEnd(raw, i)
		var s string
		if err := jsonString(raw[i:end], &s); err != nil {
			return nil, errors.New("jwtx: array member is not a string")
		}
		out = append(out, s)
		i = skipSpace(raw, end)
		if i >= len(raw) || raw[i] == ']' {
			break
		}
		i = skipSpace(raw, i+1)
	}
	return out, nil
}

// StringValue decodes raw only if it is a JSON string (not null), without
// allocating beyond the result for plain strings.
func StringValue(raw []byte) (string, error) {
	var s string
	if err := jsonString(raw, &s); err != nil {
		return "", errors.New("jwtx: not a string")
	}
	return s, nil
}
