package authz

import (
	"context"
	"errors"
	"testing"

	"github.com/gatehouse/gatehouse/internal/authz/policy"
)

var fuzzSeeds = []string{
	`{"principal":{"id":"usr_alice","tenant":"acme","roles":["admin"]},"action":"read","resource":{"type":"order","id":"o-1","tenant":"acme","attrs":{"status":"open","n":1}},"context":{},"consistency":{"at_least_as_fresh":"5"}}`,
	`{"principal":{"token":"a.b.c"},"action":"read","resource":{"type":"order","id":"o-1"}}`,
	`{"principal":{"id":"a","id":"b"},"action":"read","resource":{"type":"order","id":"o-1"}}`,
	`{"Action":"read"}`,
	`{"principal":{"id":"a"},"action":"read","resource":{"type":"order","id":"o-1"}} []`,
	`{"a":[[[[[[[[[1]]]]]]]]]}`,
	`{"principal":{"id":"usr_alice"},"checks":[{"action":"read","resource":{"type":"order","id":"o-1"}}]}`,
	``, `null`, `"x"`, `{`, "{\"principal\":{\"id\":\"\xff\"}}",
}

// checkDecoded asserts invariants of a decoded request.
func checkDecoded(t *testing.T, req *authorizeRequest, err error) {
	if err != nil {
		var br *badRequest
		if !errors.As(err, &br) {
			t.Fatalf("error of type %T: %v", err, err)
		}
		return
	}
	p := req.principal
	if p.token == "" && (!typeName.MatchString(p.entity.Type) || !validID(p.entity.ID)) {
		t.Fatalf("accepted principal %+v", p.entity)
	}
	if len(req.checks) == 0 || len(req.checks) > maxBatch {
		t.Fatalf("%d checks", len(req.checks))
	}
	for _, c := range req.checks {
		if c.action == "" || !typeName.MatchString(c.resource.Type) || !validID(c.resource.ID) {
			t.Fatalf("accepted check %+v", c)
		}
	}
}

func FuzzDecodeAuthorize(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := decodeAuthorize(body)
		checkDecoded(t, req, err)
		if err == nil && len(req.checks) != 1 {
			t.Fatalf("%d checks", len(req.checks))
		}
		if err == nil && checkStrict(body) != nil {
			t.Fatal("accepted a body the strict checker refuses")
		}
	})
}

func FuzzDecodeBatch(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := decodeBatch(body)
		checkDecoded(t, req, err)
	})
}

// TestDecideNeverPanics feeds hostile in-process inputs to Decide.
func TestDecideNeverPanics(t *testing.T) {
	e := newEnv(t)
	for name, in := range map[string]Input{
		"AZ-01/empty":             {},
		"AZ-01/nil-attrs":         {Principal: policy.Entity{Type: "user", ID: "usr_alice"}, Action: "read", Resource: policy.Entity{Type: "order", ID: "o-1001"}},
		"AZ-01/nested-context":    {Principal: entity("user", "usr_alice"), Action: "read", Resource: orderEntity("o-1001", "open"), Context: map[string]any{"x": map[string]any{"y": []any{nil}}}},
		"AZ-01/nil-attr-value":    {Principal: entity("user", "usr_alice"), Action: "read", Resource: orderEntity("o-1001", "open"), AtLeast: 0},
		"AZ-01/bad-principal-id":  {Principal: entity("user", "a:b"), Action: "read", Resource: orderEntity("o-1001", "open")},
		"AZ-01/unicode-action":    {Principal: entity("user", "usr_alice"), Action: "réad", Resource: orderEntity("o-1001", "open")},
		"AZ-01/cancelled-context": {Principal: entity("user", "usr_alice"), Action: "read", Resource: orderEntity("o-1001", "open")},
	} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			if name == "AZ-01/cancelled-context" {
				c, cancel := context.WithCancel(ctx)
				cancel()
				ctx = c
			}
			if name == "AZ-01/nil-attr-value" {
				in.Resource.Attrs["owner"] = nil
			}
			res := e.svc.Decide(ctx, in)
			if res.Allow || res.Reason == "" || res.DecisionID == "" {
				t.Fatalf("%+v", res)
			}
		})
	}
}
