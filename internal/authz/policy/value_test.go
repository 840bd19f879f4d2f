package policy

import (
	"strings"
	"testing"

	"github.com/cedar-policy/cedar-go/types"
	"github.com/cedar-policy/cedar-go/x/exp/schema/resolved"
)

func TestToValue(t *testing.T) {
	cases := []struct {
		json string
		want types.Value
		err  string
	}{
		{`"a"`, types.String("a"), ""},
		{`true`, types.Boolean(true), ""},
		{`-9223372036854775808`, types.Long(-9223372036854775808), ""},
		{`9223372036854775808`, nil, "not a 64-bit integer"},
		{`1.0`, nil, "not a 64-bit integer"},
		{`1e3`, nil, "not a 64-bit integer"},
		{`null`, nil, "unsupported value null"},
		{`[1, 1, "x"]`, types.NewSet(types.Long(1), types.String("x")), ""},
		{`[null]`, nil, "null"},
		{`{"a": {"b": []}}`, types.NewRecord(types.RecordMap{"a": types.NewRecord(types.RecordMap{"b": types.NewSet()})}), ""},
		{`{"a": null}`, nil, `"a": unsupported value null`},
		{`{"__entity": {"type": "user", "id": "alice"}}`, types.NewEntityUID("user", "alice"), ""},
		{`{"__entity": {"type": "user", "id": "alice"}, "x": 1}`, nil, "only member"},
		{`{"__entity": {"type": "user"}}`, nil, `"__entity" must be`},
		{`{"__entity": {"type": "", "id": "x"}}`, nil, `"__entity" must be`},
		{`{"__entity": {"type": "user", "id": 1}}`, nil, `"__entity" must be`},
		{`{"__entity": "user::alice"}`, nil, `"__entity" must be`},
		{strings.Repeat("[", 40) + strings.Repeat("]", 40), nil, "nested too deeply"},
	}
	for _, tc := range cases {
		t.Run(tc.json, func(t *testing.T) {
			got, err := toValue(jsonValue(t, tc.json), 0)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || !got.Equal(tc.want) {
				t.Fatalf("got %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}

func TestTyped(t *testing.T) {
	rec := resolved.RecordType{"a": {Type: resolved.StringType{}}, "b": {Type: resolved.LongType{}, Optional: true}}
	cases := []struct {
		name string
		json string
		typ  resolved.IsType
		err  string
	}{
		{"string", `"x"`, resolved.StringType{}, ""},
		{"string-number", `1`, resolved.StringType{}, "expected String, got number"},
		{"long-string", `"1"`, resolved.LongType{}, "expected Long, got string"},
		{"bool-string", `"true"`, resolved.BoolType{}, "expected Bool, got string"},
		{"set", `[1, 2]`, resolved.SetType{Element: resolved.LongType{}}, ""},
		{"set-element", `[1, "2"]`, resolved.SetType{Element: resolved.LongType{}}, "set element 1: expected Long"},
		{"set-object", `{}`, resolved.SetType{Element: resolved.LongType{}}, "expected Set<Long>, got object"},
		{"record", `{"a": "x"}`, rec, ""},
		{"record-missing", `{"b": 1}`, rec, `missing required attribute "a"`},
		{"record-extra", `{"a": "x", "c": 1}`, rec, `attribute "c" is not declared`},
		{"entity", `{"__entity": {"type": "user", "id": "u"}}`, resolved.EntityType("user"), ""},
		{"entity-type", `{"__entity": {"type": "team", "id": "u"}}`, resolved.EntityType("user"), "expected entity of type user, got \"team\""},
		{"entity-record", `{"id": "u"}`, resolved.EntityType("user"), "expected user, got object"},
		{"ipaddr", `"10.0.0.0/8"`, resolved.ExtensionType("ipaddr"), ""},
		{"ipaddr-bad", `"10.0.0.300"`, resolved.ExtensionType("ipaddr"), "invalid ipaddr"},
		{"decimal", `"1.25"`, resolved.ExtensionType("decimal"), ""},
		{"datetime", `"2026-11-27T10:00:00Z"`, resolved.ExtensionType("datetime"), ""},
		{"duration", `"1h30m"`, resolved.ExtensionType("duration"), ""},
		{"duration-number", `90`, resolved.ExtensionType("duration"), "expected duration, got number"},
		{"unknown-extension", `"x"`, resolved.ExtensionType("geo"), "unsupported extension type"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := typed(jsonValue(t, tc.json), tc.typ, 0)
			if tc.err == "" && err != nil {
				t.Fatalf("err = %v", err)
			}
			if tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
				t.Fatalf("err = %v, want %q", err, tc.err)
			}
		})
	}
	// Go integers are accepted for Long (the service builds auth_time itself).
	if v, err := typed(int64(42), resolved.LongType{}, 0); err != nil || !v.Equal(types.Long(42)) {
		t.Fatalf("int64: %v, %v", v, err)
	}
}
