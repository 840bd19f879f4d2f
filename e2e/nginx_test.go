package e2e

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"text/template"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/gateway"
)

// nginxVars fill e2e/testdata/nginx.conf.tmpl.
type nginxVars struct {
	Dir, Listen, Authorizer, App string
}

// nginxDocVars are the addresses docs/gateway.md shows.
var nginxDocVars = nginxVars{Listen: "80", Authorizer: "127.0.0.1:9191", App: "127.0.0.1:3000"}

// renderNginx renders the template; docOnly keeps the part docs/gateway.md shows.
func renderNginx(t *testing.T, v nginxVars, docOnly bool) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "nginx.conf.tmpl"))
	if err != nil {
		t.Fatal(err)
	}
	tmpl, err := template.New("nginx").Option("missingkey=error").Parse(string(raw))
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := tmpl.Execute(&b, v); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if docOnly {
		_, rest, ok1 := strings.Cut(out, "# doc:begin\n")
		part, _, ok2 := strings.Cut(rest, "# doc:end\n")
		if !ok1 || !ok2 {
			t.Fatal("nginx.conf.tmpl: doc markers missing")
		}
		return part
	}
	return out
}

// startNginx runs nginx with conf in the foreground until the test ends.
func startNginx(t *testing.T, bin, dir, conf, listen string) {
	t.Helper()
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	errLog := filepath.Join(dir, "error.log")
	var out bytes.Buffer
	cmd := exec.Command(bin, "-p", dir, "-c", path, "-e", errLog)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			b, _ := os.ReadFile(errLog)
			t.Logf("nginx error.log:\n%s", b)
		}
	})
	waitListening(t, listen, 10*time.Second, func() string {
		select {
		case <-exited:
		case <-time.After(100 * time.Millisecond):
		}
		b, _ := os.ReadFile(errLog)
		return out.String() + string(b)
	})
}

// TestNginxAuthRequest runs real nginx with auth_request against the
// gateway's external authorizer and an in-process IdP: nginx must enforce
// every decision, copy the identity headers over whatever the client sent,
// and hand 400/404/429 refusals back instead of a 500.
func TestNginxAuthRequest(t *testing.T) {
	bin := needTool(t, "GATEHOUSE_NGINX", "nginx", "/usr/sbin/nginx")
	e := sqliteEnv(t, nil)
	app := newRecordingUpstream(t)

	gc := config.Default().Gateway
	gc.AuthorizerListen = "127.0.0.1:0"
	gc.Routes = []config.GatewayRoute{
		{Name: "orders", PathPrefix: "/orders", Token: "forward",
			Auth: config.GatewayAuth{Mode: "jwt", Audience: apiAudience, ScopesAll: []string{"orders:read"}}},
		{Name: "admin", PathPrefix: "/admin", Token: "forward",
			Auth: config.GatewayAuth{Mode: "jwt", Audience: apiAudience, ScopesAll: []string{"orders:write"}}},
		{Name: "public", PathPrefix: "/public", Token: "forward", Auth: config.GatewayAuth{Mode: "anonymous"}},
		{Name: "limited", PathPrefix: "/limited", Token: "forward", Auth: config.GatewayAuth{Mode: "anonymous"},
			RateLimits: []config.GatewayRateRule{{By: "route", Rate: 1, Period: config.Duration(time.Hour), Burst: 1}}},
	}
	if _, err := gc.Validate(); err != nil {
		t.Fatal(err)
	}
	// The gateway logs into e.Logs: the tokens used below must never appear
	// there (checked when the test ends), not even the one sent in a query.
	g, err := gateway.New(gc, gateway.Deps{Issuer: e.Issuer, Log: slog.New(slog.NewJSONHandler(e.Logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	if err := g.WaitReady(t.Context()); err != nil {
		t.Fatal(err)
	}
	authz := httptest.NewServer(g.AuthorizerHandler())
	t.Cleanup(authz.Close)

	dir := t.TempDir()
	listen := freePort(t)
	conf := renderNginx(t, nginxVars{Dir: dir, Listen: listen, Authorizer: authz.Listener.Addr().String(),
		App: app.Listener.Addr().String()}, false)
	startNginx(t, bin, dir, conf, listen)
	base := "http://" + listen

	read := e.scopedToken(t, "orders:read")
	write := e.scopedToken(t, "orders:write")

	cases := []struct {
		name, path, token string
		hdr               map[string][]string // sent as is (no canonicalization)
		status            int
		route             string // "" when the app must not be reached
	}{
		{name: "no-token", path: "/orders/1", status: 401},
		{name: "bad-token", path: "/orders/1", token: read[:len(read)-4] + "AAAA", status: 401},
		{name: "wrong-scope", path: "/orders/1", token: write, status: 403},
		{name: "allowed", path: "/orders/1?x=1", token: read, status: 200, route: "orders"},
		{name: "public", path: "/public/x", status: 200, route: "public"},
		{name: "GW-01/spoofed-identity", path: "/orders/1", token: read, status: 200, route: "orders",
			hdr: map[string][]string{"X-Auth-Subject": {"admin"}, "x-auth-client": {"admin"}, "X-AUTH-ROLES": {"admin", "root"},
				"X_Auth_Tenant": {"admin"}, "X-User-Id": {"admin"}, "X-Forwarded-User": {"admin"}, "X-Auth-Route": {"admin"}}},
		{name: "GW-01/spoofed-identity-anonymous", path: "/public/x", status: 200, route: "public",
			hdr: map[string][]string{"X-Auth-Subject": {"admin"}, "X-Auth-Kind": {"user"}}},
		{name: "GW-03/dotdot", path: "/public/../admin/x", status: 401},
		{name: "GW-03/dotdot-token", path: "/public/../admin/x", token: read, status: 403},
		{name: "GW-03/encoded-dotdot", path: "/public/%2e%2e/admin/x", status: 401},
		{name: "GW-03/encoded-slash", path: "/public/..%2fadmin/x", status: 400},
		{name: "GW-03/case", path: "/ADMIN/x", status: 404},
		{name: "GW-03/double-slash", path: "//admin/x", status: 401},
		{name: "GW-03/dotdot-allowed", path: "/public/../orders/1", token: read, status: 200, route: "orders"},
		// The client describes a harmless request; nginx must overwrite it.
		{name: "GW-03/spoofed-description", path: "/admin/x", status: 401,
			hdr: map[string][]string{"X-Forwarded-Uri": {"/public/x"}, "X-Original-URI": {"/public/x"},
				"X-Forwarded-Method": {"GET"}, "X-Forwarded-Host": {"example.com"}}},
		{name: "GW-03/spoofed-uri", path: "/admin/x", status: 401, hdr: map[string][]string{"X-Forwarded-Uri": {"/public/x"}}},
		{name: "GW-03/spoofed-original-uri", path: "/admin/x", status: 401, hdr: map[string][]string{"X-Original-URI": {"/public/x"}}},
		{name: "GW-03/spoofed-method", path: "/admin/x", status: 401, hdr: map[string][]string{"X-Forwarded-Method": {"OPTIONS"}}},
		{name: "GW-04/query-token", path: "/orders/1?access_token=" + read, status: 400},
		{name: "no-route", path: "/nowhere", status: 404},
	}
	client := &http.Client{Timeout: 10 * time.Second}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			app.take()
			req, err := http.NewRequest(http.MethodGet, base+c.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range c.hdr {
				req.Header[k] = v
			}
			if c.token != "" {
				req.Header.Set("Authorization", "Bearer "+c.token)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body := readBody(t, resp)
			if resp.StatusCode != c.status {
				t.Fatalf("status %d, want %d: %.300s", resp.StatusCode, c.status, body)
			}
			if c.status == 401 && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("401 without a Bearer challenge: %q", resp.Header.Get("WWW-Authenticate"))
			}
			seen := app.take()
			if c.route == "" {
				if len(seen) != 0 {
					t.Fatalf("the app was reached: %+v", seen)
				}
				return
			}
			if len(seen) != 1 || body != "upstream" {
				t.Fatalf("the app saw %d requests (body %q)", len(seen), body)
			}
			assertNginxIdentity(t, seen[0].Header, c.route, e.Issuer, c.route == "public")
		})
	}

	t.Run("rate-limited", func(t *testing.T) {
		statuses := make([]int, 3)
		for i := range statuses {
			resp, err := client.Get(base + "/limited/x")
			if err != nil {
				t.Fatal(err)
			}
			readBody(t, resp)
			statuses[i] = resp.StatusCode
			if resp.StatusCode == 429 && resp.Header.Get("Retry-After") == "" {
				t.Errorf("429 without Retry-After")
			}
		}
		if statuses[0] != 200 || statuses[1] != 429 || statuses[2] != 429 {
			t.Fatalf("statuses %v, want [200 429 429]", statuses)
		}
	})

	if !strings.Contains(e.Logs.String(), `"route":"orders"`) {
		t.Error("the authorizer logged no decisions; the no-secrets-logged check would be vacuous")
	}

	t.Run("docs-show-this-config", func(t *testing.T) {
		doc, err := os.ReadFile(filepath.Join("..", "docs", "gateway.md"))
		if err != nil {
			t.Fatal(err)
		}
		if want := renderNginx(t, nginxDocVars, true); !strings.Contains(string(doc), want) {
			t.Fatalf("docs/gateway.md does not contain the nginx configuration the test runs; paste:\n%s", want)
		}
	})
}

// assertNginxIdentity checks the identity headers the app received: exactly
// one value each, from the decision, never the client's.
func assertNginxIdentity(t *testing.T, h http.Header, route, issuer string, anonymous bool) {
	t.Helper()
	want := map[string]string{"X-Auth-Route": route, "X-Auth-Subject": "service", "X-Auth-Client": "service",
		"X-Auth-Kind": "client", "X-Auth-Scopes": "orders:read", "X-Auth-Issuer": issuer, "X-Auth-Roles": "", "X-Auth-Tenant": "",
		"X-User-Id": "", "X-Forwarded-User": ""}
	if anonymous {
		for k := range want {
			if k != "X-Auth-Route" {
				want[k] = ""
			}
		}
	}
	for name, v := range want {
		got := identityValues(h, name)
		switch {
		case v == "" && len(got) > 0:
			t.Errorf("%s reached the app: %q", name, got)
		case v != "" && (len(got) != 1 || got[0] != v):
			t.Errorf("%s = %q, want %q", name, got, v)
		}
	}
}
