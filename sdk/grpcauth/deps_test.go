package grpcauth

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependenciesStayShort keeps the package's import graph to the standard
// library, gRPC and what it needs, golang.org/x, go-jose, and the Gatehouse SDK: a
// service importing grpcauth must not pull in the server's internals.
func TestDependenciesStayShort(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to list dependencies: %v", err)
	}
	out, err := exec.Command(gobin, "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	allowed := []string{
		"google.golang.org/grpc/",
		"google.golang.org/protobuf/",
		"google.golang.org/genproto/",
		"golang.org/x/",
		"github.com/gatehouse/gatehouse/sdk/",
		// sdk/auth parses JWKS with go-jose, one of the SDK's allowed
		// dependencies.
		"github.com/go-jose/go-jose/v4/",
	}
	var n int
	for _, p := range strings.Fields(string(out)) {
		n++
		if strings.HasPrefix(p+"/", "github.com/gatehouse/gatehouse/internal/") {
			t.Errorf("depends on Gatehouse internals: %s", p)
			continue
		}
		ok := false
		for _, a := range allowed {
			if strings.HasPrefix(p+"/", a) {
				ok = true
				break
			}
		}
		if !ok {
			t.Errorf("unexpected dependency %s", p)
		}
	}
	if n == 0 {
		t.Fatal("go list returned no packages; the check did not run")
	}
}
