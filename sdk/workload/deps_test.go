package workload_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependenciesStayShort keeps the SDK free of server code: the standard
// library, golang.org/x/..., go-spiffe with what it needs (gRPC, protobuf,
// the gRPC status proto, go-jose) and Gatehouse's sdk/jwtx.
func TestDependenciesStayShort(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}",
		"github.com/gatehouse/gatehouse/sdk/workload").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	exact := []string{
		"github.com/gatehouse/gatehouse/sdk/workload",
		"github.com/gatehouse/gatehouse/sdk/jwtx",
		"github.com/go-jose/go-jose/v4",
		"github.com/spiffe/go-spiffe/v2",
		"google.golang.org/grpc",
		"google.golang.org/protobuf",
	}
	prefixes := []string{
		"golang.org/x/",
		"github.com/go-jose/go-jose/v4/",
		"github.com/spiffe/go-spiffe/v2/",
		"google.golang.org/grpc/",
		"google.golang.org/protobuf/",
		"google.golang.org/genproto/googleapis/rpc/", // grpc/status
	}
	for _, p := range strings.Fields(string(out)) {
		ok := false
		for _, a := range exact {
			ok = ok || p == a
		}
		for _, a := range prefixes {
			ok = ok || strings.HasPrefix(p, a)
		}
		if !ok || strings.HasPrefix(p, "github.com/gatehouse/gatehouse/internal/") ||
			strings.HasPrefix(p, "github.com/gatehouse/gatehouse/") && !strings.HasPrefix(p, "github.com/gatehouse/gatehouse/sdk/") {
			t.Errorf("unexpected dependency %s", p)
		}
	}
}
