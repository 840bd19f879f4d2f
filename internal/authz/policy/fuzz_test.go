package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/cedar-policy/cedar-go/x/exp/schema/resolved"
)

func FuzzLoad(f *testing.F) {
	f.Add(testSchema, testPolicies)
	f.Add(testSchema, "permit (principal, action, resource) when { ; };")
	f.Add("entity user in [nope];", "")
	f.Add("entity u; action a appliesTo { principal: u, resource: u, context: { relations: { x: Bool } } };",
		`@id("p") permit (principal, action == Action::"a", resource) when { context.relations.x };`)
	f.Add("entity u;", `@id("d") permit (principal, action, resource); @id("d") forbid (principal, action, resource);`)
	f.Fuzz(func(t *testing.T, schemaSrc, policySrc string) {
		s, err := LoadFS(mapFS(map[string]string{"schema.cedarschema": schemaSrc, "p.cedar": policySrc}))
		if err != nil {
			if s != nil {
				t.Fatal("a set returned with an error")
			}
			var le *LoadError
			if errors.As(err, &le) {
				if len(le.Problems) == 0 {
					t.Fatal("LoadError without problems")
				}
				for _, p := range le.Problems {
					if p.File != "schema.cedarschema" && p.File != "p.cedar" {
						t.Fatalf("problem in unknown file: %s", p)
					}
				}
			}
			return
		}
		if len(s.Version()) != 16 {
			t.Fatalf("version %q", s.Version())
		}
		// A loaded set evaluates any request without panicking.
		for name := range s.actions {
			for _, typ := range []string{"u", "user", "document", "order"} {
				_, _ = s.Authorize(Request{Principal: Entity{Type: typ, ID: "p"}, Action: name, Resource: Entity{Type: typ, ID: "r"},
					Relations: map[string]bool{"x": true}})
			}
		}
	})
}

func FuzzValue(f *testing.F) {
	for _, s := range []string{`"a"`, `1`, `1.5`, `-9223372036854775808`, `9223372036854775808`, `true`, `null`, `[1, "a", [true]]`,
		`{"a": {"b": [1]}}`, `{"__entity": {"type": "user", "id": "alice"}}`, `{"__entity": {"type": "", "id": 1}}`,
		`{"__entity": {"type": "user", "id": "a"}, "x": 1}`, `"192.168.0.1/24"`, `"2026-11-27T00:00:00Z"`, `"1.5"`, `"1h"`,
		strings.Repeat("[", 40) + strings.Repeat("]", 40)} {
		f.Add([]byte(s))
	}
	schemaTypes := []resolved.IsType{
		resolved.StringType{}, resolved.LongType{}, resolved.BoolType{},
		resolved.SetType{Element: resolved.LongType{}},
		resolved.RecordType{"a": {Type: resolved.StringType{}}, "b": {Type: resolved.LongType{}, Optional: true}},
		resolved.EntityType("user"),
		resolved.ExtensionType("ipaddr"), resolved.ExtensionType("decimal"),
		resolved.ExtensionType("datetime"), resolved.ExtensionType("duration"),
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		d := json.NewDecoder(bytes.NewReader(src))
		d.UseNumber()
		var v any
		if err := d.Decode(&v); err != nil {
			return
		}
		a, errA := toValue(v, 0)
		b, errB := toValue(v, 0)
		if (errA == nil) != (errB == nil) {
			t.Fatal("conversion is not deterministic")
		}
		if errA == nil && !a.Equal(b) {
			t.Fatalf("conversion is not deterministic: %v vs %v", a, b)
		}
		if v == nil && errA == nil {
			t.Fatal("null converted")
		}
		for _, st := range schemaTypes {
			tv, err := typed(v, st, 0)
			if err != nil {
				continue
			}
			// A value that conforms to a non-extension type converts the
			// same way without the schema.
			if _, ext := st.(resolved.ExtensionType); !ext {
				if uv, err := toValue(v, 0); err != nil || !uv.Equal(tv) {
					t.Fatalf("typed %T gives %v, untyped %v (%v)", st, tv, uv, err)
				}
			}
		}
	})
}

func FuzzRunTests(f *testing.F) {
	f.Add([]byte("cases:\n  - name: x\n    principal: {type: user, id: u, roles: [admin]}\n    action: view\n    resource: {type: document, id: d, attrs: {status: open}}\n    expect: {allow: true}\n"))
	f.Add([]byte("cases: []"))
	f.Add([]byte("cases:\n  - name: x\n    expect: {allow: false, error_contains: x}\n    context: {a: [1, 2.5, {b: null}]}\n"))
	s := testSet(f)
	f.Fuzz(func(t *testing.T, src []byte) {
		res, err := RunTests(s, "t.yaml", src)
		if err == nil && len(res) == 0 {
			t.Fatal("no results and no error")
		}
		for _, r := range res {
			if r.Pass && r.Got.Allow && r.Err != nil {
				t.Fatal("allowed with an error")
			}
		}
	})
}
