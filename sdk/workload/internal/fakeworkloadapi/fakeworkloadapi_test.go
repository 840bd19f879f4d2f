package fakeworkloadapi

import (
	"context"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/proto/spiffe/workload"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

func TestSecurityHeaderRequired(t *testing.T) {
	s, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	conn, err := grpc.NewClient(s.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	client := workload.NewSpiffeWorkloadAPIClient(conn)
	tests := []struct {
		name string
		md   metadata.MD
	}{
		{"missing", nil},
		{"false", metadata.Pairs("workload.spiffe.io", "false")},
		{"twice", metadata.Pairs("workload.spiffe.io", "true", "workload.spiffe.io", "true")},
	}
	for _, tc := range tests {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if tc.md != nil {
			ctx = metadata.NewOutgoingContext(ctx, tc.md)
		}
		stream, err := client.FetchX509SVID(ctx, &workload.X509SVIDRequest{})
		if err == nil {
			_, err = stream.Recv()
		}
		cancel()
		if status.Code(err) != codes.InvalidArgument {
			t.Errorf("%s: %v, want InvalidArgument", tc.name, err)
		}
	}
	if err := s.SetX509(Update{}); err == nil {
		t.Error("empty update accepted")
	}
}
