package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// TestResult is the outcome of one YAML test case.
type TestResult struct {
	Name    string
	Pass    bool
	Got     Decision
	Err     error // the error Authorize returned, if any
	Message string
}

type testFile struct {
	Cases []testCase `yaml:"cases"`
}

type testEntity struct {
	Type   string         `yaml:"type"`
	ID     string         `yaml:"id"`
	Roles  []string       `yaml:"roles"`
	Tenant string         `yaml:"tenant"`
	Attrs  map[string]any `yaml:"attrs"`
}

type testExpect struct {
	Allow          *bool    `yaml:"allow"`
	Policies       []string `yaml:"policies"`
	ReasonContains string   `yaml:"reason_contains"`
	ErrorContains  string   `yaml:"error_contains"`
}

type testCase struct {
	Name      string          `yaml:"name"`
	Principal testEntity      `yaml:"principal"`
	Action    string          `yaml:"action"`
	Resource  testEntity      `yaml:"resource"`
	Context   map[string]any  `yaml:"context"`
	Relations map[string]bool `yaml:"relations"`
	Expect    testExpect      `yaml:"expect"`
}

// RunTests runs the YAML test cases in src (named file in messages) against
// s. The error reports a file that cannot be used (malformed YAML, unknown
// fields, a case without name or expect.allow, no cases); failing cases are
// results with Pass false.
//
// Like the service, a case whose principal and resource both have a tenant
// that differ is denied before any policy runs (AZ-02), and so is a case
// with a tenant attribute that is not a non-empty string. roles become the
// principal's Set attribute "roles", tenant the String attribute "tenant".
func RunTests(s *Set, file string, src []byte) ([]TestResult, error) {
	if s == nil {
		return nil, errors.New("policy: no policy set")
	}
	dec := yaml.NewDecoder(bytes.NewReader(src))
	dec.KnownFields(true)
	var tf testFile
	if err := dec.Decode(&tf); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s: no test cases", file)
		}
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: exactly one YAML document expected", file)
	}
	if len(tf.Cases) == 0 {
		return nil, fmt.Errorf("%s: no test cases", file)
	}
	reqs := make([]Request, len(tf.Cases))
	for i, c := range tf.Cases {
		if c.Name == "" {
			return nil, fmt.Errorf("%s: case %d has no name", file, i+1)
		}
		if c.Expect.Allow == nil {
			return nil, fmt.Errorf("%s: case %q: expect.allow is required", file, c.Name)
		}
		req, err := c.request()
		if err != nil {
			return nil, fmt.Errorf("%s: case %q: %w", file, c.Name, err)
		}
		reqs[i] = req
	}
	out := make([]TestResult, len(tf.Cases))
	for i, c := range tf.Cases {
		out[i] = c.run(s, reqs[i])
	}
	return out, nil
}

func (c testCase) request() (Request, error) {
	p, err := c.Principal.entity(true)
	if err != nil {
		return Request{}, fmt.Errorf("principal: %w", err)
	}
	r, err := c.Resource.entity(false)
	if err != nil {
		return Request{}, fmt.Errorf("resource: %w", err)
	}
	ctx, err := normalizeMap(c.Context, 0)
	if err != nil {
		return Request{}, fmt.Errorf("context: %w", err)
	}
	return Request{Principal: p, Action: c.Action, Resource: r, Context: ctx, Relations: c.Relations}, nil
}

func (e testEntity) entity(principal bool) (Entity, error) {
	if e.Type == "" {
		return Entity{}, errors.New("type is required")
	}
	attrs, err := normalizeMap(e.Attrs, 0)
	if err != nil {
		return Entity{}, fmt.Errorf("attrs: %w", err)
	}
	if attrs == nil {
		attrs = map[string]any{}
	}
	if principal && e.Roles != nil {
		roles := make([]any, len(e.Roles))
		for i, r := range e.Roles {
			roles[i] = r
		}
		attrs["roles"] = roles
	} else if !principal && e.Roles != nil {
		return Entity{}, errors.New("roles apply to principals only")
	}
	if e.Tenant != "" {
		attrs["tenant"] = e.Tenant
	}
	return Entity{Type: e.Type, ID: e.ID, Attrs: attrs}, nil
}

// normalizeMap turns YAML-decoded values into the JSON model Authorize takes
// (numbers as json.Number).
func normalizeMap(m map[string]any, depth int) (map[string]any, error) {
	if m == nil {
		return nil, nil
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		nv, err := normalize(v, depth+1)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
		out[k] = nv
	}
	return out, nil
}

func normalize(v any, depth int) (any, error) {
	if depth > maxDepth {
		return nil, errDepth
	}
	switch v := v.(type) {
	case nil:
		return nil, errors.New("null is not a Cedar value")
	case string, bool:
		return v, nil
	case int:
		return json.Number(strconv.Itoa(v)), nil
	case int64:
		return json.Number(strconv.FormatInt(v, 10)), nil
	case uint64:
		if v > math.MaxInt64 {
			return nil, fmt.Errorf("number %d does not fit a Long", v)
		}
		return json.Number(strconv.FormatUint(v, 10)), nil
	case float64:
		return json.Number(strconv.FormatFloat(v, 'g', -1, 64)), nil
	case time.Time:
		return v.Format(time.RFC3339Nano), nil
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			ne, err := normalize(e, depth+1)
			if err != nil {
				return nil, err
			}
			out[i] = ne
		}
		return out, nil
	case map[string]any:
		return normalizeMap(v, depth)
	}
	return nil, fmt.Errorf("unsupported YAML value %T", v)
}

// tenantAttr returns the "tenant" attribute ("" when absent); false when
// it is present but not a non-empty string, which the service denies.
func tenantAttr(attrs map[string]any) (string, bool) {
	v, ok := attrs["tenant"]
	if !ok {
		return "", true
	}
	t, ok := v.(string)
	return t, ok && t != ""
}

func (c testCase) run(s *Set, req Request) TestResult {
	res := TestResult{Name: c.Name}
	pt, pok := tenantAttr(req.Principal.Attrs)
	rt, rok := tenantAttr(req.Resource.Attrs)
	switch {
	case !pok || !rok:
		res.Got = Decision{Reason: "tenant attribute must be a string, not empty", Version: s.Version()}
	case pt != "" && rt != "" && pt != rt:
		res.Got = Decision{Reason: "principal tenant " + pt + " does not match resource tenant " + rt, Version: s.Version()}
	default:
		res.Got, res.Err = s.Authorize(req)
	}
	var fails []string
	want := c.Expect
	switch {
	case res.Err != nil && want.ErrorContains == "":
		fails = append(fails, "unexpected error: "+res.Err.Error())
	case res.Err == nil && want.ErrorContains != "":
		fails = append(fails, fmt.Sprintf("expected an error containing %q, got %s", want.ErrorContains, describe(res.Got)))
	case res.Err != nil && !strings.Contains(res.Err.Error(), want.ErrorContains):
		fails = append(fails, fmt.Sprintf("error %q does not contain %q", res.Err, want.ErrorContains))
	}
	if res.Err == nil {
		if res.Got.Allow != *want.Allow {
			fails = append(fails, fmt.Sprintf("expected allow=%t, got %s", *want.Allow, describe(res.Got)))
		}
		if want.Policies != nil {
			w := slices.Sorted(slices.Values(want.Policies))
			if !slices.Equal(w, res.Got.Policies) {
				fails = append(fails, fmt.Sprintf("expected policies %v, got %v", w, res.Got.Policies))
			}
		}
		if want.ReasonContains != "" && !strings.Contains(res.Got.Reason, want.ReasonContains) {
			fails = append(fails, fmt.Sprintf("reason %q does not contain %q", res.Got.Reason, want.ReasonContains))
		}
	} else if *want.Allow {
		fails = append(fails, "expected allow=true, but the request is invalid (denied)")
	}
	res.Pass = len(fails) == 0
	res.Message = strings.Join(fails, "; ")
	if res.Pass {
		res.Message = "ok"
	}
	return res
}

func describe(d Decision) string {
	return fmt.Sprintf("allow=%t (%s)", d.Allow, d.Reason)
}
