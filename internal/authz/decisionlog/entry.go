// Package decisionlog records the authorization service's decisions
// (docs/authz.md, "Audit and safe change").
//
// A Logger writes one JSON line per decision to a file or stdout through a
// single writer goroutine fed by a bounded queue, and keeps the most recent
// decisions in an in-memory ring for GET /decisions. Logging never blocks a
// decision: when the queue is full the entry is dropped and counted. Allows
// are sampled (Config.Sample); denies and shadow disagreements are always
// recorded. Before an entry is stored, its context and attributes are deep
// copied and every value under a sensitive key (token, secret, password,
// cookie, ...) is replaced by "[redacted]" (Redact), so neither later
// mutation by the caller nor a credential passed as an attribute reaches the
// log. Read parses a log file strictly for `gatehouse authz decisions`.
package decisionlog

import (
	"slices"
	"strings"
	"time"
)

// Principal is the principal of a decision. The token itself is never
// recorded: TokenHash is a hex prefix of its SHA-256, set by the caller.
type Principal struct {
	Type      string         `json:"type"`
	ID        string         `json:"id"`
	Issuer    string         `json:"issuer,omitempty"`
	TokenHash string         `json:"token_hash,omitempty"`
	Attrs     map[string]any `json:"attrs,omitempty"`
}

// Resource is the resource of a decision.
type Resource struct {
	Type  string         `json:"type"`
	ID    string         `json:"id"`
	Attrs map[string]any `json:"attrs,omitempty"`
}

// RelationCheck is one ReBAC check run for a decision, with the tuple path
// that proved it.
type RelationCheck struct {
	Check   string   `json:"check"`
	Allowed bool     `json:"allowed"`
	Path    []string `json:"path,omitempty"`
}

// Shadow is the result of the shadow policy set on the same input.
// Disagree is true when its allow differs from the active set's.
type Shadow struct {
	Allow    bool     `json:"allow"`
	Reason   string   `json:"reason,omitempty"`
	Policies []string `json:"policies,omitempty"`
	Version  string   `json:"version,omitempty"`
	Disagree bool     `json:"disagree,omitempty"`
}

// Entry is one logged decision: the input (token replaced by its hash), the
// result, the determining policies, relation checks, versions, latency and
// the shadow result.
type Entry struct {
	ID            string          `json:"decision_id"`
	Time          time.Time       `json:"time"`
	Caller        string          `json:"caller,omitempty"`
	Principal     Principal       `json:"principal"`
	Action        string          `json:"action"`
	Resource      Resource        `json:"resource"`
	Context       map[string]any  `json:"context,omitempty"`
	Allow         bool            `json:"allow"`
	Reason        string          `json:"reason,omitempty"`
	Policies      []string        `json:"policies,omitempty"`
	Relations     []RelationCheck `json:"relations,omitempty"`
	Errors        []string        `json:"errors,omitempty"`
	PolicyVersion string          `json:"policy_version,omitempty"`
	Revision      string          `json:"revision,omitempty"`
	LatencyMicros int64           `json:"latency_us"`
	Shadow        *Shadow         `json:"shadow,omitempty"`
}

// disagrees reports whether the shadow set answered differently; such
// entries are always logged, whatever the sampling.
func (e *Entry) disagrees() bool {
	return e.Shadow != nil && (e.Shadow.Disagree || e.Shadow.Allow != e.Allow)
}

// clone returns a copy of e that shares no mutable memory with it; context
// and attribute maps are redacted (Redact) on the way.
func (e *Entry) clone() Entry {
	c := *e
	c.Principal.Attrs = Redact(e.Principal.Attrs)
	c.Resource.Attrs = Redact(e.Resource.Attrs)
	c.Context = Redact(e.Context)
	c.Policies = slices.Clone(e.Policies)
	c.Errors = slices.Clone(e.Errors)
	if e.Relations != nil {
		c.Relations = make([]RelationCheck, len(e.Relations))
		for i, r := range e.Relations {
			r.Path = slices.Clone(r.Path)
			c.Relations[i] = r
		}
	}
	if e.Shadow != nil {
		s := *e.Shadow
		s.Policies = slices.Clone(e.Shadow.Policies)
		c.Shadow = &s
	}
	return c
}

// Filter selects entries for Recent and Read. Zero fields match everything.
type Filter struct {
	// Principal is "type:id" or a bare "id".
	Principal string
	// Allow, when set, keeps only allows (true) or denies (false).
	Allow *bool
	// Since keeps entries at or after this instant.
	Since time.Time
	// Action keeps entries for this action.
	Action string
	// Disagreements keeps only entries whose shadow policies answered
	// differently from the active ones.
	Disagreements bool
	// Limit caps the number of entries returned (newest first); ≤ 0 means
	// no limit. Match ignores it.
	Limit int
}

// Match reports whether e passes every condition of f except Limit.
func (f Filter) Match(e *Entry) bool {
	if e == nil {
		return false
	}
	if f.Principal != "" && f.Principal != e.Principal.ID && f.Principal != principalString(e.Principal) {
		return false
	}
	if f.Allow != nil && *f.Allow != e.Allow {
		return false
	}
	if !f.Since.IsZero() && e.Time.Before(f.Since) {
		return false
	}
	if f.Action != "" && f.Action != e.Action {
		return false
	}
	if f.Disagreements && (e.Shadow == nil || !e.Shadow.Disagree && e.Shadow.Allow == e.Allow) {
		return false
	}
	return true
}

func principalString(p Principal) string {
	var b strings.Builder
	b.WriteString(p.Type)
	b.WriteByte(':')
	b.WriteString(p.ID)
	return b.String()
}
