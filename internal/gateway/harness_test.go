package gateway

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/ratelimit"
	"github.com/gatehouse/gatehouse/internal/testutil/syncbuf"
)

// testAudience is the API audience most test routes require.
const testAudience = "https://api.test.example"

// testIssuer is a fake IdP: discovery, a JWKS with one ES256 key, and a
// minting function for access tokens.
type testIssuer struct {
	URL    string
	key    *ecdsa.PrivateKey
	kid    string
	signer jose.Signer
	srv    *httptest.Server
}

func newTestIssuer(t testing.TB) *testIssuer {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	is := &testIssuer{key: k, kid: "test-key-1"}
	mux := http.NewServeMux()
	is.srv = httptest.NewServer(mux)
	t.Cleanup(is.srv.Close)
	is.URL = is.srv.URL
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]string{"issuer": is.URL, "jwks_uri": is.URL + "/jwks"})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, _ *http.Request) {
		set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &k.PublicKey, KeyID: is.kid, Algorithm: "ES256", Use: "sig"}}}
		w.Header().Set("Cache-Control", "max-age=300")
		_ = json.NewEncoder(w).Encode(set)
	})
	is.signer, err = jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: k},
		(&jose.SignerOptions{}).WithType("at+jwt").WithHeader("kid", is.kid))
	if err != nil {
		t.Fatal(err)
	}
	return is
}

// mint signs claims as an access token. Missing iss, aud, exp, iat and jti
// get sensible defaults; a claim set to nil is removed.
func (is *testIssuer) mint(t testing.TB, claims map[string]any) string {
	t.Helper()
	c := map[string]any{"iss": is.URL, "aud": testAudience, "sub": "usr_alice", "client_id": "web",
		"exp": time.Now().Add(5 * time.Minute).Unix(), "iat": time.Now().Unix(), "jti": randomID()}
	for k, v := range claims {
		if v == nil {
			delete(c, k)
			continue
		}
		c[k] = v
	}
	payload, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := is.signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	s, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// user mints an end-user token for testAudience with the given scopes.
func (is *testIssuer) user(t *testing.T, sub string, scopes ...string) string {
	return is.mint(t, map[string]any{"sub": sub, "scope": strings.Join(scopes, " ")})
}

func randomID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return strings.TrimRight(strings.NewReplacer("+", "-", "/", "_").Replace(string(b)), "=") + time.Now().Format("150405.000000000")
}

// echoed is what the echo upstream saw.
type echoed struct {
	Method  string      `json:"method"`
	Path    string      `json:"path"`
	RawPath string      `json:"raw_path"`
	Query   string      `json:"query"`
	Host    string      `json:"host"`
	Header  http.Header `json:"header"`
	Body    string      `json:"body"`
}

// newEcho starts an upstream that answers 200 with what it received.
func newEcho(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(echoed{Method: r.Method, Path: r.URL.Path, RawPath: r.URL.EscapedPath(),
			Query: r.URL.RawQuery, Host: r.Host, Header: r.Header, Body: string(body)})
	}))
	t.Cleanup(srv.Close)
	return srv
}

// testGateway is a running gateway: the proxy and the authorizer.
type testGateway struct {
	G          *Gateway
	Proxy      *httptest.Server
	Authorizer *httptest.Server
	Logs       *syncbuf.Buffer
}

// gatewayConfig returns a gateway section trusting is, with routes.
func gatewayConfig(is *testIssuer, routes ...config.GatewayRoute) config.GatewayConfig {
	c := config.Default().Gateway
	c.Listen, c.AuthorizerListen = "127.0.0.1:0", "127.0.0.1:0"
	c.Issuers = []config.GatewayIssuer{{Issuer: is.URL}}
	c.Routes = routes
	return c
}

// jwtRoute is a JWT route for testAudience to upstream.
func jwtRoute(name, prefix, upstream string, scopes ...string) config.GatewayRoute {
	return config.GatewayRoute{Name: name, PathPrefix: prefix, Upstreams: []string{upstream}, Token: "strip",
		Auth: config.GatewayAuth{Mode: "jwt", Audience: testAudience, ScopesAll: scopes}}
}

// startGateway validates cfg as the config package would, builds the
// gateway and serves it. shared may be nil.
func startGateway(t testing.TB, is *testIssuer, cfg config.GatewayConfig, shared *ratelimit.Shared) *testGateway {
	t.Helper()
	if _, err := cfg.Validate(); err != nil {
		t.Fatalf("gateway config does not validate: %v", err)
	}
	logs := &syncbuf.Buffer{}
	g, err := New(cfg, Deps{Issuer: is.URL, Shared: shared, Log: slog.New(slog.NewJSONHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	ctxT, cancel := testContext(t, 5*time.Second)
	defer cancel()
	if err := g.WaitReady(ctxT); err != nil {
		t.Fatalf("gateway keys: %v", err)
	}
	tg := &testGateway{G: g, Proxy: httptest.NewServer(g), Authorizer: httptest.NewServer(g.AuthorizerHandler()), Logs: logs}
	t.Cleanup(tg.Proxy.Close)
	t.Cleanup(tg.Authorizer.Close)
	return tg
}

// do sends a request to the proxy with an optional bearer token.
func (tg *testGateway) do(t *testing.T, method, path, token string, header http.Header) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, tg.Proxy.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range header {
		req.Header[k] = append(req.Header[k], vs...)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// seen decodes the echo upstream's answer.
func seen(t *testing.T, body string) echoed {
	t.Helper()
	var e echoed
	if err := json.Unmarshal([]byte(body), &e); err != nil {
		t.Fatalf("not an echo answer: %v: %s", err, body)
	}
	return e
}

func testContext(t testing.TB, d time.Duration) (context.Context, context.CancelFunc) {
	t.Helper()
	return context.WithTimeout(t.Context(), d)
}

// countingIssuer is a testIssuer whose JWKS endpoint counts its requests
// (JWT-B05: unknown kids must not cause one fetch per request).
type countingIssuer struct {
	*testIssuer
	mu   sync.Mutex
	hits int
}

// newCountingIssuer starts a fake IdP like newTestIssuer that also counts
// JWKS requests.
func newCountingIssuer(t *testing.T) *countingIssuer {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ci := &countingIssuer{testIssuer: &testIssuer{key: k, kid: "test-key-1"}}
	is := ci.testIssuer
	mux := http.NewServeMux()
	is.srv = httptest.NewServer(mux)
	t.Cleanup(is.srv.Close)
	is.URL = is.srv.URL
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]string{"issuer": is.URL, "jwks_uri": is.URL + "/jwks"})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, _ *http.Request) {
		ci.mu.Lock()
		ci.hits++
		ci.mu.Unlock()
		set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &k.PublicKey, KeyID: is.kid, Algorithm: "ES256", Use: "sig"}}}
		w.Header().Set("Cache-Control", "max-age=300")
		_ = json.NewEncoder(w).Encode(set)
	})
	is.signer, err = jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: k},
		(&jose.SignerOptions{}).WithType("at+jwt").WithHeader("kid", is.kid))
	if err != nil {
		t.Fatal(err)
	}
	return ci
}

// jwksHits is how many JWKS requests the issuer has served.
func (ci *countingIssuer) jwksHits() int {
	ci.mu.Lock()
	defer ci.mu.Unlock()
	return ci.hits
}

// newCountingEcho starts an echo upstream (as newEcho) and returns a
// function reporting how many requests it has received.
func newCountingEcho(t *testing.T) (*httptest.Server, func() int) {
	t.Helper()
	var mu sync.Mutex
	n := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		n++
		mu.Unlock()
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(echoed{Method: r.Method, Path: r.URL.Path, RawPath: r.URL.EscapedPath(),
			Query: r.URL.RawQuery, Host: r.Host, Header: r.Header, Body: string(body)})
	}))
	t.Cleanup(srv.Close)
	return srv, func() int {
		mu.Lock()
		defer mu.Unlock()
		return n
	}
}

// send sends req (built by the test, any Host or header) to the proxy and
// returns the answer with its body read.
func (tg *testGateway) send(t *testing.T, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := tg.Proxy.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// anonRoute is an anonymous route to upstream.
func anonRoute(name, prefix, upstream string) config.GatewayRoute {
	return config.GatewayRoute{Name: name, PathPrefix: prefix, Upstreams: []string{upstream}, Token: "strip",
		Auth: config.GatewayAuth{Mode: "anonymous"}}
}

// newReq builds a request to the proxy with a Host header and headers.
func newReq(t *testing.T, tg *testGateway, method, host, path string, h http.Header) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, tg.Proxy.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	for k, vs := range h {
		req.Header[k] = vs
	}
	return req
}
