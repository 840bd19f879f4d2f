package policy

import (
	"encoding/json"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/cedar-policy/cedar-go/types"
	"github.com/cedar-policy/cedar-go/x/exp/schema"
	"github.com/cedar-policy/cedar-go/x/exp/schema/resolved"
	"github.com/cedar-policy/cedar-go/x/exp/schema/validate"
)

// TestValidationMatchesCedar checks Authorize's own request checks (done from
// the resolved schema for speed) against cedar-go's validator: for random
// valid and broken requests, Authorize rejects exactly the requests that
// validate.Request and validate.Entity reject (after dropping undeclared
// entity attributes and injecting the relations).
func TestValidationMatchesCedar(t *testing.T) {
	s := testSet(t)
	var sch schema.Schema
	if err := sch.UnmarshalCedar([]byte(testSchema)); err != nil {
		t.Fatal(err)
	}
	rs, err := sch.Resolve()
	if err != nil {
		t.Fatal(err)
	}
	v := validate.New(rs, validate.WithStrict())
	r := rand.New(rand.NewPCG(5, 6))
	accepted, rejected := 0, 0
	for i := range 4000 {
		req := mutatedRequest(r)
		_, err := s.Authorize(req)
		if err != nil && !errors.Is(err, ErrInvalidRequest) {
			t.Fatalf("request %d: unexpected error %v", i, err)
		}
		want := referenceCheck(rs, v, req)
		if (err == nil) != (want == nil) {
			t.Fatalf("request %d %+v:\nAuthorize: %v\ncedar validator: %v", i, req, err, want)
		}
		if err == nil {
			accepted++
		} else {
			rejected++
		}
	}
	if accepted < 200 || rejected < 200 {
		t.Fatalf("accepted %d, rejected %d: the generator does not cover both", accepted, rejected)
	}
}

func pick[T any](r *rand.Rand, xs ...T) T { return xs[r.IntN(len(xs))] }

const absent = "<absent>"

func setAttr(e *Entity, k string, v any) {
	if s, ok := v.(string); ok && s == absent {
		delete(e.Attrs, k)
		return
	}
	e.Attrs[k] = v
}

func mutatedRequest(r *rand.Rand) Request {
	p := Entity{Type: "user", ID: "u", Attrs: map[string]any{"roles": []any{"admin"}}}
	res := Entity{Type: "document", ID: "d", Attrs: map[string]any{"status": "open"}}
	req := Request{Principal: p, Action: "view", Resource: res}
	ref := func(t string) any { return map[string]any{"__entity": map[string]any{"type": t, "id": "x"}} }
	for range r.IntN(3) {
		switch r.IntN(14) {
		case 0:
			req.Action = pick(r, "view", "edit", "approve", "purge", "admin-ops", "nope")
		case 1:
			req.Resource.Type = pick(r, "document", "folder", "user", "invoice")
		case 2:
			req.Principal.Type = pick(r, "user", "team", "robot")
		case 3:
			setAttr(&req.Principal, "roles", pick[any](r, []any{}, []any{"a"}, []any{json.Number("1")}, "admin", absent))
		case 4:
			setAttr(&req.Principal, "tenant", pick[any](r, "acme", json.Number("3"), true, absent))
		case 5:
			setAttr(&req.Principal, pick(r, "level", "auth_time"), pick[any](r, json.Number("5"), "5", json.Number("1.5"), absent))
		case 6:
			setAttr(&req.Principal, "email", "x@example.test") // undeclared: dropped
		case 7:
			setAttr(&req.Resource, "status", pick[any](r, "open", json.Number("7"), absent, []any{}))
		case 8:
			setAttr(&req.Resource, "owner", pick(r, ref("user"), ref("team"), any(map[string]any{"id": "x"}), any("user::x")))
		case 9:
			setAttr(&req.Resource, "meta", pick[any](r, map[string]any{"tags": []any{}}, map[string]any{"tags": []any{json.Number("1")}},
				map[string]any{"tags": []any{}, "x": json.Number("1")}, map[string]any{}))
		case 10:
			req.Context = pick(r, map[string]any{"now": json.Number("1")}, map[string]any{"now": "1"}, nil,
				map[string]any{"now": json.Number("1"), "x": true})
		case 11:
			req.Relations = pick(r, map[string]bool{"owner": true}, map[string]bool{"zzz": true}, nil)
		case 12:
			req.Principal.Parents = pick(r, []EntityRef{{"team", "t"}}, []EntityRef{{"folder", "f"}}, nil)
		case 13:
			req.Resource.Parents = pick(r, []EntityRef{{"folder", "f"}}, []EntityRef{{"team", "t"}}, nil)
		}
	}
	return req
}

// referenceCheck validates req with cedar-go's validator.
func referenceCheck(rs *resolved.Schema, v *validate.Validator, req Request) error {
	conv := func(e Entity) (types.Entity, error) {
		uid := types.NewEntityUID(types.EntityType(e.Type), types.String(e.ID))
		rm := types.RecordMap{}
		shape := rs.Entities[uid.Type].Shape
		for k, a := range e.Attrs {
			if _, ok := shape[types.String(k)]; !ok {
				continue
			}
			cv, err := toValue(a, 0)
			if err != nil {
				return types.Entity{}, err
			}
			rm[types.String(k)] = cv
		}
		var ps []types.EntityUID
		for _, p := range e.Parents {
			ps = append(ps, types.NewEntityUID(types.EntityType(p.Type), types.String(p.ID)))
		}
		return types.Entity{UID: uid, Attributes: types.NewRecord(rm), Parents: types.NewEntityUIDSet(ps...)}, nil
	}
	p, err := conv(req.Principal)
	if err != nil {
		return err
	}
	res, err := conv(req.Resource)
	if err != nil {
		return err
	}
	action := types.NewEntityUID("Action", types.String(req.Action))
	ctxMap := types.RecordMap{}
	for k, a := range req.Context {
		cv, err := toValue(a, 0)
		if err != nil {
			return err
		}
		ctxMap[types.String(k)] = cv
	}
	if act, ok := rs.Actions[action]; ok && act.AppliesTo != nil {
		if attr, ok := act.AppliesTo.Context[relationsAttr]; ok {
			rel := types.RecordMap{}
			for k := range attr.Type.(resolved.RecordType) {
				rel[k] = types.Boolean(false)
			}
			for k, b := range req.Relations {
				rel[types.String(k)] = types.Boolean(b)
			}
			ctxMap[relationsAttr] = types.NewRecord(rel)
		} else if len(req.Relations) > 0 {
			return errors.New("relations for an action without")
		}
	}
	if err := v.Request(types.Request{Principal: p.UID, Action: action, Resource: res.UID, Context: types.NewRecord(ctxMap)}); err != nil {
		return err
	}
	if err := v.Entity(p); err != nil {
		return err
	}
	return v.Entity(res)
}
