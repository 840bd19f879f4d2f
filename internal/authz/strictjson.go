package authz

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/gatehouse/gatehouse/internal/storage"
)

// Request size and shape limits (docs/authz.md, one decision, step 1).
const (
	maxSingleBody = 64 << 10
	maxBatchBody  = 1 << 20
	maxDepth      = 8
	maxBatch      = 100
	maxWrites     = 1000
)

// badRequest is a client error answered 400 with its public message.
type badRequest struct{ msg string }

func (e *badRequest) Error() string { return e.msg }

func badf(format string, args ...any) error { return &badRequest{msg: fmt.Sprintf(format, args...)} }

var (
	errNotObject = errors.New("body must be one JSON object")
	errTrailing  = errors.New("trailing data after the JSON object")
	errTooDeep   = fmt.Errorf("JSON nested deeper than %d levels", maxDepth)
	errNotUTF8   = errors.New("body is not valid UTF-8")
)

// checkStrict validates body as exactly one JSON object of valid UTF-8 with
// no duplicate member names at any depth (compared byte for byte: "Action"
// and "action" are different members, and the first is simply unknown) and
// no nesting deeper than maxDepth.
func checkStrict(body []byte) error {
	if !utf8.Valid(body) {
		// encoding/json would replace invalid bytes with U+FFFD, so that
		// two different strings (tenants, ids, member names) compare equal.
		return errNotUTF8
	}
	if decided, err := fastStrict(body); decided {
		// The common case, without the token walker's allocations; the
		// walker below words every other answer.
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return errNotObject
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return errNotObject
	}
	if err := walkObject(dec, 1); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errTrailing
	}
	return nil
}

func walkObject(dec *json.Decoder, depth int) error {
	if depth > maxDepth {
		return errTooDeep
	}
	seen := map[string]struct{}{}
	for {
		tok, err := dec.Token()
		if err != nil {
			return errors.New("malformed JSON")
		}
		if d, ok := tok.(json.Delim); ok && d == '}' {
			return nil
		}
		k, ok := tok.(string)
		if !ok {
			return errors.New("malformed JSON")
		}
		if _, dup := seen[k]; dup {
			return fmt.Errorf("duplicate member %s", quoteName(k))
		}
		seen[k] = struct{}{}
		if err := walkValue(dec, depth); err != nil {
			return err
		}
	}
}

func walkValue(dec *json.Decoder, depth int) error {
	tok, err := dec.Token()
	if err != nil {
		return errors.New("malformed JSON")
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return nil
	}
	switch d {
	case '{':
		return walkObject(dec, depth+1)
	case '[':
		if depth+1 > maxDepth {
			return errTooDeep
		}
		for dec.More() {
			if err := walkValue(dec, depth+1); err != nil {
				return err
			}
		}
		if _, err := dec.Token(); err != nil {
			return errors.New("malformed JSON")
		}
		return nil
	}
	return errors.New("malformed JSON")
}

// quoteName quotes a member name for an error message, shortened.
func quoteName(k string) string {
	if len(k) > 64 {
		k = k[:64] + "…"
	}
	return strconv.QuoteToASCII(k)
}

// members splits the object raw into its members, refusing any name not in
// allowed (case-sensitive). what names the object in messages.
func members(raw json.RawMessage, what string, allowed ...string) (map[string]json.RawMessage, error) {
	if len(raw) == 0 || raw[0] != '{' {
		return nil, badf("%s must be a JSON object", what)
	}
	m, ok := splitObject(raw) // fast path; json.Unmarshal decides the rest
	if !ok && json.Unmarshal(raw, &m) != nil {
		return nil, badf("%s must be a JSON object", what)
	}
	var unknown []string
	for k := range m {
		if !slices.Contains(allowed, k) {
			unknown = append(unknown, quoteName(k))
		}
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		return nil, badf("%s: unknown member(s) %s", what, strings.Join(unknown, ", "))
	}
	return m, nil
}

// str decodes a JSON string member.
func str(raw json.RawMessage, what string) (string, error) {
	if s, ok := plainString(raw); ok {
		return s, nil
	}
	var s string
	if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
		return "", badf("%s must be a string", what)
	}
	return s, nil
}

// strList decodes a JSON array of strings.
func strList(raw json.RawMessage, what string) ([]string, error) {
	var l []string
	if len(raw) == 0 || raw[0] != '[' || json.Unmarshal(raw, &l) != nil {
		return nil, badf("%s must be an array of strings", what)
	}
	return l, nil
}

// object decodes a JSON object of arbitrary values with numbers kept as
// json.Number (the policy package's attribute form).
func object(raw json.RawMessage, what string) (map[string]any, error) {
	if len(raw) == 0 || raw[0] != '{' {
		return nil, badf("%s must be a JSON object", what)
	}
	if m, ok := decodeObject(raw); ok { // fast path; the decoder decides the rest
		return m, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, badf("%s must be a JSON object", what)
	}
	return m, nil
}

var (
	typeName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)
	revToken = regexp.MustCompile(`^(0|[1-9][0-9]{0,19})$`)
)

// validID reports whether id is usable in a relation tuple: 1–256 bytes of
// printable ASCII without whitespace, '#', '@' or ':'.
func validID(id string) bool {
	if len(id) == 0 || len(id) > 256 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if c <= ' ' || c >= 0x7f || c == '#' || c == '@' || c == ':' {
			return false
		}
	}
	return true
}

// parseRevision decodes a revision token: a decimal string without sign,
// spaces or leading zeros that fits in 64 bits.
func parseRevision(s string) (storage.Revision, error) {
	if !revToken.MatchString(s) {
		return 0, badf("revision token must be a decimal string")
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, badf("revision token out of range")
	}
	return storage.Revision(n), nil
}

// consistency decodes {"at_least_as_fresh": "<token>"}.
func consistency(raw json.RawMessage) (storage.Revision, error) {
	m, err := members(raw, "consistency", "at_least_as_fresh")
	if err != nil {
		return 0, err
	}
	v, ok := m["at_least_as_fresh"]
	if !ok {
		return 0, nil
	}
	s, err := str(v, "consistency.at_least_as_fresh")
	if err != nil {
		return 0, err
	}
	return parseRevision(s)
}
