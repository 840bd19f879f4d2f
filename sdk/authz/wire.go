package authz

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/gatehouse/gatehouse/sdk/jwtx"
)

// principalJSON is a principal on the wire: the token alone, or the claims.
type principalJSON struct {
	Token  string         `json:"token,omitempty"`
	Type   string         `json:"type,omitempty"`
	ID     string         `json:"id,omitempty"`
	Roles  []string       `json:"roles,omitempty"`
	Tenant string         `json:"tenant,omitempty"`
	Attrs  map[string]any `json:"attrs,omitempty"`
}

type resourceJSON struct {
	Type   string         `json:"type"`
	ID     string         `json:"id"`
	Tenant string         `json:"tenant,omitempty"`
	Attrs  map[string]any `json:"attrs,omitempty"`
}

type consistencyJSON struct {
	AtLeastAsFresh string `json:"at_least_as_fresh"`
}

type authorizeWire struct {
	Principal   principalJSON    `json:"principal"`
	Action      string           `json:"action"`
	Resource    resourceJSON     `json:"resource"`
	Context     map[string]any   `json:"context,omitempty"`
	Consistency *consistencyJSON `json:"consistency,omitempty"`
}

type checkWire struct {
	Action   string         `json:"action"`
	Resource resourceJSON   `json:"resource"`
	Context  map[string]any `json:"context,omitempty"`
}

type batchWire struct {
	Principal principalJSON `json:"principal"`
	Checks    []checkWire   `json:"checks"`
}

type writeWire struct {
	Op    string `json:"op"`
	Tuple string `json:"tuple"`
}

// keyJSON is everything that decides, hashed into the cache key. It holds
// the token only while it is hashed.
type keyJSON struct {
	Principal principalJSON  `json:"p"`
	Action    string         `json:"a"`
	Resource  resourceJSON   `json:"r"`
	Context   map[string]any `json:"c,omitempty"`
}

func principalWire(p Principal) (principalJSON, error) {
	if p.Token != "" {
		return principalJSON{Token: p.Token}, nil
	}
	if p.ID == "" {
		return principalJSON{}, fmt.Errorf("%w: the principal needs a Token or an ID", ErrInvalidRequest)
	}
	return principalJSON{Type: p.Type, ID: p.ID, Roles: p.Roles, Tenant: p.Tenant, Attrs: p.Attrs}, nil
}

func checkFields(action string, r Resource) error {
	if action == "" || r.Type == "" || r.ID == "" {
		return fmt.Errorf("%w: action, resource type and resource id are required", ErrInvalidRequest)
	}
	return nil
}

// encodeAuthorize returns the request body and the cache key of r.
func encodeAuthorize(r Request) (body []byte, key [32]byte, err error) {
	pw, err := principalWire(r.Principal)
	if err != nil {
		return nil, key, err
	}
	if err := checkFields(r.Action, r.Resource); err != nil {
		return nil, key, err
	}
	res := resourceJSON(r.Resource)
	w := authorizeWire{Principal: pw, Action: r.Action, Resource: res, Context: r.Context}
	if r.AtLeastAsFresh != "" {
		w.Consistency = &consistencyJSON{AtLeastAsFresh: r.AtLeastAsFresh}
	}
	if body, err = marshalCanonical(w); err != nil {
		return nil, key, fmt.Errorf("%w: %w", ErrInvalidRequest, err)
	}
	key, err = cacheKey(keyJSON{Principal: pw, Action: r.Action, Resource: res, Context: r.Context})
	return body, key, err
}

// encodeCheck returns a batch check and its cache key (the same key as the
// equivalent Authorize request without AtLeastAsFresh).
func encodeCheck(pw principalJSON, c Check) (checkWire, [32]byte, error) {
	if err := checkFields(c.Action, c.Resource); err != nil {
		return checkWire{}, [32]byte{}, err
	}
	res := resourceJSON(c.Resource)
	key, err := cacheKey(keyJSON{Principal: pw, Action: c.Action, Resource: res, Context: c.Context})
	return checkWire{Action: c.Action, Resource: res, Context: c.Context}, key, err
}

// cacheKey is SHA-256 over the canonical JSON of k: struct members in a
// fixed order, map members sorted (encoding/json sorts map keys).
func cacheKey(k keyJSON) ([32]byte, error) {
	b, err := marshalCanonical(k)
	if err != nil {
		return [32]byte{}, fmt.Errorf("%w: %w", ErrInvalidRequest, err)
	}
	sum := sha256.Sum256(b)
	clear(b) // the token does not outlive the hash in this buffer
	return sum, nil
}

// marshalCanonical encodes v deterministically, without HTML escaping.
func marshalCanonical(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// strictMembers checks that data is one JSON object without duplicate or
// case-variant members (at any depth) and returns its members.
func strictMembers(data []byte) (map[string]json.RawMessage, error) {
	if err := jwtx.CheckObject(data); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadAnswer, err)
	}
	return members(data)
}

// members returns the members of an object already checked by
// jwtx.CheckObject (as a whole document); anything else fails.
func members(raw json.RawMessage) (map[string]json.RawMessage, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return nil, fmt.Errorf("%w: not a JSON object", ErrBadAnswer)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadAnswer, err)
	}
	return m, nil
}

func isNull(raw json.RawMessage) bool { return bytes.Equal(bytes.TrimSpace(raw), []byte("null")) }

// boolValue accepts only the JSON literals true and false.
func boolValue(name string, raw json.RawMessage) (bool, error) {
	switch string(bytes.TrimSpace(raw)) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, fmt.Errorf("%w: %q must be a JSON boolean", ErrBadAnswer, name)
}

// stringValue accepts a JSON string, or null as "".
func stringValue(name string, raw json.RawMessage) (string, error) {
	if isNull(raw) {
		return "", nil
	}
	s, err := jwtx.StringValue(bytes.TrimSpace(raw))
	if err != nil {
		return "", fmt.Errorf("%w: %q must be a string", ErrBadAnswer, name)
	}
	return s, nil
}

// stringList accepts an array of strings, or null as nil.
func stringList(name string, raw json.RawMessage) ([]string, error) {
	if isNull(raw) {
		return nil, nil
	}
	l, err := jwtx.StringList(bytes.TrimSpace(raw))
	if err != nil {
		return nil, fmt.Errorf("%w: %q must be an array of strings", ErrBadAnswer, name)
	}
	return l, nil
}

// array returns the elements of a JSON array, or nil for null.
func array(name string, raw json.RawMessage) ([]json.RawMessage, error) {
	if isNull(raw) {
		return nil, nil
	}
	raw = bytes.TrimSpace(raw)
	var l []json.RawMessage
	if len(raw) == 0 || raw[0] != '[' || json.Unmarshal(raw, &l) != nil {
		return nil, fmt.Errorf("%w: %q must be an array", ErrBadAnswer, name)
	}
	return l, nil
}

// decodeDecision decodes a POST /authorize answer strictly.
func decodeDecision(data []byte) (Decision, error) {
	m, err := strictMembers(data)
	if err != nil {
		return Decision{}, err
	}
	return decisionFrom(m)
}

// decisionFrom reads a decision's members: no unknown member, "allow"
// required and boolean.
func decisionFrom(m map[string]json.RawMessage) (Decision, error) {
	var d Decision
	seenAllow := false
	for name, raw := range m {
		var err error
		switch name {
		case "allow":
			d.Allow, err = boolValue(name, raw)
			seenAllow = true
		case "reason":
			d.Reason, err = stringValue(name, raw)
		case "decision_id":
			d.DecisionID, err = stringValue(name, raw)
		case "policy_version":
			d.PolicyVersion, err = stringValue(name, raw)
		case "revision":
			d.Revision, err = stringValue(name, raw)
		case "policies":
			d.Policies, err = stringList(name, raw)
		case "relations":
			d.Relations, err = relationsFrom(raw)
		case "errors":
			d.Errors, err = errorsFrom(raw)
		default:
			err = fmt.Errorf("%w: unknown member %q", ErrBadAnswer, name)
		}
		if err != nil {
			return Decision{}, err
		}
	}
	if !seenAllow {
		return Decision{}, fmt.Errorf("%w: no \"allow\" member", ErrBadAnswer)
	}
	return d, nil
}

func relationsFrom(raw json.RawMessage) ([]RelationCheck, error) {
	items, err := array("relations", raw)
	if err != nil {
		return nil, err
	}
	out := make([]RelationCheck, 0, len(items))
	for _, it := range items {
		m, err := members(it)
		if err != nil {
			return nil, err
		}
		var rc RelationCheck
		for name, v := range m {
			switch name {
			case "check":
				rc.Check, err = stringValue("relations.check", v)
			case "allowed":
				rc.Allowed, err = boolValue("relations.allowed", v)
			case "path":
				rc.Path, err = stringList("relations.path", v)
			default:
				err = fmt.Errorf("%w: unknown member relations.%q", ErrBadAnswer, name)
			}
			if err != nil {
				return nil, err
			}
		}
		out = append(out, rc)
	}
	return out, nil
}

// errorsFrom keeps the service's policy errors: strings as they are, other
// values as compact JSON.
func errorsFrom(raw json.RawMessage) ([]string, error) {
	items, err := array("errors", raw)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(items))
	for _, it := range items {
		if s, err := jwtx.StringValue(bytes.TrimSpace(it)); err == nil {
			out = append(out, s)
			continue
		}
		var buf bytes.Buffer
		if err := json.Compact(&buf, it); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBadAnswer, err)
		}
		out = append(out, buf.String())
	}
	return out, nil
}

// decodeBatch decodes {"results": [decision...]}.
func decodeBatch(data []byte) ([]Decision, error) {
	m, err := strictMembers(data)
	if err != nil {
		return nil, err
	}
	for name := range m {
		if name != "results" {
			return nil, fmt.Errorf("%w: unknown member %q", ErrBadAnswer, name)
		}
	}
	raw, ok := m["results"]
	if !ok || isNull(raw) {
		return nil, fmt.Errorf("%w: no \"results\" member", ErrBadAnswer)
	}
	items, err := array("results", raw)
	if err != nil {
		return nil, err
	}
	out := make([]Decision, len(items))
	for i, it := range items {
		dm, err := members(it)
		if err != nil {
			return nil, err
		}
		if out[i], err = decisionFrom(dm); err != nil {
			return nil, fmt.Errorf("results[%d]: %w", i, err)
		}
	}
	return out, nil
}

// decodeRevision decodes {"revision": "..."} (a non-empty string).
func decodeRevision(data []byte) (string, error) {
	m, err := strictMembers(data)
	if err != nil {
		return "", err
	}
	var rev string
	for name, raw := range m {
		if name != "revision" {
			return "", fmt.Errorf("%w: unknown member %q", ErrBadAnswer, name)
		}
		if rev, err = stringValue(name, raw); err != nil {
			return "", err
		}
	}
	if rev == "" {
		return "", errors.Join(ErrBadAnswer, errors.New("authz: no revision in the answer"))
	}
	return rev, nil
}

// decodeApplied decodes {"applied": bool, "revision": "..."}.
func decodeApplied(data []byte) (applied bool, revision string, err error) {
	m, err := strictMembers(data)
	if err != nil {
		return false, "", err
	}
	seen := false
	for name, raw := range m {
		switch name {
		case "applied":
			applied, err = boolValue(name, raw)
			seen = true
		case "revision":
			revision, err = stringValue(name, raw)
		default:
			err = fmt.Errorf("%w: unknown member %q", ErrBadAnswer, name)
		}
		if err != nil {
			return false, "", err
		}
	}
	if !seen {
		return false, "", fmt.Errorf("%w: no \"applied\" member", ErrBadAnswer)
	}
	return applied, revision, nil
}
