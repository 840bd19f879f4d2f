package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

const demoPolicies = "../authz/policy/testdata/demo"

func runPolicy(args ...string) (string, error) {
	cmd := newPolicyCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.Execute()
	return out.String(), err
}

// copyDemo copies the demo policy directory so a test can break it.
func copyDemo(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	entries, err := os.ReadDir(demoPolicies)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(demoPolicies, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestPolicyValidate(t *testing.T) {
	out, err := runPolicy("validate", demoPolicies)
	if err != nil {
		t.Fatalf("validate demo: %v\n%s", err, out)
	}
	if !regexp.MustCompile(`is valid: 7 policies, version [0-9a-f]{16}\n$`).MatchString(out) {
		t.Fatalf("output %q", out)
	}

	dir := copyDemo(t)
	write := func(name, src string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("broken.cedar", "permit (principal, action, resource) when { principal.roles.contains( };")
	write("invalid.cedar", "@id(\"bad\")\npermit (principal, action == Action::\"read\", resource is order)\nwhen { resource.colour == \"red\" };")
	write("dup.cedar", "@id(\"owner-deletes\") permit (principal, action, resource);")
	out, err = runPolicy("validate", dir)
	if err == nil {
		t.Fatalf("broken directory validated:\n%s", out)
	}
	for _, want := range []string{"3 problems", "broken.cedar:1:", "invalid.cedar:1:1: policy bad: attribute `colour`",
		"dup.cedar:1:1: duplicate policy id \"owner-deletes\""} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if _, err := runPolicy("validate", filepath.Join(dir, "missing")); err == nil {
		t.Fatal("a missing directory validated")
	}
	if _, err := runPolicy("validate"); err == nil {
		t.Fatal("validate without DIR succeeded")
	}
}

func TestPolicyTest(t *testing.T) {
	out, err := runPolicy("test", demoPolicies)
	if err != nil {
		t.Fatalf("demo tests: %v\n%s", err, out)
	}
	if strings.Contains(out, "FAIL") || !regexp.MustCompile(`\d+ passed, 0 failed, 0 unreadable files \(policy version [0-9a-f]{16}\)`).MatchString(out) {
		t.Fatalf("output:\n%s", out)
	}
	if !strings.Contains(out, "PASS  ../authz/policy/testdata/demo/demo_test.yaml: alice reads her order") {
		t.Fatalf("output lacks a named case:\n%s", out)
	}

	dir := t.TempDir()
	failing := filepath.Join(dir, "failing.yaml")
	src := `cases:
  - name: bob may not read o-2001 without the relation
    principal: {type: user, id: usr_bob, roles: [], tenant: acme}
    action: read
    resource: {type: order, id: o-2001, tenant: acme, attrs: {status: open}}
    expect: {allow: true}
  - name: alice reads
    principal: {type: user, id: usr_alice, roles: []}
    action: read
    resource: {type: order, id: o-1001, attrs: {status: open}}
    relations: {view: true}
    expect: {allow: true}
`
	if err := os.WriteFile(failing, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	malformed := filepath.Join(dir, "malformed.yaml")
	if err := os.WriteFile(malformed, []byte("cases:\n  - name: x\n    expectation: {}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err = runPolicy("test", demoPolicies, failing, malformed)
	if err == nil {
		t.Fatalf("failing tests passed:\n%s", out)
	}
	for _, want := range []string{
		"FAIL  " + failing + ": bob may not read o-2001 without the relation: expected allow=true, got allow=false",
		"PASS  " + failing + ": alice reads",
		"ERROR " + malformed, "expectation",
		"1 passed, 1 failed, 1 unreadable files",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	noTests := copyDemo(t)
	if err := os.Remove(filepath.Join(noTests, "demo_test.yaml")); err != nil {
		t.Fatal(err)
	}
	if _, err := runPolicy("test", noTests); err == nil || !strings.Contains(err.Error(), "no test files") {
		t.Fatalf("err = %v", err)
	}
}
