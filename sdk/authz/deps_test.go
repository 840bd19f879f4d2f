package authz

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependenciesStayShort keeps the client small and free of server
// code: the standard library, golang.org/x/sync and Gatehouse's sdk/jwtx.
func TestDependenciesStayShort(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}",
		"github.com/gatehouse/gatehouse/sdk/authz").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	allowed := []string{"github.com/gatehouse/gatehouse/sdk/authz", "github.com/gatehouse/gatehouse/sdk/jwtx",
		"golang.org/x/sync/", "golang.org/x/oauth2"}
	for _, p := range strings.Fields(string(out)) {
		ok := false
		for _, a := range allowed {
			if p == a || strings.HasSuffix(a, "/") && strings.HasPrefix(p, a) || a == "golang.org/x/oauth2" && strings.HasPrefix(p, a) {
				ok = true
			}
		}
		if !ok || strings.HasPrefix(p, "github.com/gatehouse/gatehouse/internal/") {
			t.Errorf("unexpected dependency %s", p)
		}
	}
}
