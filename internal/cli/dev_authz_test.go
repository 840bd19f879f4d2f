package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDevAuthzPolicies: the dev demo's policies pass their own YAML tests,
// and the candidate set (run in shadow by gatehouse dev) fails exactly the
// case the tour shows as a disagreement — what `gatehouse policy test` in a
// policy repository's CI would report before the change is promoted.
func TestDevAuthzPolicies(t *testing.T) {
	p, err := writeDevAuthzFiles(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	out, err := runPolicy("test", p.policies)
	if err != nil || !strings.Contains(out, "9 passed, 0 failed") {
		t.Fatalf("dev policies: %v\n%s", err, out)
	}
	out, err = runPolicy("test", p.candidate, filepath.Join(p.policies, "orders_test.yaml"))
	if err == nil || !strings.Contains(out, "8 passed, 1 failed") ||
		!strings.Contains(out, "FAIL  "+filepath.Join(p.policies, "orders_test.yaml")+": alice reads bob's order as his team's manager") {
		t.Fatalf("candidate set: %v\n%s", err, out)
	}
	if out, err := runPolicy("validate", p.candidate); err != nil {
		t.Fatalf("candidate does not validate: %v\n%s", err, out)
	}
}

// TestDevAuthzFilesNeverOverwritten: an edited policy survives a restart.
func TestDevAuthzFilesNeverOverwritten(t *testing.T) {
	dir := t.TempDir()
	p, err := writeDevAuthzFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	edited := filepath.Join(p.policies, "orders.cedar")
	if err := os.WriteFile(edited, []byte("// mine\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := writeDevAuthzFiles(dir); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(edited); string(b) != "// mine\n" {
		t.Fatalf("overwritten: %q", b)
	}
	if fi, err := os.Stat(p.schema); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("relations.zed: %v %v", fi, err)
	}
}
