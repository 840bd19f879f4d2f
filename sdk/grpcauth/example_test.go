package grpcauth_test

import (
	"context"
	"fmt"
	"net"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	"github.com/gatehouse/gatehouse/sdk/auth"
	"github.com/gatehouse/gatehouse/sdk/grpcauth"
)

// exampleAuthenticator stands in for auth.NewVerifier or
// auth.NewIntrospector.
type exampleAuthenticator map[string]*auth.Claims

func (a exampleAuthenticator) Authenticate(_ context.Context, tok string) (*auth.Claims, error) {
	if c, ok := a[tok]; ok {
		return c, nil
	}
	return nil, auth.ErrInvalidToken
}

// A gRPC server that requires the "health:read" scope, and a client that
// forwards its caller's token.
func Example() {
	authn := exampleAuthenticator{
		"alice-token": {Subject: "alice", Scopes: []string{"health:read"}, Token: "alice-token"},
		"bob-token":   {Subject: "bob", Token: "bob-token"},
	}
	rule := auth.RequireScopes("health:read")
	srv := grpc.NewServer(
		grpc.UnaryInterceptor(grpcauth.UnaryServerInterceptor(authn, rule)),
		grpc.StreamInterceptor(grpcauth.StreamServerInterceptor(authn, rule)),
	)
	healthpb.RegisterHealthServer(srv, health.NewServer())
	lis := bufconn.Listen(1 << 20)
	go func() { _ = srv.Serve(lis) }()
	defer srv.Stop()

	// In production: grpc.WithTransportCredentials(credentials.NewTLS(...))
	// and no AllowInsecureTransport.
	conn, err := grpc.NewClient("passthrough:///health",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(grpcauth.PropagateCredentials(grpcauth.AllowInsecureTransport())),
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer conn.Close()
	client := healthpb.NewHealthClient(conn)

	// In a handler, ctx is the incoming request's context, which the auth
	// middleware filled with the caller's claims.
	for _, caller := range []string{"alice-token", "bob-token", ""} {
		ctx := context.Background()
		if c, ok := authn[caller]; ok {
			ctx = auth.ContextWithClaims(ctx, c)
		}
		_, err := client.Check(ctx, &healthpb.HealthCheckRequest{})
		fmt.Printf("%q: %v\n", caller, status.Code(err))
	}
	// Output:
	// "alice-token": OK
	// "bob-token": PermissionDenied
	// "": Unauthenticated
}
