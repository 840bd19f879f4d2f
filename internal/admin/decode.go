package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strings"

	"github.com/gatehouse/gatehouse/internal/apierr"
)

// maxBody caps request bodies.
const maxBody = 1 << 20

// maxDepth caps JSON nesting; request bodies are flat objects of scalars and
// string arrays.
const maxDepth = 8

// decodeBody reads a JSON object into v (a pointer to a flat struct) strictly:
// Content-Type application/json, at most 1 MiB, exactly one object, no
// duplicate members (compared case-insensitively), every member name equal
// byte for byte to a json tag of v (encoding/json alone would accept "NAME"
// for "name"), no trailing data.
func decodeBody(r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			return apierr.New(http.StatusUnsupportedMediaType, "invalid_request", "Content-Type must be application/json", err)
		}
	} else {
		return apierr.New(http.StatusUnsupportedMediaType, "invalid_request", "Content-Type must be application/json", nil)
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return apierr.BadRequest("cannot read request body", err)
	}
	if len(body) > maxBody {
		return apierr.New(http.StatusRequestEntityTooLarge, "invalid_request", "request body exceeds 1 MiB", nil)
	}
	return decodeStrict(body, v)
}

// decodeStrict is decodeBody without the HTTP parts; it is the fuzzed parser.
func decodeStrict(body []byte, v any) error {
	keys, err := checkJSON(body)
	if err != nil {
		return apierr.BadRequest("malformed JSON body: "+err.Error(), err)
	}
	allowed := jsonFields(v)
	var unknown []string
	for _, k := range keys {
		if _, ok := allowed[k]; !ok {
			unknown = append(unknown, fmt.Sprintf("%q", k))
		}
	}
	if len(unknown) > 0 {
		return apierr.BadRequest("unknown field(s): "+strings.Join(unknown, ", "), nil)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return apierr.BadRequest("invalid JSON body: "+publicJSONError(err), err)
	}
	return nil
}

// publicJSONError describes a decoding error without echoing input values.
func publicJSONError(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("field %q must be %s", te.Field, te.Type.String())
	}
	return "cannot decode"
}

var (
	errNotObject = errors.New("body must be a JSON object")
	errTrailing  = errors.New("trailing data after the JSON object")
	errTooDeep   = errors.New("JSON nested too deeply")
)

// checkJSON validates body as one JSON object without duplicate member names
// at any depth (case-insensitive) and returns its top-level member names.
func checkJSON(body []byte) ([]string, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("body must be a JSON object: %w", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, errNotObject
	}
	top, err := walkObject(dec, 1)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errTrailing
	}
	return top, nil
}

// walkObject consumes an object whose '{' was read and returns its keys.
func walkObject(dec *json.Decoder, depth int) ([]string, error) {
	if depth > maxDepth {
		return nil, errTooDeep
	}
	var keys []string
	seen := map[string]bool{}
	for {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		if d, ok := tok.(json.Delim); ok && d == '}' {
			return keys, nil
		}
		k, ok := tok.(string)
		if !ok {
			return nil, errors.New("object member name expected")
		}
		fold := strings.ToLower(k)
		if seen[fold] {
			return nil, fmt.Errorf("duplicate member %q", k)
		}
		seen[fold] = true
		keys = append(keys, k)
		if err := walkValue(dec, depth); err != nil {
			return nil, err
		}
	}
}

// walkValue consumes one value.
func walkValue(dec *json.Decoder, depth int) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return nil
	}
	switch d {
	case '{':
		_, err := walkObject(dec, depth+1)
		return err
	case '[':
		if depth+1 > maxDepth {
			return errTooDeep
		}
		for dec.More() {
			if err := walkValue(dec, depth+1); err != nil {
				return err
			}
		}
		_, err := dec.Token() // ']'
		return err
	}
	return fmt.Errorf("unexpected %v", d)
}

// jsonFields returns the json member names of the struct v points to.
func jsonFields(v any) map[string]struct{} {
	t := reflect.TypeOf(v)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	out := map[string]struct{}{}
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" {
			out[name] = struct{}{}
		}
	}
	return out
}
