package decisionlog

import (
	"encoding/json"
	"strconv"
)

// MaxEntryAttrs bounds the JSON size of an entry's context and attributes
// together. A larger entry keeps neither (an error says so): the ring holds
// up to Ring entries, and a batch of 100 checks repeats its principal's
// attributes in 100 entries, so without a bound a caller could pin
// gigabytes with a few requests.
const MaxEntryAttrs = 128 << 10

// errTooLarge is the error an entry carries when its context and
// attributes were omitted.
const errTooLarge = "decision log: entry too large, context and attributes omitted"

// bounded returns e, or a shallow copy without context and attributes when
// they exceed MaxEntryAttrs together.
func bounded(e *Entry) *Entry {
	n := jsonSize(e.Context, MaxEntryAttrs)
	n += jsonSize(e.Principal.Attrs, MaxEntryAttrs-n)
	n += jsonSize(e.Resource.Attrs, MaxEntryAttrs-n)
	if n <= MaxEntryAttrs {
		return e
	}
	s := *e
	s.Context, s.Principal.Attrs, s.Resource.Attrs = nil, nil, nil
	s.Errors = append(append([]string(nil), e.Errors...), errTooLarge)
	return &s
}

// jsonSize estimates the length of v's JSON encoding (string escapes are
// not counted), stopping early once it exceeds budget.
func jsonSize(v any, budget int) int {
	switch x := v.(type) {
	case nil:
		return 4
	case string:
		return len(x) + 2
	case bool:
		if x {
			return 4
		}
		return 5
	case json.Number:
		return len(x)
	case int:
		return len(strconv.Itoa(x))
	case int64:
		return len(strconv.FormatInt(x, 10))
	case []any:
		n := 2
		for i, e := range x {
			if n > budget {
				return n
			}
			if i > 0 {
				n++
			}
			n += jsonSize(e, budget-n)
		}
		return n
	case map[string]any:
		if x == nil {
			return 0 // omitted
		}
		n := 2
		first := true
		for k, e := range x {
			if n > budget {
				return n
			}
			if !first {
				n++
			}
			first = false
			n += len(k) + 3 + jsonSize(e, budget-n-len(k)-3)
		}
		return n
	}
	b, err := json.Marshal(v)
	if err != nil {
		return 0
	}
	return len(b)
}
