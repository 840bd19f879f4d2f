package policy

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
)

func loadErr(t *testing.T, fsys fstest.MapFS) *LoadError {
	t.Helper()
	s, err := LoadFS(fsys)
	if err == nil {
		t.Fatal("LoadFS succeeded, want an error")
	}
	if s != nil {
		t.Fatal("LoadFS returned a set with an error")
	}
	var le *LoadError
	if !errors.As(err, &le) {
		t.Fatalf("err = %v (%T), want *LoadError", err, err)
	}
	return le
}

func TestLoadReportsEveryProblem(t *testing.T) {
	fsys := mapFS(map[string]string{
		"schema.cedarschema": testSchema,
		"a.cedar":            "permit (principal, action, resource);\n\npermit (principal, action == Action::\"view\", resource)\n  when { resource.nope == 1 ;",
		"b.cedar":            "@id(\"x\")\npermit (principal, action == Action::\"view\", resource is document)\nwhen { resource.nope == 1 };\n\n@id(\"y\") permit (principal, action == Action::\"fly\", resource);",
		"c.cedar":            "@id(\"dup\") permit (principal, action, resource);\n  @id(\"dup\") forbid (principal, action, resource);",
		"d.cedar":            "@id(\"dup\") permit (principal, action, resource);",
		"ok.cedar":           "permit (principal, action, resource);",
	})
	le := loadErr(t, fsys)
	want := []string{
		"a.cedar:4:30: syntax error: exact got ; want }",
		"b.cedar:1:1: policy x: attribute `nope` on entity type `document` not found",
		"b.cedar:5:1: policy y: unrecognized action `Action::\"fly\"`",
		"c.cedar:2:3: duplicate policy id \"dup\" (first at c.cedar:1:1)",
		"d.cedar:1:1: duplicate policy id \"dup\" (first at c.cedar:1:1)",
	}
	got := le.Error()
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("error lacks %q:\n%s", w, got)
		}
	}
	for _, p := range le.Problems {
		if p.Line == 0 || p.Column == 0 {
			t.Errorf("problem without position: %s", p)
		}
		if p.File == "ok.cedar" {
			t.Errorf("problem in a valid file: %s", p)
		}
	}
}

func TestLoadErrors(t *testing.T) {
	big := strings.Repeat("// padding\n", MaxFileSize/11+1)
	cases := []struct {
		name  string
		fsys  fstest.MapFS
		wants []string
	}{
		{"missing-schema", mapFS(map[string]string{"a.cedar": "permit (principal, action, resource) when { ; };"}),
			[]string{"schema.cedarschema: missing", "a.cedar:1:"}},
		{"schema-syntax", mapFS(map[string]string{"schema.cedarschema": "entity user {\n  roles Set<String> };"}),
			[]string{"schema.cedarschema:2:"}},
		{"schema-undefined-type", mapFS(map[string]string{"schema.cedarschema": "entity user in [nope];"}),
			[]string{`schema.cedarschema: entity "user": undefined entity type "nope"`}},
		{"relations-not-bools", mapFS(map[string]string{"schema.cedarschema": "entity u; action a appliesTo { principal: u, resource: u, context: { relations: { x: Long } } };"}),
			[]string{"context.relations must be a record of Bool"}},
		{"relations-not-record", mapFS(map[string]string{"schema.cedarschema": "entity u; action a appliesTo { principal: u, resource: u, context: { relations: Bool } };"}),
			[]string{"context.relations must be a record of Bool"}},
		{"empty-id", mapFS(map[string]string{"schema.cedarschema": testSchema, "a.cedar": "@id(\"\") permit (principal, action, resource);"}),
			[]string{"a.cedar:1:1: @id must be non-empty"}},
		{"control-char-id", mapFS(map[string]string{"schema.cedarschema": testSchema, "a.cedar": "@id(\"a\\nb\") permit (principal, action, resource);"}),
			[]string{"a.cedar:1:1: @id must be non-empty and free of control characters"}},
		{"too-large", mapFS(map[string]string{"schema.cedarschema": testSchema, "big.cedar": big}),
			[]string{"big.cedar: file is larger than"}},
		{"directory-named-cedar", fstest.MapFS{"schema.cedarschema": {Data: []byte(testSchema)}, "x.cedar/inner": {Data: []byte("x")}},
			[]string{"x.cedar: not a regular file"}},
		{"strict-mode", mapFS(map[string]string{"schema.cedarschema": testSchema,
			"a.cedar": "permit (principal, action == Action::\"view\", resource is document) when { principal.acr == \"mfa\" };"}),
			[]string{"a.cedar:1:1: policy a.cedar:0:"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			msg := loadErr(t, tc.fsys).Error()
			for _, w := range tc.wants {
				if !strings.Contains(msg, w) {
					t.Errorf("error lacks %q:\n%s", w, msg)
				}
			}
		})
	}
}

func TestLoadIgnoresOtherFiles(t *testing.T) {
	base := map[string]string{"schema.cedarschema": testSchema, "main.cedar": testPolicies}
	s := mustLoad(t, base)
	withJunk := map[string]string{"README.md": "x", "main.cedar.bak": "garbage", ".hidden.cedar": "garbage", "tests.yaml": "cases: []"}
	for k, v := range base {
		withJunk[k] = v
	}
	s2 := mustLoad(t, withJunk)
	if s2.Version() != s.Version() || s2.Len() != s.Len() {
		t.Fatalf("ignored files changed the set: %s/%d vs %s/%d", s2.Version(), s2.Len(), s.Version(), s.Len())
	}
	sub := fstest.MapFS{"schema.cedarschema": {Data: []byte(testSchema)}, "sub/x.cedar": {Data: []byte("garbage")}}
	if _, err := LoadFS(sub); err != nil {
		t.Fatalf("a subdirectory was read: %v", err)
	}
	empty := mustLoad(t, map[string]string{"schema.cedarschema": testSchema})
	if empty.Len() != 0 {
		t.Fatalf("Len = %d", empty.Len())
	}
	d, err := empty.Authorize(Request{Principal: user("u1", "admin"), Action: "view", Resource: doc("d", "open")})
	if err != nil || d.Allow {
		t.Fatalf("empty set: %+v, %v; want a deny", d, err)
	}
}

func TestVersion(t *testing.T) {
	files := map[string]string{"schema.cedarschema": testSchema, "main.cedar": testPolicies}
	v1 := mustLoad(t, files).Version()
	if v2 := mustLoad(t, files).Version(); v1 != v2 {
		t.Fatalf("version not stable: %s vs %s", v1, v2)
	}
	if len(v1) != 16 || strings.Trim(v1, "0123456789abcdef") != "" {
		t.Fatalf("version %q is not 16 hex digits", v1)
	}
	changes := map[string]map[string]string{
		"content":  {"schema.cedarschema": testSchema, "main.cedar": testPolicies + " "},
		"renamed":  {"schema.cedarschema": testSchema, "other.cedar": testPolicies},
		"schema":   {"schema.cedarschema": testSchema + "\n", "main.cedar": testPolicies},
		"new-file": {"schema.cedarschema": testSchema, "main.cedar": testPolicies, "z.cedar": ""},
	}
	for name, f := range changes {
		if v := mustLoad(t, f).Version(); v == v1 {
			t.Errorf("%s: version unchanged", name)
		}
	}
	// Moving bytes between name and content must change the version.
	a := version([]srcFile{{name: "a.cedar", data: []byte("bc")}})
	b := version([]srcFile{{name: "a.cedarb", data: []byte("c")}})
	if a == b {
		t.Error("version is ambiguous between name and content")
	}
}

func TestLoadDir(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("schema.cedarschema", testSchema)
	real := filepath.Join(t.TempDir(), "real.cedar")
	if err := os.WriteFile(real, []byte(testPolicies), 0o600); err != nil {
		t.Fatal(err)
	}
	// A ConfigMap-style symbolic link to a regular file is followed.
	if err := os.Symlink(real, filepath.Join(dir, "main.cedar")); err != nil {
		t.Fatal(err)
	}
	s, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if s.Len() != 8 {
		t.Fatalf("Len = %d, want 8", s.Len())
	}
	// A link to a directory is refused.
	if err := os.Symlink(t.TempDir(), filepath.Join(dir, "dir.cedar")); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "dir.cedar: not a regular file") {
		t.Fatalf("err = %v", err)
	}
	if _, err := Load(filepath.Join(dir, "nope")); err == nil {
		t.Fatal("a missing directory loaded")
	}
	if _, err := Load(filepath.Join(dir, "schema.cedarschema")); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Fatalf("err = %v", err)
	}
}

func TestHolder(t *testing.T) {
	good := testSet(t)
	h := NewHolder(good)
	if h.Load() != good {
		t.Fatal("Load != initial set")
	}
	bad, err := LoadFS(mapFS(map[string]string{"schema.cedarschema": testSchema, "a.cedar": "permit ("}))
	if err == nil {
		t.Fatal("bad set loaded")
	}
	h.Swap(bad) // nil: ignored
	if h.Load() != good {
		t.Fatal("a set that failed to load replaced the good one")
	}
	if NewHolder(nil).Load() != nil {
		t.Fatal("empty holder holds a set")
	}
	other := mustLoad(t, map[string]string{"schema.cedarschema": testSchema})
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				if i%2 == 0 {
					h.Swap(other)
				} else if s := h.Load(); s == nil {
					t.Error("Load returned nil")
					return
				} else {
					_, _ = s.Authorize(Request{Principal: user("u"), Action: "view", Resource: doc("d", "open")})
				}
			}
		}()
	}
	wg.Wait()
	if h.Load() != other {
		t.Fatal("Swap did not take effect")
	}
}
