package policy

import (
	"fmt"
	"slices"
	"strings"

	"github.com/cedar-policy/cedar-go"
	"github.com/cedar-policy/cedar-go/types"
)

// Authorize evaluates the request: it validates the request against the
// schema (an error wrapping ErrInvalidRequest for an unknown action, a
// principal or resource type the action does not apply to, an attribute of
// the wrong type, a missing required attribute or a context that does not
// match the declared one), injects Relations as context.relations and runs
// cedar.Authorize over the policies indexed under (action, resource type).
// Entity attributes the schema does not declare are dropped.
//
// Authorize on a nil Set (nothing loaded yet) returns ErrNoPolicySet.
func (s *Set) Authorize(req Request) (Decision, error) {
	if s == nil {
		return Decision{}, ErrNoPolicySet
	}
	return s.authorize(req, nil)
}

// authorize evaluates over the request's bucket, or over all when non-nil
// (the differential test compares the two).
func (s *Set) authorize(req Request, all cedar.PolicyIterator) (Decision, error) {
	ai, ok := s.actions[req.Action]
	if !ok {
		return Decision{}, invalid("action %q does not exist in the schema", req.Action)
	}
	if ai.buckets == nil {
		return Decision{}, invalid("action `%s` applies to no principal or resource", ai.uid)
	}
	principal, err := s.entity("principal", req.Principal, ai.principals, ai)
	if err != nil {
		return Decision{}, err
	}
	resType := types.EntityType(req.Resource.Type)
	b := ai.buckets[resType]
	resource, err := s.entity("resource", req.Resource, nil, ai)
	if err != nil {
		return Decision{}, err
	}
	ctx, err := s.context(req, ai)
	if err != nil {
		return Decision{}, err
	}
	var pols cedar.PolicyIterator = b
	if all != nil {
		pols = all
	}
	ents := &requestEntities{principal: principal, resource: resource, actions: ai.entities}
	dec, diag := cedar.Authorize(pols, ents, cedar.Request{
		Principal: principal.UID,
		Action:    ai.uid,
		Resource:  resource.UID,
		Context:   ctx,
	})
	return s.decision(dec, diag, ai.name, req.Resource.Type), nil
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidRequest, fmt.Sprintf(format, args...))
}

// entity converts and validates a principal or resource. allowed nil means
// the action's resource types.
func (s *Set) entity(role string, e Entity, allowed map[types.EntityType]bool, ai *actionInfo) (types.Entity, error) {
	et := types.EntityType(e.Type)
	ei, ok := s.entities[et]
	if !ok {
		return types.Entity{}, invalid("%s type %q is not declared in the schema", role, e.Type)
	}
	if allowed != nil && !allowed[et] {
		return types.Entity{}, invalid("principal type %q is not valid for `%s`", e.Type, ai.uid)
	}
	if allowed == nil {
		if _, ok := ai.buckets[et]; !ok {
			return types.Entity{}, invalid("resource type %q is not valid for `%s`", e.Type, ai.uid)
		}
	}
	uid := types.NewEntityUID(et, types.String(e.ID))
	out := types.Entity{UID: uid}
	if ei.enum != nil {
		if !ei.enum[uid.ID] {
			return types.Entity{}, invalid("%s %s is not a value of the enumerated type", role, uid)
		}
		if len(e.Parents) > 0 {
			return types.Entity{}, invalid("%s %s: enumerated entities have no parents", role, uid)
		}
		return out, nil
	}
	if len(e.Parents) > 0 {
		ps := make([]types.EntityUID, len(e.Parents))
		for i, p := range e.Parents {
			pt := types.EntityType(p.Type)
			if !ei.parents[pt] {
				return types.Entity{}, invalid("%s %s: invalid parent type %q", role, uid, p.Type)
			}
			ps[i] = types.NewEntityUID(pt, types.String(p.ID))
		}
		out.Parents = types.NewEntityUIDSet(ps...)
	}
	rm, _ := s.recPool.Get().(types.RecordMap)
	if rm == nil {
		rm = make(types.RecordMap, len(ei.shape))
	}
	attrs, err := typedRecordInto(rm, e.Attrs, ei.shape, true, 1)
	clear(rm)
	s.recPool.Put(rm)
	if err != nil {
		return types.Entity{}, invalid("%s %s: %s", role, uid, err)
	}
	out.Attributes = attrs
	return out, nil
}

// context builds the context record: the caller's members, checked against
// the declared context exactly, plus the relation facts.
func (s *Set) context(req Request, ai *actionInfo) (types.Record, error) {
	if ai.relType == nil {
		if len(req.Relations) > 0 {
			return types.Record{}, invalid("action `%s` declares no context.relations", ai.uid)
		}
		rec, err := typedRecord(req.Context, ai.context, false, 1)
		if err != nil {
			return types.Record{}, invalid("context is not valid for `%s`: %s", ai.uid, err)
		}
		return rec, nil
	}
	if _, ok := req.Context[relationsAttr]; ok {
		return types.Record{}, invalid("context.relations is set by the service, not the caller")
	}
	var rel types.Record
	if ai.relRecs != nil {
		mask := 0
		for k, v := range req.Relations {
			i, ok := slices.BinarySearch(ai.relations, k)
			if !ok {
				return types.Record{}, invalid("relation %q is not declared for `%s`", k, ai.uid)
			}
			if v {
				mask |= 1 << i
			}
		}
		if len(req.Context) == 0 && ai.onlyRel != nil {
			return ai.onlyRel[mask], nil
		}
		rel = ai.relRecs[mask]
	} else {
		for k := range req.Relations {
			if _, ok := ai.relType[types.String(k)]; !ok {
				return types.Record{}, invalid("relation %q is not declared for `%s`", k, ai.uid)
			}
		}
		rm := make(types.RecordMap, len(ai.relType))
		for k := range ai.relType {
			rm[k] = types.Boolean(req.Relations[string(k)])
		}
		rel = types.NewRecord(rm)
	}
	rm := make(types.RecordMap, len(ai.context))
	for k, v := range req.Context {
		attr, ok := ai.context[types.String(k)]
		if !ok {
			return types.Record{}, invalid("context is not valid for `%s`: attribute %q is not declared", ai.uid, k)
		}
		ev, err := typed(v, attr.Type, 1)
		if err != nil {
			return types.Record{}, invalid("context is not valid for `%s`: attribute %q: %s", ai.uid, k, err)
		}
		rm[types.String(k)] = ev
	}
	rm[relationsAttr] = rel
	if len(rm) < len(ai.context) {
		if err := requireAll(rm, ai.context); err != nil {
			return types.Record{}, invalid("context is not valid for `%s`: %s", ai.uid, err)
		}
	}
	return types.NewRecord(rm), nil
}

// requestEntities is the entity store of one request: the principal, the
// resource, the action with its groups, and the parents of the principal and
// resource as entities without attributes.
type requestEntities struct {
	principal, resource types.Entity
	actions             map[types.EntityUID]types.Entity
}

func (r *requestEntities) Get(uid types.EntityUID) (types.Entity, bool) {
	switch {
	case uid == r.principal.UID:
		return r.principal, true
	case uid == r.resource.UID:
		return r.resource, true
	}
	if e, ok := r.actions[uid]; ok {
		return e, true
	}
	if r.principal.Parents.Contains(uid) || r.resource.Parents.Contains(uid) {
		return types.Entity{UID: uid}, true
	}
	return types.Entity{}, false
}

func (s *Set) decision(dec cedar.Decision, diag cedar.Diagnostic, action, resType string) Decision {
	d := Decision{Allow: dec == cedar.Allow, Version: s.version}
	for _, r := range diag.Reasons {
		d.Policies = append(d.Policies, string(r.PolicyID))
	}
	slices.Sort(d.Policies)
	var erring []string
	for _, e := range diag.Errors {
		d.Errors = append(d.Errors, string(e.PolicyID)+": "+e.Message)
		erring = append(erring, string(e.PolicyID))
	}
	slices.Sort(d.Errors)
	slices.Sort(erring)
	switch {
	case d.Allow:
		d.Reason = "permitted by " + strings.Join(d.Policies, ", ")
	case len(d.Policies) > 0:
		d.Reason = "forbidden by " + strings.Join(d.Policies, ", ")
	default:
		d.Reason = "no policy permits " + action + " on " + resType
	}
	if len(erring) > 0 {
		d.Reason += " (skipped after an error: " + strings.Join(erring, ", ") + ")"
	}
	return d
}
