package examples

import (
	"os/exec"
	"strings"
	"testing"
)

// TestOnlyPublicSDK: no package under examples/ (tests included) depends on
// Gatehouse's internal packages; the demo uses the public SDK only. Every
// package also has a doc comment.
func TestOnlyPublicSDK(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed for this test: %v", err)
	}
	out, err := exec.Command(gobin, "list", "-deps", "-test", "-f", "{{.ImportPath}}", "./...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	sawSDK := false
	for _, d := range deps {
		if strings.HasPrefix(d, "github.com/gatehouse/gatehouse/internal/") || d == "github.com/gatehouse/gatehouse/internal" {
			t.Errorf("examples depend on %s", d)
		}
		if d == "github.com/gatehouse/gatehouse/sdk/auth" {
			sawSDK = true
		}
	}
	if !sawSDK || len(deps) < 10 {
		t.Fatalf("go list found %d packages and no sdk/auth: the check is not looking at the examples", len(deps))
	}
	docs, err := exec.Command(gobin, "list", "-f", "{{.ImportPath}}|{{.Doc}}", "./...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, docs)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(docs)), "\n") {
		if path, doc, _ := strings.Cut(line, "|"); strings.TrimSpace(doc) == "" {
			t.Errorf("%s has no package doc comment", path)
		}
	}
}
