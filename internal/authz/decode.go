package authz

import (
	"encoding/json"
	"fmt"

	"github.com/gatehouse/gatehouse/internal/authz/policy"
	"github.com/gatehouse/gatehouse/internal/storage"
)

// principalInput is the decoded principal: claims, or a token to verify.
type principalInput struct {
	token  string
	entity policy.Entity
}

// question is one (action, resource, context) question.
type question struct {
	action   string
	resource policy.Entity
	context  map[string]any
}

// authorizeRequest is a decoded POST /authorize or /authorize/batch body.
type authorizeRequest struct {
	principal principalInput
	checks    []question
	atLeast   storage.Revision
}

// decodeAuthorize decodes a POST /authorize body strictly.
func decodeAuthorize(body []byte) (*authorizeRequest, error) {
	if len(body) > maxSingleBody {
		return nil, badf("request body exceeds 64 KiB")
	}
	if err := checkStrict(body); err != nil {
		return nil, &badRequest{msg: "malformed request: " + err.Error()}
	}
	m, err := members(body, "request", "principal", "action", "resource", "context", "consistency")
	if err != nil {
		return nil, err
	}
	req := &authorizeRequest{}
	if err := req.common(m); err != nil {
		return nil, err
	}
	c, err := decodeCheck(m, "")
	if err != nil {
		return nil, err
	}
	req.checks = []question{c}
	return req, nil
}

// decodeBatch decodes a POST /authorize/batch body strictly.
func decodeBatch(body []byte) (*authorizeRequest, error) {
	if len(body) > maxBatchBody {
		return nil, badf("request body exceeds 1 MiB")
	}
	if err := checkStrict(body); err != nil {
		return nil, &badRequest{msg: "malformed request: " + err.Error()}
	}
	m, err := members(body, "request", "principal", "checks", "consistency")
	if err != nil {
		return nil, err
	}
	req := &authorizeRequest{}
	if err := req.common(m); err != nil {
		return nil, err
	}
	raw, ok := m["checks"]
	if !ok {
		return nil, badf("checks is required")
	}
	var list []json.RawMessage
	if len(raw) == 0 || raw[0] != '[' || json.Unmarshal(raw, &list) != nil {
		return nil, badf("checks must be an array")
	}
	if len(list) == 0 {
		return nil, badf("checks must not be empty")
	}
	if len(list) > maxBatch {
		return nil, badf("at most %d checks per batch", maxBatch)
	}
	for i, item := range list {
		what := fmt.Sprintf("checks[%d]", i)
		cm, err := members(item, what, "action", "resource", "context")
		if err != nil {
			return nil, err
		}
		c, err := decodeCheck(cm, what+".")
		if err != nil {
			return nil, err
		}
		req.checks = append(req.checks, c)
	}
	return req, nil
}

// common decodes the principal and consistency members.
func (req *authorizeRequest) common(m map[string]json.RawMessage) error {
	raw, ok := m["principal"]
	if !ok {
		return badf("principal is required")
	}
	p, err := decodePrincipal(raw)
	if err != nil {
		return err
	}
	req.principal = p
	if raw, ok := m["consistency"]; ok {
		if req.atLeast, err = consistency(raw); err != nil {
			return err
		}
	}
	return nil
}

// decodePrincipal decodes {"token": ...} or claims {type?, id, roles?,
// tenant?, attrs?}.
func decodePrincipal(raw json.RawMessage) (principalInput, error) {
	m, err := members(raw, "principal", "token", "type", "id", "roles", "tenant", "attrs")
	if err != nil {
		return principalInput{}, err
	}
	if tok, ok := m["token"]; ok {
		if len(m) != 1 {
			return principalInput{}, badf("principal: token cannot be combined with claims")
		}
		t, err := str(tok, "principal.token")
		if err != nil {
			return principalInput{}, err
		}
		if t == "" {
			return principalInput{}, badf("principal.token must not be empty")
		}
		return principalInput{token: t}, nil
	}
	e := policy.Entity{Type: "user", Attrs: map[string]any{}}
	if raw, ok := m["type"]; ok {
		if e.Type, err = str(raw, "principal.type"); err != nil {
			return principalInput{}, err
		}
	}
	if !typeName.MatchString(e.Type) {
		return principalInput{}, badf("principal.type must match [a-z][a-z0-9_]{0,63}")
	}
	raw, ok := m["id"]
	if !ok {
		return principalInput{}, badf("principal.id is required")
	}
	if e.ID, err = str(raw, "principal.id"); err != nil {
		return principalInput{}, err
	}
	if !validID(e.ID) {
		return principalInput{}, badf("principal.id must be 1-256 printable ASCII characters without whitespace, '#', '@' or ':'")
	}
	if raw, ok := m["attrs"]; ok {
		if e.Attrs, err = object(raw, "principal.attrs"); err != nil {
			return principalInput{}, err
		}
	}
	if raw, ok := m["roles"]; ok {
		roles, err := strList(raw, "principal.roles")
		if err != nil {
			return principalInput{}, err
		}
		e.Attrs["roles"] = anyList(roles)
	}
	if raw, ok := m["tenant"]; ok {
		t, err := str(raw, "principal.tenant")
		if err != nil {
			return principalInput{}, err
		}
		e.Attrs["tenant"] = t
	}
	return principalInput{entity: e}, nil
}

// decodeCheck decodes action, resource and context from m.
func decodeCheck(m map[string]json.RawMessage, prefix string) (question, error) {
	var c question
	raw, ok := m["action"]
	if !ok {
		return c, badf("%saction is required", prefix)
	}
	var err error
	if c.action, err = str(raw, prefix+"action"); err != nil {
		return c, err
	}
	if c.action == "" || len(c.action) > 128 {
		return c, badf("%saction must be 1-128 characters", prefix)
	}
	raw, ok = m["resource"]
	if !ok {
		return c, badf("%sresource is required", prefix)
	}
	if c.resource, err = decodeResource(raw, prefix+"resource"); err != nil {
		return c, err
	}
	if raw, ok := m["context"]; ok {
		if c.context, err = object(raw, prefix+"context"); err != nil {
			return c, err
		}
	}
	return c, nil
}

// decodeResource decodes {type, id, tenant?, attrs?}.
func decodeResource(raw json.RawMessage, what string) (policy.Entity, error) {
	m, err := members(raw, what, "type", "id", "tenant", "attrs")
	if err != nil {
		return policy.Entity{}, err
	}
	var e policy.Entity
	for _, f := range []struct {
		name string
		dst  *string
	}{{"type", &e.Type}, {"id", &e.ID}} {
		v, ok := m[f.name]
		if !ok {
			return e, badf("%s.%s is required", what, f.name)
		}
		if *f.dst, err = str(v, what+"."+f.name); err != nil {
			return e, err
		}
	}
	if !typeName.MatchString(e.Type) {
		return e, badf("%s.type must match [a-z][a-z0-9_]{0,63}", what)
	}
	if !validID(e.ID) {
		return e, badf("%s.id must be 1-256 printable ASCII characters without whitespace, '#', '@' or ':'", what)
	}
	if raw, ok := m["attrs"]; ok {
		if e.Attrs, err = object(raw, what+".attrs"); err != nil {
			return e, err
		}
	}
	if raw, ok := m["tenant"]; ok {
		t, err := str(raw, what+".tenant")
		if err != nil {
			return e, err
		}
		if e.Attrs == nil {
			e.Attrs = map[string]any{}
		}
		e.Attrs["tenant"] = t
	}
	return e, nil
}

func anyList(l []string) []any {
	out := make([]any, len(l))
	for i, s := range l {
		out[i] = s
	}
	return out
}
