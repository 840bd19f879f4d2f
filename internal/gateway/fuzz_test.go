package gateway

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/gateway/edge"
)

// fuzzGateway is a gateway with a fixed table and no network use: requests
// carry no token, so the JWT verifier (of an issuer nobody serves) is never
// asked.
func fuzzGateway(f *testing.F) *Gateway {
	f.Helper()
	const up = "http://127.0.0.1:9/base"
	admin := jwtRoute("admin", "/admin", up, "admin")
	svc := anonRoute("svc", "/svc", up)
	svc.StripPrefix, svc.Methods = true, []string{"GET"}
	tenant := anonRoute("tenant", "/t/acme", up)
	tenant.Hosts = []string{"*.example.com"}
	cfg := config.Default().Gateway
	cfg.Listen = "127.0.0.1:0"
	cfg.Issuers = []config.GatewayIssuer{{Issuer: "http://127.0.0.1:9"}}
	cfg.Routes = []config.GatewayRoute{admin, anonRoute("public", "/public", up), svc, tenant}
	if _, err := cfg.Validate(); err != nil {
		f.Fatal(err)
	}
	g, err := New(cfg, Deps{Issuer: "http://127.0.0.1:9"})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(g.Close)
	return g
}

// checkDecision holds the pipeline's invariants for one decided input.
func checkDecision(t *testing.T, g *Gateway, in input) {
	t.Helper()
	d, den := g.decide(context.Background(), in)
	if den != nil {
		switch den.status {
		case 400, 401, 403, 404, 405:
		default:
			t.Fatalf("decide(%q %q %q): status %d", in.method, in.host, in.path, den.status)
		}
		return
	}
	if d.route.name == "admin" || !d.route.anonymous {
		t.Fatalf("path %q reached route %s without a token", in.path, d.route.name)
	}
	norm, err := edge.NormalizePath(d.path)
	if err != nil || norm != d.path || strings.ContainsAny(d.path, ";#?\\") {
		t.Fatalf("path %q decided as %q, which is not normalized (%v)", in.path, d.path, err)
	}
	if !edge.HasPathPrefix(d.path, d.route.prefix) {
		t.Fatalf("path %q -> %q does not match prefix %q of route %s", in.path, d.path, d.route.prefix, d.route.name)
	}
	if edge.HasPathPrefix(d.path, "/admin") {
		t.Fatalf("path %q -> %q allowed under /admin", in.path, d.path)
	}
	// Deciding on the normalized path gives the same route (normalized once).
	in.path = d.path
	if d2, den2 := g.decide(context.Background(), in); den2 != nil || d2.route != d.route || d2.path != d.path {
		t.Fatalf("normalized path %q decided differently", d.path)
	}
}

func FuzzDecidePath(f *testing.F) {
	g := fuzzGateway(f)
	for _, s := range []string{
		"/", "/public", "/public/x", "/admin", "/public/../admin", "/public/%2e%2e/admin", "/public/..%2fadmin",
		"/public/%252e%252e/admin", "/svc/../admin", "/svc/a", "/public/..;/admin", "//admin", "/ADMIN", "/%61dmin",
		"/public/%c0%ae%c0%ae/admin", "/public/a%00", "/public/a\\b", "/t/acme/x", "/public/./a//b/", "/public%2f",
	} {
		f.Add("GET", "api.example.com", s)
	}
	f.Add("POST", "x.example.com", "/svc/x")
	f.Add("GET", "EXAMPLE.com.", "/t/acme")
	f.Fuzz(func(t *testing.T, method, host, path string) {
		checkDecision(t, g, input{method: method, host: host, path: path, header: http.Header{}, peer: "192.0.2.1:1234"})
	})
}

func FuzzAuthorizerInput(f *testing.F) {
	g := fuzzGateway(f)
	for _, s := range []string{
		"/public/x?a=b", "/public/../admin", "/public/%2e%2e/admin?x=1", "/admin#frag", "/public?/../admin", "//admin",
		"/public/x#", "/a?access_token=x", "http://evil/admin", "/public/%zz", "/p\x00",
	} {
		f.Add(false, s, "GET", "api.example.com")
	}
	f.Add(true, "/public/%2e%2e/admin", "GET", "api.example.com")
	f.Add(true, "/../admin", "POST", "a.example.com")
	f.Add(true, "?#", "0", "0")
	f.Fuzz(func(t *testing.T, envoy bool, uri, method, host string) {
		r := &http.Request{Method: "GET", Host: "authz.local", Header: http.Header{}, RemoteAddr: "127.0.0.1:5555",
			URL: &url.URL{Path: ForwardAuthPath}}
		if envoy {
			u, err := url.ParseRequestURI(EnvoyPrefix + uri)
			if err != nil {
				return
			}
			r.Method, r.Host, r.URL = method, host, u
		} else {
			r.Header["X-Forwarded-Uri"] = []string{uri}
			r.Header["X-Forwarded-Method"] = []string{method}
			r.Header["X-Forwarded-Host"] = []string{host}
		}
		in, ok := authorizerInput(r)
		if !ok {
			return
		}
		if in.path != "" {
			if in.path[0] != '/' || strings.ContainsAny(in.path, "?#") {
				t.Fatalf("uri %q gave path %q", uri, in.path)
			}
			if !envoy && strings.Contains(uri, "#") {
				t.Fatalf("uri %q with a fragment gave path %q", uri, in.path)
			}
		}
		// Envoy strips fragments itself; a forward-auth URI with one is refused.
		if !envoy && in.path != "" && strings.Contains(in.rawQuery, "#") {
			t.Fatalf("uri %q gave query %q", uri, in.rawQuery)
		}
		checkDecision(t, g, in)
	})
}
