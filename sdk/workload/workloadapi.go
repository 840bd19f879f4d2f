package workload

import (
	"context"
	"fmt"

	"github.com/spiffe/go-spiffe/v2/workloadapi"
)

// NewWorkloadAPISource connects to a SPIFFE Workload API (a SPIRE agent, or
// any implementation) at addr ("unix:///run/spire/agent.sock" or
// "tcp://127.0.0.1:8081"; "" uses the SPIFFE_ENDPOINT_SOCKET environment
// variable) and blocks until the first SVID and bundles arrive or ctx ends.
// The returned source follows rotations pushed by the agent; it implements
// Source. Close it when done.
func NewWorkloadAPISource(ctx context.Context, addr string) (*workloadapi.X509Source, error) {
	var opts []workloadapi.X509SourceOption
	if addr != "" {
		opts = append(opts, workloadapi.WithClientOptions(workloadapi.WithAddr(addr)))
	}
	src, err := workloadapi.NewX509Source(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("workload: workload API source: %w", err)
	}
	return src, nil
}
