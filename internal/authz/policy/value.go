package policy

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/cedar-policy/cedar-go/types"
	"github.com/cedar-policy/cedar-go/x/exp/schema/resolved"
)

// maxDepth bounds the nesting of attribute values (the service's decoder
// allows 8; this is a backstop for direct callers and fuzzing).
const maxDepth = 32

var errDepth = errors.New("value nested too deeply")

// toValue converts a JSON value (decoded with UseNumber) to a Cedar value
// without a schema: string → String, json.Number (integer) → Long, bool →
// Boolean, []any → Set, map[string]any → Record, {"__entity": {"type": T,
// "id": I}} → entity reference. nil and non-integer numbers are errors.
func toValue(v any, depth int) (types.Value, error) {
	if depth > maxDepth {
		return nil, errDepth
	}
	switch v := v.(type) {
	case string:
		return types.String(v), nil
	case bool:
		return types.Boolean(v), nil
	case json.Number, int, int64, int32:
		n, err := toLong(v)
		if err != nil {
			return nil, err
		}
		return n, nil
	case []any:
		vals := make([]types.Value, 0, len(v))
		for _, e := range v {
			ev, err := toValue(e, depth+1)
			if err != nil {
				return nil, err
			}
			vals = append(vals, ev)
		}
		return types.NewSet(vals...), nil
	case map[string]any:
		if uid, ok, err := entityRef(v); ok || err != nil {
			return uid, err
		}
		rm := make(types.RecordMap, len(v))
		for k, e := range v {
			ev, err := toValue(e, depth+1)
			if err != nil {
				return nil, fmt.Errorf("%q: %w", k, err)
			}
			rm[types.String(k)] = ev
		}
		return types.NewRecord(rm), nil
	default:
		return nil, fmt.Errorf("unsupported value %s", kind(v))
	}
}

func toLong(v any) (types.Long, error) {
	switch v := v.(type) {
	case json.Number:
		n, err := strconv.ParseInt(string(v), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("number %q is not a 64-bit integer", string(v))
		}
		return types.Long(n), nil
	case int:
		return types.Long(v), nil
	case int64:
		return types.Long(v), nil
	case int32:
		return types.Long(v), nil
	}
	return 0, fmt.Errorf("expected Long, got %s", kind(v))
}

// entityRef recognises {"__entity": {"type": T, "id": I}}.
func entityRef(m map[string]any) (types.EntityUID, bool, error) {
	raw, ok := m["__entity"]
	if !ok {
		return types.EntityUID{}, false, nil
	}
	if len(m) != 1 {
		return types.EntityUID{}, true, errors.New(`"__entity" must be the only member`)
	}
	ref, ok := raw.(map[string]any)
	if !ok || len(ref) != 2 {
		return types.EntityUID{}, true, errors.New(`"__entity" must be {"type": T, "id": I}`)
	}
	t, ok1 := ref["type"].(string)
	id, ok2 := ref["id"].(string)
	if !ok1 || !ok2 || t == "" {
		return types.EntityUID{}, true, errors.New(`"__entity" must be {"type": T, "id": I}`)
	}
	return types.NewEntityUID(types.EntityType(t), types.String(id)), true, nil
}

func kind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "string"
	case bool:
		return "bool"
	case json.Number, int, int64, int32, float64, float32:
		return "number"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}

func typeName(t resolved.IsType) string {
	switch t := t.(type) {
	case resolved.StringType:
		return "String"
	case resolved.LongType:
		return "Long"
	case resolved.BoolType:
		return "Bool"
	case resolved.SetType:
		return "Set<" + typeName(t.Element) + ">"
	case resolved.RecordType:
		return "Record"
	case resolved.EntityType:
		return string(t)
	case resolved.ExtensionType:
		return string(t)
	}
	return fmt.Sprintf("%T", t)
}

// typed converts a JSON value to a Cedar value of the declared type, or says
// why it does not conform.
func typed(v any, t resolved.IsType, depth int) (types.Value, error) {
	if depth > maxDepth {
		return nil, errDepth
	}
	mismatch := func() error { return fmt.Errorf("expected %s, got %s", typeName(t), kind(v)) }
	switch t := t.(type) {
	case resolved.StringType:
		if s, ok := v.(string); ok {
			return types.String(s), nil
		}
		return nil, mismatch()
	case resolved.BoolType:
		if b, ok := v.(bool); ok {
			return types.Boolean(b), nil
		}
		return nil, mismatch()
	case resolved.LongType:
		switch v.(type) {
		case json.Number, int, int64, int32:
			return toLong(v)
		}
		return nil, mismatch()
	case resolved.SetType:
		arr, ok := v.([]any)
		if !ok {
			return nil, mismatch()
		}
		vals := make([]types.Value, len(arr))
		for i, e := range arr {
			ev, err := typed(e, t.Element, depth+1)
			if err != nil {
				return nil, fmt.Errorf("set element %d: %w", i, err)
			}
			vals[i] = ev
		}
		return types.NewSet(vals...), nil
	case resolved.RecordType:
		m, ok := v.(map[string]any)
		if !ok {
			return nil, mismatch()
		}
		return typedRecord(m, t, false, depth+1)
	case resolved.EntityType:
		m, ok := v.(map[string]any)
		if !ok {
			return nil, mismatch()
		}
		uid, isRef, err := entityRef(m)
		if err != nil {
			return nil, err
		}
		if !isRef {
			return nil, mismatch()
		}
		if uid.Type != types.EntityType(t) {
			return nil, fmt.Errorf("expected entity of type %s, got %q", t, uid.Type)
		}
		return uid, nil
	case resolved.ExtensionType:
		s, ok := v.(string)
		if !ok {
			return nil, mismatch()
		}
		return extension(string(t), s)
	}
	return nil, fmt.Errorf("unsupported schema type %T", t)
}

func extension(name, s string) (types.Value, error) {
	var (
		v   types.Value
		err error
	)
	switch name {
	case "ipaddr":
		v, err = types.ParseIPAddr(s)
	case "decimal":
		v, err = types.ParseDecimal(s)
	case "datetime":
		v, err = types.ParseDatetime(s)
	case "duration":
		v, err = types.ParseDuration(s)
	default:
		return nil, fmt.Errorf("unsupported extension type %s", name)
	}
	if err != nil {
		return nil, fmt.Errorf("invalid %s: %w", name, err)
	}
	return v, nil
}

// typedRecord converts a JSON object to a Record of the declared type.
// Undeclared members are an error unless dropUnknown (top-level entity
// attributes); required members must be present.
func typedRecord(m map[string]any, t resolved.RecordType, dropUnknown bool, depth int) (types.Record, error) {
	return typedRecordInto(make(types.RecordMap, len(t)), m, t, dropUnknown, depth)
}

// typedRecordInto is typedRecord filling rm, which the caller may reuse
// afterwards (types.NewRecord copies it).
func typedRecordInto(rm types.RecordMap, m map[string]any, t resolved.RecordType, dropUnknown bool, depth int) (types.Record, error) {
	for k, v := range m {
		attr, ok := t[types.String(k)]
		if !ok {
			if dropUnknown {
				continue
			}
			return types.Record{}, fmt.Errorf("attribute %q is not declared", k)
		}
		ev, err := typed(v, attr.Type, depth)
		if err != nil {
			return types.Record{}, fmt.Errorf("attribute %q: %w", k, err)
		}
		rm[types.String(k)] = ev
	}
	if len(rm) < len(t) {
		if err := requireAll(rm, t); err != nil {
			return types.Record{}, err
		}
	}
	return types.NewRecord(rm), nil
}

func requireAll(rm types.RecordMap, t resolved.RecordType) error {
	var missing []string
	for k, a := range t {
		if _, ok := rm[k]; !ok && !a.Optional {
			missing = append(missing, string(k))
		}
	}
	if len(missing) == 0 {
		return nil
	}
	slices.Sort(missing)
	return fmt.Errorf("missing required attribute %q", missing[0])
}
