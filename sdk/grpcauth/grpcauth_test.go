package grpcauth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	"github.com/gatehouse/gatehouse/sdk/auth"
)

// fakeAuthenticator knows a fixed set of tokens.
type fakeAuthenticator struct {
	tokens map[string]*auth.Claims
	calls  atomic.Int64
}

func (f *fakeAuthenticator) Authenticate(_ context.Context, tok string) (*auth.Claims, error) {
	f.calls.Add(1)
	if tok == "down" {
		return nil, fmt.Errorf("%w: idp unreachable", auth.ErrUnavailable)
	}
	if c, ok := f.tokens[tok]; ok {
		return c, nil
	}
	return nil, fmt.Errorf("%w: unknown token", auth.ErrInvalidToken)
}

func newFakeAuthenticator() *fakeAuthenticator {
	return &fakeAuthenticator{tokens: map[string]*auth.Claims{
		"good":     {Subject: "alice", ClientID: "web", Scopes: []string{"health:read"}, Token: "good"},
		"noscope":  {Subject: "bob", ClientID: "web", Token: "noscope"},
		"svc-tok":  {Subject: "svc", ClientID: "svc", Scopes: []string{"health:read"}, Token: "svc-tok"},
		"pad+/==":  {Subject: "pad", Scopes: []string{"health:read"}, Token: "pad+/=="},
		"nilclaim": nil,
	}}
}

// testServer is a gRPC health server behind the interceptors, on bufconn.
// It records the subject the handler's context carries.
type testServer struct {
	lis      *bufconn.Listener
	mu       sync.Mutex
	subjects []string
}

func (s *testServer) record(ctx context.Context) {
	sub := "<none>"
	if c, ok := auth.ClaimsFromContext(ctx); ok {
		sub = c.Subject
	}
	s.mu.Lock()
	s.subjects = append(s.subjects, sub)
	s.mu.Unlock()
}

func (s *testServer) seen() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.subjects...)
}

func startServer(t testing.TB, a auth.Authenticator, rule auth.Rule) *testServer {
	t.Helper()
	ts := &testServer{lis: bufconn.Listen(1 << 20)}
	srv := grpc.NewServer(
		grpc.ChainUnaryInterceptor(UnaryServerInterceptor(a, rule),
			func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
				ts.record(ctx)
				return h(ctx, req)
			}),
		grpc.ChainStreamInterceptor(StreamServerInterceptor(a, rule),
			func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
				ts.record(ss.Context())
				return h(srv, ss)
			}),
	)
	hs := health.NewServer()
	healthpb.RegisterHealthServer(srv, hs)
	go func() { _ = srv.Serve(ts.lis) }()
	t.Cleanup(srv.Stop)
	return ts
}

func (s *testServer) dial(t testing.TB, opts ...grpc.DialOption) healthpb.HealthClient {
	t.Helper()
	opts = append([]grpc.DialOption{
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return s.lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
	}, opts...)
	conn, err := grpc.NewClient("passthrough:///bufnet", opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return healthpb.NewHealthClient(conn)
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestInterceptors(t *testing.T) {
	a := newFakeAuthenticator()
	srv := startServer(t, a, auth.RequireScopes("health:read"))
	client := srv.dial(t)
	cases := []struct {
		name string
		md   []string // authorization values
		code codes.Code
		msg  string
	}{
		{"valid", []string{"Bearer good"}, codes.OK, ""},
		{"scheme-case-insensitive", []string{"bEARER good"}, codes.OK, ""},
		{"padding", []string{"Bearer pad+/=="}, codes.OK, ""},
		{"missing", nil, codes.Unauthenticated, "missing bearer token"},
		{"GW-04/two-values", []string{"Bearer good", "Bearer good"}, codes.Unauthenticated, ""},
		{"basic-scheme", []string{"Basic Z29vZDo="}, codes.Unauthenticated, ""},
		{"no-token", []string{"Bearer"}, codes.Unauthenticated, ""},
		{"empty-token", []string{"Bearer "}, codes.Unauthenticated, ""},
		{"double-space", []string{"Bearer  good"}, codes.Unauthenticated, ""},
		{"trailing-space", []string{"Bearer good "}, codes.Unauthenticated, ""},
		{"JWT-E01/space-inside", []string{"Bearer go od"}, codes.Unauthenticated, ""},
		{"padding-only", []string{"Bearer =="}, codes.Unauthenticated, ""},
		{"padding-in-middle", []string{"Bearer go=od"}, codes.Unauthenticated, ""},
		{"JWT-D01/unknown-token", []string{"Bearer s3cretbad.tok.en"}, codes.Unauthenticated, "invalid bearer token"},
		{"JWT-F01/huge-token", []string{"Bearer " + strings.Repeat("a", maxTokenLen+1)}, codes.Unauthenticated, "invalid bearer token"},
		{"RL-02/authenticator-unavailable", []string{"Bearer down"}, codes.Unavailable, "authentication unavailable"},
		{"AZ-01/nil-claims-without-error", []string{"Bearer nilclaim"}, codes.Unauthenticated, ""},
		{"rule-refuses", []string{"Bearer noscope"}, codes.PermissionDenied, "health:read"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := len(srv.seen())
			ctx := testCtx(t)
			for _, v := range tc.md {
				ctx = metadata.AppendToOutgoingContext(ctx, "authorization", v)
			}
			// Unary.
			_, err := client.Check(ctx, &healthpb.HealthCheckRequest{})
			checkStatus(t, "Check", err, tc.code, tc.msg)
			// Server streaming.
			stream, err := client.Watch(ctx, &healthpb.HealthCheckRequest{})
			if err == nil {
				var resp *healthpb.HealthCheckResponse
				resp, err = stream.Recv()
				if err == nil && resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
					t.Fatalf("Watch: %v", resp)
				}
			}
			checkStatus(t, "Watch", err, tc.code, tc.msg)
			seen := srv.seen()[before:]
			if tc.code == codes.OK {
				if len(seen) != 2 || seen[0] == "<none>" || seen[0] != seen[1] {
					t.Fatalf("handler contexts carried %q", seen)
				}
			} else if len(seen) != 0 {
				t.Fatalf("refused calls reached the handler: %q", seen)
			}
		})
	}
}

func checkStatus(t *testing.T, call string, err error, code codes.Code, msg string) {
	t.Helper()
	st, _ := status.FromError(err)
	if st.Code() != code {
		t.Fatalf("%s: code %v (%v), want %v", call, st.Code(), err, code)
	}
	if !strings.Contains(st.Message(), msg) {
		t.Fatalf("%s: message %q, want it to contain %q", call, st.Message(), msg)
	}
	for _, secret := range []string{"s3cret", "good", "aaaa"} {
		if strings.Contains(st.Message(), secret) {
			t.Fatalf("%s: status message echoes token content: %q", call, st.Message())
		}
	}
}

func TestInterceptorsRequireConfig(t *testing.T) {
	cases := map[string]func(){
		"unary-nil-authenticator":  func() { UnaryServerInterceptor(nil, auth.AnyAuthenticated()) },
		"unary-nil-rule":           func() { UnaryServerInterceptor(newFakeAuthenticator(), nil) },
		"stream-nil-authenticator": func() { StreamServerInterceptor(nil, auth.AnyAuthenticated()) },
		"stream-nil-rule":          func() { StreamServerInterceptor(newFakeAuthenticator(), nil) },
		"service-nil-token-source": func() { ServiceCredentials(nil) },
	}
	for name, f := range cases {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), "grpcauth:") {
					t.Fatalf("recovered %v, want a grpcauth panic", r)
				}
			}()
			f()
		})
	}
}

func TestCredentialsRequireTransportSecurity(t *testing.T) {
	if !PropagateCredentials().RequireTransportSecurity() || !ServiceCredentials(staticTS{}).RequireTransportSecurity() {
		t.Fatal("transport security not required by default")
	}
	if PropagateCredentials(AllowInsecureTransport()).RequireTransportSecurity() {
		t.Fatal("AllowInsecureTransport ignored")
	}
	// gRPC refuses to use such credentials over a plaintext connection.
	_, err := grpc.NewClient("passthrough:///x", grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(PropagateCredentials()))
	if err == nil {
		t.Fatal("credentials accepted over an insecure connection")
	}
}

func TestPropagateCredentialsMetadata(t *testing.T) {
	p := PropagateCredentials()
	ctx := auth.ContextWithClaims(context.Background(), &auth.Claims{Subject: "alice", Token: "abc.def"})
	md, err := p.GetRequestMetadata(ctx, "https://svc.example/pkg.Service")
	if err != nil || len(md) != 1 || md["authorization"] != "Bearer abc.def" {
		t.Fatalf("got %v, %v", md, err)
	}
	for name, ctx := range map[string]context.Context{
		"no-claims":   context.Background(),
		"nil-claims":  auth.ContextWithClaims(context.Background(), nil),
		"empty-token": auth.ContextWithClaims(context.Background(), &auth.Claims{Subject: "a"}),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := p.GetRequestMetadata(ctx)
			if !errors.Is(err, auth.ErrNoToken) || status.Code(err) != codes.Unauthenticated {
				t.Fatalf("got %v (code %v)", err, status.Code(err))
			}
		})
	}
	t.Run("header-injection", func(t *testing.T) {
		ctx := auth.ContextWithClaims(context.Background(), &auth.Claims{Token: "abc\r\nx-admin: 1"})
		if _, err := p.GetRequestMetadata(ctx); !errors.Is(err, auth.ErrInvalidToken) {
			t.Fatalf("got %v", err)
		}
	})
}

// TestPropagationHTTPToGRPC follows a caller's token from an incoming HTTP
// request, through PropagateCredentials, to a second (gRPC) service.
func TestPropagationHTTPToGRPC(t *testing.T) {
	downstreamAuth := newFakeAuthenticator()
	downstream := startServer(t, downstreamAuth, auth.RequireScopes("health:read"))
	client := downstream.dial(t, grpc.WithPerRPCCredentials(PropagateCredentials(AllowInsecureTransport())))
	frontAuth := newFakeAuthenticator()
	// The front service: a plain handler that authenticates like the HTTP
	// middleware does and calls the downstream service with r.Context().
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
			c, err := frontAuth.Authenticate(ctx, tok)
			if err != nil {
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
			ctx = auth.ContextWithClaims(ctx, c)
		}
		_, err := client.Check(ctx, &healthpb.HealthCheckRequest{})
		_, _ = io.WriteString(w, status.Code(err).String())
	}))
	t.Cleanup(front.Close)
	get := func(authz string) string {
		req, _ := http.NewRequestWithContext(testCtx(t), http.MethodGet, front.URL, nil)
		if authz != "" {
			req.Header.Set("Authorization", authz)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	if got := get("Bearer good"); got != "OK" {
		t.Fatalf("propagated call: %s", got)
	}
	if got := downstream.seen(); len(got) != 1 || got[0] != "alice" {
		t.Fatalf("downstream handler saw %q", got)
	}
	// The downstream service applies its own rule to the caller's token.
	if got := get("Bearer noscope"); got != "PermissionDenied" {
		t.Fatalf("propagated call with insufficient scope: %s", got)
	}
	// No caller claims: the call fails on the client, nothing is sent.
	callsBefore := downstreamAuth.calls.Load()
	if got := get(""); got != "Unauthenticated" {
		t.Fatalf("call without caller token: %s", got)
	}
	if downstreamAuth.calls.Load() != callsBefore {
		t.Fatal("a call without a caller token reached the downstream service")
	}
}

// staticTS is a fake oauth2.TokenSource.
type staticTS struct {
	tok string
	err error
}

func (s staticTS) Token() (*oauth2.Token, error) {
	if s.err != nil {
		return nil, s.err
	}
	return &oauth2.Token{AccessToken: s.tok, TokenType: "Bearer"}, nil
}

func TestServiceCredentials(t *testing.T) {
	a := newFakeAuthenticator()
	srv := startServer(t, a, auth.AnyAuthenticated())
	ok := srv.dial(t, grpc.WithPerRPCCredentials(ServiceCredentials(staticTS{tok: "svc-tok"}, AllowInsecureTransport())))
	if _, err := ok.Check(testCtx(t), &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatal(err)
	}
	if got := srv.seen(); len(got) != 1 || got[0] != "svc" {
		t.Fatalf("handler saw %q", got)
	}
	before := a.calls.Load()
	for name, ts := range map[string]staticTS{"error": {err: errors.New("idp down")}, "empty": {}} {
		t.Run(name, func(t *testing.T) {
			c := srv.dial(t, grpc.WithPerRPCCredentials(ServiceCredentials(ts, AllowInsecureTransport())))
			_, err := c.Check(testCtx(t), &healthpb.HealthCheckRequest{})
			if status.Code(err) != codes.Unavailable {
				t.Fatalf("got %v", err)
			}
		})
	}
	if a.calls.Load() != before {
		t.Fatal("a call without a service token reached the server")
	}
}

// FuzzBearerFromMetadata checks that any accepted authorization value is
// "Bearer" (any case), one space, and a token68 returned unchanged.
func FuzzBearerFromMetadata(f *testing.F) {
	for _, s := range []string{"Bearer abc", "bearer a.b.c", "Bearer ", "Bearer  x", "Basic x", "Bearer a=b", "Bearer ab==", "BEARER\tx"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		ctx := metadata.NewIncomingContext(context.Background(), metadata.MD{"authorization": {v}})
		tok, err := bearerFromMetadata(ctx)
		if err != nil {
			if status.Code(err) != codes.Unauthenticated || (tok != "" && strings.Contains(err.Error(), tok)) {
				t.Fatalf("error %v", err)
			}
			return
		}
		if !strings.EqualFold(v[:7], "bearer ") || v[7:] != tok || strings.ContainsAny(tok, " \t\r\n") || strings.ContainsAny(tok, "\",\\") || strings.Trim(tok, "=") == "" {
			t.Fatalf("accepted %q as %q", v, tok)
		}
	})
}
