// Package grpcauth protects gRPC services with Gatehouse access tokens and
// attaches tokens to outgoing gRPC calls.
//
// On the server, UnaryServerInterceptor and StreamServerInterceptor read the
// "authorization: Bearer <token>" metadata, verify the token with an
// auth.Authenticator (auth.Verifier or auth.Introspector), check an
// auth.Rule, and put the claims in the handler's context, where
// auth.ClaimsFromContext finds them:
//
//	v, _ := auth.NewVerifier(auth.VerifierConfig{...})
//	srv := grpc.NewServer(
//		grpc.UnaryInterceptor(grpcauth.UnaryServerInterceptor(v, auth.RequireScopes("orders:read"))),
//		grpc.StreamInterceptor(grpcauth.StreamServerInterceptor(v, auth.RequireScopes("orders:read"))),
//	)
//
// Both interceptors fail closed: no token or an invalid token gives
// codes.Unauthenticated; an authenticator that cannot decide
// (auth.ErrUnavailable: keys not loaded yet, introspection endpoint down)
// gives codes.Unavailable, like the HTTP middleware's 503; a token the rule
// refuses gives codes.PermissionDenied. Status messages never contain token
// content.
//
// On the client, PropagateCredentials forwards the caller's token found in
// the outgoing call's context (a service calling another on its caller's
// behalf) and ServiceCredentials sends the service's own token (client
// credentials, see auth.NewClientCredentials). Both require transport
// security unless AllowInsecureTransport is given.
package grpcauth

import (
	"context"
	"errors"
	"net/http"

	"golang.org/x/oauth2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/gatehouse/gatehouse/sdk/auth"
)

// maxTokenLen caps the tokens the interceptors hand to the authenticator.
const maxTokenLen = 16 << 10

// UnaryServerInterceptor authenticates every unary call with a and
// authorizes it with rule, then calls the handler with the claims in its
// context. a and rule are required: nil panics at construction (a server
// without a rule must not start).
func UnaryServerInterceptor(a auth.Authenticator, rule auth.Rule) grpc.UnaryServerInterceptor {
	mustConfig(a, rule, "UnaryServerInterceptor")
	return func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		ctx, err := authorize(ctx, a, rule)
		if err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}
}

// StreamServerInterceptor authenticates and authorizes every stream once,
// when it opens; the handler's stream Context() carries the claims. a and
// rule are required: nil panics at construction.
func StreamServerInterceptor(a auth.Authenticator, rule auth.Rule) grpc.StreamServerInterceptor {
	mustConfig(a, rule, "StreamServerInterceptor")
	return func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		ctx, err := authorize(ss.Context(), a, rule)
		if err != nil {
			return err
		}
		return handler(srv, &claimsStream{ServerStream: ss, ctx: ctx})
	}
}

func mustConfig(a auth.Authenticator, rule auth.Rule, name string) {
	if a == nil {
		panic("grpcauth: " + name + " needs an auth.Authenticator (got nil)")
	}
	if rule == nil {
		panic("grpcauth: " + name + " needs an auth.Rule (got nil); use auth.AnyAuthenticated() to allow every valid token")
	}
}

// claimsStream is a ServerStream whose Context carries the claims.
type claimsStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *claimsStream) Context() context.Context { return s.ctx }

// authorize returns ctx with the caller's claims, or a status error.
func authorize(ctx context.Context, a auth.Authenticator, rule auth.Rule) (context.Context, error) {
	tok, err := bearerFromMetadata(ctx)
	if err != nil {
		return nil, err
	}
	c, err := a.Authenticate(ctx, tok)
	switch {
	case errors.Is(err, auth.ErrUnavailable):
		return nil, status.Error(codes.Unavailable, "authentication unavailable")
	case err != nil || c == nil:
		// The same answer for every reason the token was refused.
		return nil, status.Error(codes.Unauthenticated, "invalid bearer token")
	}
	if err := rule.Check(c); err != nil {
		var fe *auth.ForbiddenError
		if errors.As(err, &fe) {
			// The reason of a ForbiddenError is public by contract.
			return nil, status.Error(codes.PermissionDenied, fe.Error())
		}
		return nil, status.Error(codes.PermissionDenied, "permission denied")
	}
	return auth.ContextWithClaims(ctx, c), nil
}

// bearerFromMetadata returns the token of the single "authorization:
// Bearer <token>" metadata value, parsed by the same rules as the HTTP
// middleware (auth.BearerToken).
func bearerFromMetadata(ctx context.Context) (string, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	vals := md.Get("authorization")
	switch len(vals) {
	case 0:
		return "", status.Error(codes.Unauthenticated, "missing bearer token")
	case 1:
	default:
		return "", status.Error(codes.Unauthenticated, "more than one authorization value")
	}
	tok, err := auth.BearerToken(http.Header{"Authorization": vals})
	switch {
	case errors.Is(err, auth.ErrNoToken):
		return "", status.Error(codes.Unauthenticated, "authorization is not a bearer token")
	case err != nil || len(tok) > maxTokenLen:
		return "", status.Error(codes.Unauthenticated, "invalid bearer token")
	}
	return tok, nil
}

// validToken reports whether tok may be put in an authorization value.
func validToken(tok string) bool {
	got, err := auth.BearerToken(http.Header{"Authorization": {"Bearer " + tok}})
	return err == nil && got == tok
}

// Option configures PropagateCredentials and ServiceCredentials.
type Option func(*options)

type options struct {
	insecure bool
}

// AllowInsecureTransport lets the credentials be sent over connections
// without transport security. Use it only for loopback tests and demos:
// otherwise RequireTransportSecurity is true and gRPC refuses to send the
// token over a plaintext connection.
func AllowInsecureTransport() Option { return func(o *options) { o.insecure = true } }

func buildOptions(opts []Option) options {
	var o options
	for _, f := range opts {
		if f != nil {
			f(&o)
		}
	}
	return o
}

// PropagateCredentials returns per-RPC credentials that forward the
// caller's access token: "authorization: Bearer <token>" from
// auth.ClaimsFromContext of the outgoing call's context. Make the call with
// the context of the incoming request. A call whose context has no claims
// (or no token) fails with codes.Unauthenticated before anything is sent
// (fail closed). Install it on a connection to the services that may
// receive the token:
//
//	conn, _ := grpc.NewClient(target, grpc.WithTransportCredentials(tlsCreds),
//		grpc.WithPerRPCCredentials(grpcauth.PropagateCredentials()))
func PropagateCredentials(opts ...Option) credentials.PerRPCCredentials {
	return &perRPC{opts: buildOptions(opts), token: func(ctx context.Context) (string, error) {
		c, ok := auth.ClaimsFromContext(ctx)
		if !ok || c.Token == "" {
			return "", &credsError{code: codes.Unauthenticated, msg: "grpcauth: no caller token in the call's context to propagate", err: auth.ErrNoToken}
		}
		return c.Token, nil
	}}
}

// ServiceCredentials returns per-RPC credentials that send the service's
// own token from ts (usually auth.NewClientCredentials). ts is required: nil
// panics. When ts fails, the call fails with codes.Unavailable before
// anything is sent.
func ServiceCredentials(ts oauth2.TokenSource, opts ...Option) credentials.PerRPCCredentials {
	if ts == nil {
		panic("grpcauth: ServiceCredentials needs an oauth2.TokenSource (got nil)")
	}
	return &perRPC{opts: buildOptions(opts), token: func(context.Context) (string, error) {
		t, err := ts.Token()
		if err != nil {
			return "", &credsError{code: codes.Unavailable, msg: "grpcauth: service token unavailable", err: err}
		}
		if t == nil || t.AccessToken == "" {
			return "", &credsError{code: codes.Unavailable, msg: "grpcauth: service token unavailable", err: auth.ErrUnavailable}
		}
		return t.AccessToken, nil
	}}
}

type perRPC struct {
	opts  options
	token func(context.Context) (string, error)
}

// GetRequestMetadata implements credentials.PerRPCCredentials.
func (p *perRPC) GetRequestMetadata(ctx context.Context, _ ...string) (map[string]string, error) {
	tok, err := p.token(ctx)
	if err != nil {
		return nil, err
	}
	if !validToken(tok) {
		// Never put something that is not a token into a header.
		return nil, &credsError{code: codes.Unauthenticated, msg: "grpcauth: token is not a valid bearer token", err: auth.ErrInvalidToken}
	}
	return map[string]string{"authorization": "Bearer " + tok}, nil
}

// RequireTransportSecurity implements credentials.PerRPCCredentials.
func (p *perRPC) RequireTransportSecurity() bool { return !p.opts.insecure }

// credsError is an error with a gRPC status (so the call fails with code,
// not Unavailable-by-default) that still wraps its cause for errors.Is.
type credsError struct {
	code codes.Code
	msg  string
	err  error
}

func (e *credsError) Error() string              { return e.msg + ": " + e.err.Error() }
func (e *credsError) Unwrap() error              { return e.err }
func (e *credsError) GRPCStatus() *status.Status { return status.New(e.code, e.msg) }
