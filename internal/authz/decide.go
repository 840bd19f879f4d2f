package authz

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"time"

	"github.com/gatehouse/gatehouse/internal/authz/decisionlog"
	"github.com/gatehouse/gatehouse/internal/authz/policy"
	"github.com/gatehouse/gatehouse/internal/rebac"
	"github.com/gatehouse/gatehouse/internal/storage"
)

// Input is one in-process authorization question.
type Input struct {
	Principal policy.Entity
	Token     string // the principal's token, if it came as one; never logged
	Action    string
	Resource  policy.Entity
	Context   map[string]any
	AtLeast   storage.Revision
	Caller    string
}

// RelationCheck is one relation fact computed for a decision.
type RelationCheck struct {
	Check   string   `json:"check"`
	Allowed bool     `json:"allowed"`
	Path    []string `json:"path,omitempty"`
}

// Result is a decision.
type Result struct {
	Allow         bool
	Reason        string
	DecisionID    string
	PolicyVersion string
	Revision      storage.Revision
	Policies      []string
	Relations     []RelationCheck
	Errors        []string
}

// decisionIDs encodes decision ids: lower-case base32 without padding.
var decisionIDs = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// newDecisionID returns "dec_" and 26 characters of 16 random bytes.
func newDecisionID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go ≥ 1.24)
	out := make([]byte, 4+decisionIDs.EncodedLen(len(b)))
	copy(out, "dec_")
	decisionIDs.Encode(out[4:], b[:])
	return string(out)
}

// deny is a decision failure with a public reason.
type deny struct{ reason string }

func (d *deny) Error() string { return d.reason }

func denyf(format string, args ...any) error { return &deny{reason: fmt.Sprintf(format, args...)} }

// Decide answers one question in process. It never panics: every failure
// is a deny with a reason.
func (s *Service) Decide(ctx context.Context, in Input) Result {
	return s.decide(ctx, in, "")
}

// decide runs the pipeline, or only denies with refused as the reason when
// it is set (a principal that could not be established), and logs.
func (s *Service) decide(ctx context.Context, in Input, refused string) (res Result) {
	start := time.Now()
	res.DecisionID = newDecisionID()
	var shadow *decisionlog.Shadow
	defer func() {
		if p := recover(); p != nil {
			s.logger.Error("authz: decision panicked", "decision_id", res.DecisionID, "panic", fmt.Sprint(p))
			res = Result{DecisionID: res.DecisionID, Reason: "internal error", PolicyVersion: res.PolicyVersion, Revision: res.Revision}
		}
		elapsed := time.Since(start)
		s.metrics.decision(res.Allow).Inc()
		s.metrics.latency.Observe(elapsed.Seconds())
		s.logDecision(&in, &res, shadow, elapsed)
	}()
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if refused != "" {
		res.Reason = refused
		if set := s.policies.Load(); set != nil {
			res.PolicyVersion = set.Version()
		}
		return res
	}
	shadow = s.pipeline(ctx, &in, &res)
	if !res.Allow && res.Reason == "" {
		res.Reason = "denied"
	}
	return res
}

// pipeline fills res; it returns the shadow evaluation, if any.
func (s *Service) pipeline(ctx context.Context, in *Input, res *Result) *decisionlog.Shadow {
	set := s.policies.Load()
	if set == nil {
		res.Reason = "no policy set loaded"
		return nil
	}
	res.PolicyVersion = set.Version()
	if err := checkInput(in); err != nil {
		res.Reason = err.Error()
		return nil
	}
	rev, err := s.rev.at(ctx, in.AtLeast)
	if err != nil {
		res.Reason = revisionReason(err)
		return nil
	}
	res.Revision = rev
	resource, err := s.resourceAttrs(ctx, rev, in.Resource)
	if err != nil {
		res.Reason = publicReason(err, "resource attributes unavailable")
		return nil
	}
	// AZ-02: a principal of one tenant never reaches another tenant's
	// resource, whatever the policies say.
	pt, perr := tenantOf(in.Principal.Attrs)
	rt, rerr := tenantOf(resource.Attrs)
	if err := errors.Join(perr, rerr); err != nil {
		res.Reason = err.Error()
		return nil
	}
	if pt != "" && rt != "" && pt != rt {
		res.Reason = fmt.Sprintf("principal tenant %s does not match resource tenant %s", pt, rt)
		return nil
	}
	facts := map[string]bool{}
	relations, err := s.relationFacts(ctx, rev, set.Relations(in.Action), in.Principal, resource, facts)
	res.Relations = relations
	if err != nil {
		res.Reason = publicReason(err, "relation check failed")
		return nil
	}
	req := policy.Request{Principal: in.Principal, Action: in.Action, Resource: resource, Context: in.Context,
		Relations: pick(facts, set.Relations(in.Action))}
	in.Resource = resource // the log records the attributes that decided
	if dec, err := set.Authorize(req); err != nil {
		res.Reason = err.Error()
	} else {
		res.Allow, res.Reason, res.Policies, res.Errors = dec.Allow, dec.Reason, dec.Policies, dec.Errors
		if dec.Version != "" {
			res.PolicyVersion = dec.Version
		}
	}
	return s.evalShadow(ctx, rev, in, resource, facts, res.Allow)
}

// evalShadow evaluates the shadow set on the same input and facts
// (checking any relation only the shadow set needs).
func (s *Service) evalShadow(ctx context.Context, rev storage.Revision, in *Input, resource policy.Entity, facts map[string]bool, allow bool) (out *decisionlog.Shadow) {
	if s.shadow == nil {
		return nil
	}
	set := s.shadow.Load()
	if set == nil {
		return nil
	}
	sh := &decisionlog.Shadow{Version: set.Version()}
	defer func() {
		// The shadow set never changes the answer, not even by panicking
		// (decide would turn that into a deny).
		if p := recover(); p != nil {
			s.logger.Error("authz: shadow evaluation panicked", "panic", fmt.Sprint(p))
			sh.Allow, sh.Reason, sh.Policies = false, "internal error", nil
			out = sh
		}
		if sh.Allow != allow {
			sh.Disagree = true
			s.metrics.disagreements.Inc()
			s.logger.Info("authz: shadow policies disagree", "action", in.Action, "resource_type", in.Resource.Type,
				"allow", allow, "shadow_allow", sh.Allow, "shadow_reason", sh.Reason, "shadow_version", sh.Version)
		}
	}()
	names := set.Relations(in.Action)
	if _, err := s.relationFacts(ctx, rev, names, in.Principal, resource, facts); err != nil {
		sh.Reason = publicReason(err, "relation check failed")
		return sh
	}
	dec, err := set.Authorize(policy.Request{Principal: in.Principal, Action: in.Action, Resource: resource,
		Context: in.Context, Relations: pick(facts, names)})
	if err != nil {
		sh.Reason = err.Error()
	} else {
		sh.Allow, sh.Reason, sh.Policies = dec.Allow, dec.Reason, dec.Policies
	}
	return sh
}

// checkInput refuses a malformed in-process input.
func checkInput(in *Input) error {
	switch {
	case !typeName.MatchString(in.Principal.Type) || !validID(in.Principal.ID):
		return errors.New("malformed principal")
	case in.Action == "":
		return errors.New("action is required")
	case !typeName.MatchString(in.Resource.Type) || !validID(in.Resource.ID):
		return errors.New("malformed resource")
	}
	if _, ok := in.Context["relations"]; ok {
		return errors.New("context.relations is reserved for relation checks")
	}
	return nil
}

// revisionReason describes a failure to pick the evaluation revision.
func revisionReason(err error) string {
	switch {
	case errors.Is(err, storage.ErrRevisionAhead):
		return "revision token is from the future"
	case errors.Is(err, context.DeadlineExceeded):
		return "decision timed out"
	}
	return "relation store unavailable"
}

// publicReason returns a deny's reason, or fallback for any other error.
func publicReason(err error, fallback string) string {
	var d *deny
	if errors.As(err, &d) {
		return d.reason
	}
	if errors.Is(err, errAttrsUnavailable) {
		return errAttrsUnavailable.Error()
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "decision timed out"
	}
	return fallback
}

// tenantOf returns the "tenant" attribute; one that is not a non-empty
// string is an error (fail closed: a number, a list or "" would otherwise
// slip past the tenant guard as "no tenant").
func tenantOf(attrs map[string]any) (string, error) {
	v, ok := attrs["tenant"]
	if !ok {
		return "", nil
	}
	t, ok := v.(string)
	if !ok || t == "" {
		return "", errors.New("tenant attribute must be a string, not empty")
	}
	return t, nil
}

// resourceAttrs merges the resource's attributes: provided over
// replicated over fetched (fetched only when nothing is replicated).
func (s *Service) resourceAttrs(ctx context.Context, rev storage.Revision, r policy.Entity) (policy.Entity, error) {
	merged := map[string]any{}
	attrs, found, err := s.replicated(ctx, rev, r.Type, r.ID) // a copy: ours to change
	switch {
	case err == nil && found:
		merged = attrs
	case err == nil:
		fetched, err := s.fetchAttrs(ctx, r.Type, r.ID)
		if err != nil {
			return r, err
		}
		maps.Copy(merged, fetched)
	case errors.Is(err, errMalformedEntity):
		return r, denyf("replicated attributes of %s are malformed", r.Type)
	default:
		s.logger.Warn("authz: reading replicated attributes failed", "err", err)
		return r, denyf("relation store unavailable")
	}
	maps.Copy(merged, r.Attrs)
	out := r
	out.Attrs = merged
	return out, nil
}

// relationFacts runs resource#name@principal for every name not yet in
// facts and records the results there. Any failure is an engine error.
func (s *Service) relationFacts(ctx context.Context, rev storage.Revision, names []string, principal, resource policy.Entity, facts map[string]bool) ([]RelationCheck, error) {
	out := make([]RelationCheck, 0, len(names))
	obj := rebac.Object{Type: resource.Type, ID: resource.ID}
	subj := rebac.Subject{Type: principal.Type, ID: principal.ID}
	knownType := false
	if schema := s.checker.Schema(); schema != nil {
		knownType = schema.HasType(principal.Type)
	}
	for _, name := range names {
		if _, done := facts[name]; done {
			continue
		}
		check := resource.Type + ":" + resource.ID + "#" + name + "@" + principal.Type + ":" + principal.ID
		if rev == 0 || !knownType {
			// Nothing written yet, or a principal type no tuple can
			// name: every relation is false, provably.
			facts[name] = false
			out = append(out, RelationCheck{Check: check})
			continue
		}
		r, err := s.checker.Check(ctx, rev, obj, name, subj)
		if err != nil {
			out = append(out, RelationCheck{Check: check})
			switch {
			case errors.Is(err, rebac.ErrBudget):
				return out, denyf("relation check %s exceeded its budget: %v", check, err)
			case errors.Is(err, context.DeadlineExceeded):
				return out, denyf("relation check %s timed out", check)
			case errors.Is(err, rebac.ErrUnknown), errors.Is(err, rebac.ErrInvalid):
				return out, denyf("relation check %s is invalid: %v", check, err)
			}
			s.logger.Warn("authz: relation check failed", "check", check, "err", err)
			return out, denyf("relation check %s failed: relation store unavailable", check)
		}
		s.metrics.relationCheck(r.Cached).Inc()
		facts[name] = r.Allowed
		out = append(out, RelationCheck{Check: check, Allowed: r.Allowed, Path: r.Path})
	}
	return out, nil
}

// pick returns the facts named.
func pick(facts map[string]bool, names []string) map[string]bool {
	out := make(map[string]bool, len(names))
	for _, n := range names {
		out[n] = facts[n]
	}
	return out
}

// tokenHash is the log form of a token: the first 16 hex digits of its
// SHA-256.
func tokenHash(tok string) string {
	if tok == "" {
		return ""
	}
	h := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(h[:8])
}

// logDecision writes the decision log entry.
func (s *Service) logDecision(in *Input, res *Result, shadow *decisionlog.Shadow, elapsed time.Duration) {
	if s.log == nil {
		return
	}
	e := &decisionlog.Entry{
		ID: res.DecisionID, Time: s.now(), Caller: in.Caller,
		Principal: decisionlog.Principal{Type: in.Principal.Type, ID: in.Principal.ID,
			TokenHash: tokenHash(in.Token), Attrs: in.Principal.Attrs},
		Action:   in.Action,
		Resource: decisionlog.Resource{Type: in.Resource.Type, ID: in.Resource.ID, Attrs: in.Resource.Attrs},
		Context:  in.Context, Allow: res.Allow, Reason: res.Reason, Policies: res.Policies,
		Errors: res.Errors, PolicyVersion: res.PolicyVersion, Revision: strconv.FormatUint(uint64(res.Revision), 10),
		LatencyMicros: elapsed.Microseconds(), Shadow: shadow,
	}
	if iss, ok := in.Principal.Attrs["iss"].(string); ok {
		e.Principal.Issuer = iss
	}
	if len(res.Relations) > 0 {
		e.Relations = make([]decisionlog.RelationCheck, 0, len(res.Relations))
	}
	for _, rc := range res.Relations {
		e.Relations = append(e.Relations, decisionlog.RelationCheck{Check: rc.Check, Allowed: rc.Allowed, Path: rc.Path})
	}
	s.log.Log(e)
}
