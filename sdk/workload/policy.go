package workload

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"unicode/utf8"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/gatehouse/gatehouse/sdk/jwtx"
)

// Policy limits.
const (
	// MaxPolicyRules is the largest number of rules a Policy accepts.
	MaxPolicyRules = 10000
	// MaxPolicyBytes bounds the JSON document DecodePolicy reads.
	MaxPolicyBytes = 16 << 20
	maxRuleName    = 128
)

// Rule effects.
const (
	EffectAllow = "allow"
	EffectDeny  = "deny"
)

// ErrInvalidPolicy is wrapped by every error of NewPolicy and DecodePolicy.
var ErrInvalidPolicy = errors.New("invalid workload policy")

// Rule is one entry of the "who may call whom" policy (ca.policy in the
// configuration, the rules of GET /v1/policy).
//
// From and To hold exact SPIFFE IDs or sets within one trust domain:
// "spiffe://td/prefix/*" (every ID under /prefix/, segment-wise) or
// "spiffe://td/*" (the whole trust domain). Paths hold exact canonical paths
// ("/orders") or "/prefix/*" (one or more segments under /prefix/); empty
// means any path. Methods hold upper-case HTTP methods; empty means any.
type Rule struct {
	Name    string   `json:"name" yaml:"name"`
	Effect  string   `json:"effect" yaml:"effect"` // allow | deny
	From    []string `json:"from" yaml:"from"`
	To      []string `json:"to" yaml:"to"`
	Paths   []string `json:"paths,omitempty" yaml:"paths"`
	Methods []string `json:"methods,omitempty" yaml:"methods"`
}

// Decision is the answer of Policy.Decide. Rule names the rule that decided
// ("" for the default deny); Reason says why in words.
type Decision struct {
	Allow  bool
	Rule   string
	Reason string
}

// Policy is a validated, compiled and immutable set of rules: safe for
// concurrent use. A nil *Policy denies everything.
type Policy struct {
	rules    []Rule
	version  string
	compiled []compiledRule
	// byExactTo indexes rules by an exact `to` ID; byTDTo by the trust
	// domain of a `to` set. Each slice holds ascending rule indexes.
	byExactTo map[string][]int32
	byTDTo    map[string][]int32
}

// NewPolicy validates and compiles rules. Every problem is reported at once
// (errors.Join), each naming its rules[i].field; the error wraps
// ErrInvalidPolicy. An empty rule list is valid and denies everything.
func NewPolicy(rules []Rule) (*Policy, error) {
	var errs []error
	if len(rules) > MaxPolicyRules {
		return nil, fmt.Errorf("%w: %d rules, at most %d allowed", ErrInvalidPolicy, len(rules), MaxPolicyRules)
	}
	p := &Policy{
		rules:     cloneRules(rules),
		compiled:  make([]compiledRule, len(rules)),
		byExactTo: make(map[string][]int32),
		byTDTo:    make(map[string][]int32),
	}
	names := make(map[string]int, len(rules))
	for i := range p.rules {
		r := &p.rules[i]
		errs = append(errs, validateName(i, r.Name, names)...)
		c, cerrs := compileRule(i, r)
		errs = append(errs, cerrs...)
		p.compiled[i] = c
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%w: %w", ErrInvalidPolicy, errors.Join(errs...))
	}
	for i := range p.compiled {
		p.index(int32(i))
	}
	v, err := computeVersion(p.rules)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidPolicy, err)
	}
	p.version = v
	return p, nil
}

func validateName(i int, name string, seen map[string]int) []error {
	switch {
	case name == "":
		return []error{fmt.Errorf("rules[%d].name: required", i)}
	case len(name) > maxRuleName:
		return []error{fmt.Errorf("rules[%d].name: longer than %d bytes", i, maxRuleName)}
	case !utf8.ValidString(name) || !printable(name):
		return []error{fmt.Errorf("rules[%d].name: must be printable UTF-8", i)}
	}
	if j, dup := seen[name]; dup {
		return []error{fmt.Errorf("rules[%d].name: duplicate rule name %q (also rules[%d])", i, name, j)}
	}
	seen[name] = i
	return nil
}

func printable(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return false
		}
	}
	return true
}

// index adds rule i to the target indexes, once per distinct key.
func (p *Policy) index(i int32) {
	c := &p.compiled[i]
	for _, m := range c.to {
		if m.set {
			if l := p.byTDTo[m.td]; len(l) == 0 || l[len(l)-1] != i {
				p.byTDTo[m.td] = append(l, i)
			}
			continue
		}
		if l := p.byExactTo[m.id]; len(l) == 0 || l[len(l)-1] != i {
			p.byExactTo[m.id] = append(l, i)
		}
	}
}

func cloneRules(rules []Rule) []Rule {
	out := make([]Rule, len(rules))
	for i, r := range rules {
		out[i] = Rule{
			Name: r.Name, Effect: r.Effect,
			From: slices.Clone(r.From), To: slices.Clone(r.To),
			Paths: slices.Clone(r.Paths), Methods: slices.Clone(r.Methods),
		}
	}
	return out
}

// computeVersion is the hex SHA-256 of the canonical JSON of the rules:
// encoding/json's output of the rule list (members in declaration order,
// empty paths and methods omitted, from/to always arrays).
func computeVersion(rules []Rule) (string, error) {
	b, err := canonicalRulesJSON(rules)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

func canonicalRulesJSON(rules []Rule) ([]byte, error) {
	norm := make([]Rule, len(rules))
	for i, r := range rules {
		norm[i] = r
		if norm[i].From == nil {
			norm[i].From = []string{}
		}
		if norm[i].To == nil {
			norm[i].To = []string{}
		}
	}
	b, err := json.Marshal(norm)
	if err != nil {
		return nil, fmt.Errorf("encode rules: %w", err)
	}
	return b, nil
}

// Version is the hex SHA-256 of the canonical JSON of the rules ("" for a
// nil policy).
func (p *Policy) Version() string {
	if p == nil {
		return ""
	}
	return p.version
}

// Rules returns a copy of the rules.
func (p *Policy) Rules() []Rule {
	if p == nil {
		return nil
	}
	return cloneRules(p.rules)
}

// For returns the policy made of the rules whose `to` can match target
// (what GET /v1/policy delivers to that workload). A nil policy gives nil.
func (p *Policy) For(target spiffeid.ID) *Policy {
	if p == nil {
		return nil
	}
	var keep []Rule
	for i := range p.compiled {
		if matchAny(p.compiled[i].to, target) {
			keep = append(keep, p.rules[i])
		}
	}
	q, err := NewPolicy(keep)
	if err != nil {
		// Unreachable: a subset of valid rules is valid. Fail closed.
		return nil
	}
	return q
}

// policyJSON is the wire form of a policy.
type policyJSON struct {
	Version string `json:"version"`
	Rules   []Rule `json:"rules"`
}

// MarshalJSON encodes {"version": ..., "rules": [...]}, the body of
// GET /v1/policy and the input of DecodePolicy.
func (p *Policy) MarshalJSON() ([]byte, error) {
	if p == nil {
		return []byte("null"), nil
	}
	rules := p.rules
	if rules == nil {
		rules = []Rule{}
	}
	b, err := canonicalRulesJSON(rules)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	buf.WriteString(`{"version":`)
	vb, _ := json.Marshal(p.version)
	buf.Write(vb)
	buf.WriteString(`,"rules":`)
	buf.Write(b)
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

// DecodePolicy decodes {"version": ..., "rules": [...]} strictly: one JSON
// object in valid UTF-8, no unknown, duplicate or case-variant members at
// any level, every rule valid (as NewPolicy), and a version equal to the one
// recomputed from the rules. Errors wrap ErrInvalidPolicy.
func DecodePolicy(b []byte) (*Policy, error) {
	if len(b) > MaxPolicyBytes {
		return nil, fmt.Errorf("%w: document larger than %d bytes", ErrInvalidPolicy, MaxPolicyBytes)
	}
	if err := jwtx.CheckObject(b); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidPolicy, err)
	}
	top, err := strictMembers(b, "policy", []string{"version", "rules"}, []string{"version", "rules"})
	if err != nil {
		return nil, err
	}
	var version string
	if err := decodeString(top["version"], &version); err != nil {
		return nil, fmt.Errorf("%w: version: %w", ErrInvalidPolicy, err)
	}
	var raws []json.RawMessage
	if bytes.Equal(bytes.TrimSpace(top["rules"]), []byte("null")) {
		return nil, fmt.Errorf("%w: rules: must be an array", ErrInvalidPolicy)
	}
	if err := json.Unmarshal(top["rules"], &raws); err != nil {
		return nil, fmt.Errorf("%w: rules: must be an array", ErrInvalidPolicy)
	}
	if len(raws) > MaxPolicyRules {
		return nil, fmt.Errorf("%w: %d rules, at most %d allowed", ErrInvalidPolicy, len(raws), MaxPolicyRules)
	}
	rules := make([]Rule, len(raws))
	var errs []error
	for i, raw := range raws {
		if err := decodeRule(raw, &rules[i]); err != nil {
			errs = append(errs, fmt.Errorf("rules[%d]: %w", i, err))
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%w: %w", ErrInvalidPolicy, errors.Join(errs...))
	}
	p, err := NewPolicy(rules)
	if err != nil {
		return nil, err
	}
	if version != p.version {
		return nil, fmt.Errorf("%w: version %q does not match the rules (%s)", ErrInvalidPolicy, truncate(version, 80), p.version)
	}
	return p, nil
}

func decodeRule(raw json.RawMessage, r *Rule) error {
	m, err := strictMembers(raw, "rule",
		[]string{"name", "effect", "from", "to", "paths", "methods"},
		[]string{"name", "effect", "from", "to"})
	if err != nil {
		return err
	}
	var errs []error
	for _, f := range []struct {
		name string
		s    *string
	}{{"name", &r.Name}, {"effect", &r.Effect}} {
		if err := decodeString(m[f.name], f.s); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", f.name, err))
		}
	}
	for _, f := range []struct {
		name string
		l    *[]string
	}{{"from", &r.From}, {"to", &r.To}, {"paths", &r.Paths}, {"methods", &r.Methods}} {
		v, ok := m[f.name]
		if !ok {
			continue
		}
		if err := decodeStrings(v, f.l); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", f.name, err))
		}
	}
	return errors.Join(errs...)
}

// strictMembers decodes one JSON object into its raw members, refusing
// members not in allowed (compared exactly, so case variants are refused)
// and reporting missing required ones.
func strictMembers(b []byte, what string, allowed, required []string) (map[string]json.RawMessage, error) {
	trimmed := bytes.TrimSpace(b)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return nil, fmt.Errorf("%w: %s must be a JSON object", ErrInvalidPolicy, what)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(trimmed, &m); err != nil {
		return nil, fmt.Errorf("%w: %s must be a JSON object", ErrInvalidPolicy, what)
	}
	var errs []error
	for k := range m {
		if !slices.Contains(allowed, k) {
			errs = append(errs, fmt.Errorf("%w: %s: unknown member %q", ErrInvalidPolicy, what, truncate(k, 40)))
		}
	}
	for _, k := range required {
		if _, ok := m[k]; !ok {
			errs = append(errs, fmt.Errorf("%w: %s: missing member %q", ErrInvalidPolicy, what, k))
		}
	}
	if len(errs) > 0 {
		slices.SortFunc(errs, func(a, b error) int { return compareStrings(a.Error(), b.Error()) })
		return nil, errors.Join(errs...)
	}
	return m, nil
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func decodeString(raw json.RawMessage, s *string) error {
	t := bytes.TrimSpace(raw)
	if len(t) == 0 || t[0] != '"' {
		return errors.New("must be a string")
	}
	if err := json.Unmarshal(t, s); err != nil {
		return errors.New("must be a string")
	}
	return nil
}

func decodeStrings(raw json.RawMessage, l *[]string) error {
	t := bytes.TrimSpace(raw)
	if len(t) == 0 || t[0] != '[' {
		return errors.New("must be an array of strings")
	}
	if err := json.Unmarshal(t, l); err != nil {
		return errors.New("must be an array of strings")
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
