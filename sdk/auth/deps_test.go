package auth

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependenciesStayShort keeps the SDK small: the standard library,
// golang.org/x/oauth2, golang.org/x/sync, go-jose, and Gatehouse's own sdk
// packages. Never a server package (internal/...).
func TestDependenciesStayShort(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}",
		"github.com/gatehouse/gatehouse/sdk/auth", "github.com/gatehouse/gatehouse/sdk/jwtx").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	allowed := []string{"github.com/gatehouse/gatehouse/sdk/", "golang.org/x/oauth2", "golang.org/x/sync/",
		"github.com/go-jose/go-jose/v4"}
	var modules = map[string]bool{}
	for _, p := range strings.Fields(string(out)) {
		ok := false
		for _, a := range allowed {
			if strings.HasPrefix(p, a) {
				ok = true
				modules[a] = true
			}
		}
		if !ok || strings.Contains(p, "/internal/") && strings.HasPrefix(p, "github.com/gatehouse/gatehouse/") {
			t.Errorf("unexpected dependency %s", p)
		}
	}
	if len(modules) > len(allowed) {
		t.Errorf("too many modules: %v", modules)
	}
}
