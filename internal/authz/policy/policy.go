// Package policy loads, validates, indexes and evaluates the Cedar policy sets
// of Gatehouse's authorization service (docs/authz.md, "One decision" steps
// 5–7 and "Policies as code").
//
// A policy directory holds schema.cedarschema (required) and any number of
// *.cedar files. Load parses and resolves the schema, parses every policy,
// validates each one against the schema in strict mode and reports every
// problem at once, each with file:line:col when Cedar provides one. A loaded
// Set is immutable: it may be evaluated concurrently and repeatedly (the
// service evaluates the active and the shadow set on the same input), and a
// Holder swaps sets atomically so a set that failed to load never replaces
// a running one.
//
// At load time each policy is classified by its action scope and resource
// scope and placed in buckets keyed by (action, resource type); Authorize
// validates the request against the schema (unknown action, resource type
// the action does not apply to, attribute of the wrong type: ErrInvalidRequest)
// and evaluates only the bucket with cedar.Authorize, so the cost of a
// decision does not grow with the number of policies.
//
// RunTests runs the YAML cases behind "gatehouse policy test".
//
// All Cedar parsing, validation and evaluation is done by
// github.com/cedar-policy/cedar-go.
package policy

import (
	"errors"
	"strconv"
	"strings"
)

// ErrInvalidRequest is returned (wrapped, with the validator's reason) by
// Authorize when the request does not conform to the schema. The service
// denies such requests (AZ-01).
var ErrInvalidRequest = errors.New("policy: invalid request")

// ErrNoPolicySet is returned by Authorize on a nil *Set (no set loaded yet);
// the service denies.
var ErrNoPolicySet = errors.New("policy: no policy set loaded")

// EntityRef names an entity: its type and id.
type EntityRef struct{ Type, ID string }

// Entity is a principal or resource with its attributes and parents.
//
// Attrs hold JSON values as decoded with json.Decoder.UseNumber: string,
// json.Number (integers only, converted to Long), bool, []any (Set),
// map[string]any (Record; {"__entity": {"type": T, "id": I}} is an entity
// reference); where the schema declares an extension type (ipaddr, decimal,
// datetime, duration) the value is its string form. nil is not allowed.
// Attributes the schema does not declare for
// the entity type are dropped before validation.
type Entity struct {
	Type, ID string
	Attrs    map[string]any
	Parents  []EntityRef
}

// Request is one authorization question.
type Request struct {
	Principal Entity
	// Action is the action id, e.g. "read" for Action::"read"; an action of
	// a schema namespace is named by its full UID (NS::Action::"read").
	Action   string
	Resource Entity
	Context  map[string]any
	// Relations are facts computed by the service (ReBAC checks) and set as
	// context.relations, a Record of Bools. Declared relations that are
	// absent are false. nil means none.
	Relations map[string]bool
}

// Decision is the answer of a policy set.
type Decision struct {
	Allow bool
	// Reason is one line for humans: "permitted by <ids>", "forbidden by
	// <ids>" or "no policy permits <action> on <resource type>", followed by
	// the ids of erroring policies if any.
	Reason string
	// Policies are the determining policy ids: the @id annotation, else
	// "<file>:<n>" with n the 0-based index of the policy within its file.
	Policies []string
	// Errors are evaluation errors of individual policies ("<id>: <message>").
	// A policy that errors is skipped.
	Errors  []string
	Version string
}

// Problem is one error found while loading a policy directory.
type Problem struct {
	File         string
	Line, Column int // 0 when Cedar gives no position
	Message      string
}

// String formats the problem as "file:line:col: message" (or "file: message").
func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(p.Line))
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(p.Column))
	}
	b.WriteString(": ")
	b.WriteString(p.Message)
	return b.String()
}

// LoadError reports every problem found while loading a policy directory.
type LoadError struct {
	Problems []Problem
}

// Error lists every problem, one per line.
func (e *LoadError) Error() string {
	var b strings.Builder
	b.WriteString("policy: ")
	b.WriteString(strconv.Itoa(len(e.Problems)))
	if len(e.Problems) == 1 {
		b.WriteString(" problem loading the policy set:")
	} else {
		b.WriteString(" problems loading the policy set:")
	}
	for _, p := range e.Problems {
		b.WriteString("\n  ")
		b.WriteString(p.String())
	}
	return b.String()
}
