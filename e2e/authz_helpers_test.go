package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/server"
	"github.com/gatehouse/gatehouse/internal/storage"
	"github.com/gatehouse/gatehouse/sdk/authz"
)

// The authorization service's audience and the clients the authz tests
// register at the IdP.
const (
	authzAudience   = "gatehouse-authz"
	authzOpsClient  = "authz-ops"     // every authz scope: the tests' own client
	authzOrdersApp  = "demo-orders"   // the orders service, as gatehouse dev registers it
	authzGatewayApp = "authz-gateway" // the gateway's client for delegate rules
)

// authzFiles are a test's copies of gatehouse dev's policies (active and
// candidate) and relationship schema: tests rewrite them freely.
type authzFiles struct{ policies, candidate, schema string }

// copyDevAuthz copies internal/cli/devauthz into a temporary directory.
func copyDevAuthz(t *testing.T) authzFiles {
	t.Helper()
	root := filepath.Join(t.TempDir(), "authz")
	if err := os.CopyFS(root, os.DirFS(filepath.Join("..", "internal", "cli", "devauthz"))); err != nil {
		t.Fatalf("copying the dev authorization files: %v", err)
	}
	return authzFiles{policies: filepath.Join(root, "policies"), candidate: filepath.Join(root, "candidate"),
		schema: filepath.Join(root, "relations.zed")}
}

// azSetup varies the authz section of a test Gatehouse.
type azSetup struct {
	shadow    bool          // the candidate set runs in shadow
	reload    time.Duration // authz.policies.reload_interval; 0 disables
	freshness time.Duration // authz.relations.freshness; 0: 200ms
	metrics   bool          // serve the admin listener (with /metrics)
}

// azEnv is a Gatehouse with the authorization service served over HTTP.
type azEnv struct {
	*Env
	files authzFiles
	authz *httptest.Server // the authz listener
	admin string           // base URL of the admin listener (metrics), when asked
}

// authzTweak configures the authz section (and the admin listener).
func authzTweak(f authzFiles, s azSetup) func(*config.Config) {
	return func(c *config.Config) {
		a := &c.Authz
		a.Listen = "127.0.0.1:0" // served by the test's own listener
		a.PrincipalAudiences = []string{ordersAPI}
		a.DecisionTimeout = config.Duration(5 * time.Second) // a loaded CI machine under -race
		a.Policies.Dir = f.policies
		if s.shadow {
			a.Policies.ShadowDir = f.candidate
		}
		a.Policies.ReloadInterval = config.Duration(s.reload)
		a.Relations.SchemaFile = f.schema
		a.Relations.Freshness = config.Duration(200 * time.Millisecond)
		if s.freshness > 0 {
			a.Relations.Freshness = config.Duration(s.freshness)
		}
		a.Relations.Timeout = config.Duration(5 * time.Second)
		if s.metrics {
			sum := sha256.Sum256([]byte("admin-" + randB64(16)))
			c.Admin.Listen, c.Admin.TokenSHA256 = "127.0.0.1:0", hex.EncodeToString(sum[:])
		}
	}
}

// newAuthzEnv starts Gatehouse with the authorization service on driver/dsn,
// registers the authz clients, and serves the authz API (and the admin
// listener when s.metrics).
func newAuthzEnv(t *testing.T, driver, dsn string, s azSetup) *azEnv {
	t.Helper()
	f := copyDevAuthz(t)
	e := newEnv(t, driver, dsn, authzTweak(f, s))
	if e.App.Authz == nil {
		t.Fatal("authz.listen is set but the app runs no authorization service")
	}
	e.seedAuthzClients(t)
	e.waitAuthzReady(t)
	az := &azEnv{Env: e, files: f, authz: e.serveAuthz(t)}
	if s.metrics {
		az.admin = e.serveAdmin(t)
	}
	return az
}

// waitAuthzReady waits for the app's readiness checks (the authz service's
// verifier has the issuer's keys), as a load balancer would.
func (e *Env) waitAuthzReady(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var last error
		for _, c := range e.App.Checks() {
			if err := c.Fn(context.Background()); err != nil {
				last = fmt.Errorf("%s: %w", c.Name, err)
			}
		}
		if last == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Gatehouse never became ready: %v", last)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// serveAuthz serves the app's authz API on a loopback listener.
func (e *Env) serveAuthz(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(e.App.Authz.Handler())
	t.Cleanup(srv.Close)
	return srv
}

// serveAdmin runs the app's admin listener (the one serving /metrics) as
// serve does, on a free loopback port, and returns its base URL.
func (e *Env) serveAdmin(t *testing.T) string {
	t.Helper()
	bound := make(chan string, 1)
	var admin []server.Listener
	for _, l := range e.App.Listeners(func(name, addr string) {
		if name == "admin" {
			bound <- addr
		}
	}) {
		if l.Name == "admin" {
			admin = append(admin, l)
		}
	}
	if len(admin) != 1 {
		t.Fatalf("the app has %d admin listeners", len(admin))
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- server.Run(ctx, slog.New(slog.DiscardHandler), nil, admin...) }()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case addr := <-bound:
		return "http://" + addr
	case err := <-done:
		t.Fatalf("admin listener: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("the admin listener never bound")
	}
	return ""
}

// seedAuthzClients registers the clients that call the authz API.
func (e *Env) seedAuthzClients(t *testing.T) {
	t.Helper()
	now := time.Now()
	all := []string{"authz:check", "authz:write", "authz:read", "authz:audit"}
	for _, c := range []storage.Client{
		{ID: authzOpsClient, Name: "authz e2e", Scopes: all},
		{ID: authzOrdersApp, Name: "Demo orders service", Scopes: all},
		{ID: authzGatewayApp, Name: "Gateway delegate", Scopes: []string{"authz:check"}},
	} {
		s := "ghs_" + strings.NewReplacer("+", "-", "/", "_", "=", "").Replace(randB64(32))
		e.Secrets[c.ID] = s
		c.SecretHash, c.GrantTypes, c.Audiences = e.App.Secrets.Sum(s), []string{"client_credentials"}, []string{authzAudience}
		c.CreatedAt, c.UpdatedAt = now, now
		if err := e.Store.CreateClient(context.Background(), c); err != nil {
			t.Fatal(err)
		}
	}
}

// authzHTTP is an HTTP client carrying a client-credentials token of
// clientID (golang.org/x/oauth2) for the authz audience with scopes.
func (e *Env) authzHTTP(t *testing.T, clientID string, scopes ...string) *http.Client {
	t.Helper()
	cc := clientcredentials.Config{ClientID: clientID, ClientSecret: e.Secrets[clientID], TokenURL: e.Issuer + "/oauth/token",
		Scopes: scopes, EndpointParams: url.Values{"resource": {authzAudience}}, AuthStyle: oauth2.AuthStyleInHeader}
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, &http.Client{Timeout: 10 * time.Second})
	ts := cc.TokenSource(ctx)
	tok, err := ts.Token()
	if err != nil {
		t.Fatalf("client credentials for %s: %v", clientID, err)
	}
	e.remember(tok.AccessToken)
	c := oauth2.NewClient(ctx, ts)
	c.Timeout = 10 * time.Second
	return c
}

// authzToken is a client-credentials access token of clientID for the
// authz audience.
func (e *Env) authzToken(t *testing.T, clientID string, scopes ...string) string {
	t.Helper()
	cc := clientcredentials.Config{ClientID: clientID, ClientSecret: e.Secrets[clientID], TokenURL: e.Issuer + "/oauth/token",
		Scopes: scopes, EndpointParams: url.Values{"resource": {authzAudience}}, AuthStyle: oauth2.AuthStyleInHeader}
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, &http.Client{Timeout: 10 * time.Second})
	tok, err := cc.Token(ctx)
	if err != nil {
		t.Fatalf("client credentials for %s: %v", clientID, err)
	}
	e.remember(tok.AccessToken)
	return tok.AccessToken
}

// opsHTTP is the tests' client with every authz scope.
func (e *azEnv) opsHTTP(t *testing.T) *http.Client {
	t.Helper()
	return e.authzHTTP(t, authzOpsClient, "authz:check", "authz:write", "authz:read", "authz:audit")
}

// azSDK is an sdk/authz client of base (no decision cache, a timeout
// generous enough for a loaded machine).
func azSDK(t *testing.T, base string, hc *http.Client) *authz.Client {
	t.Helper()
	c, err := authz.New(authz.Config{URL: base, HTTPClient: hc, Timeout: 5 * time.Second, CacheTTL: -1})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// azReply is a decoded authz API answer.
type azReply struct {
	status int
	body   map[string]any
	raw    string
}

// azDo sends method base+path with an optional JSON body.
func azDo(t *testing.T, hc *http.Client, method, u string, body any) azReply {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	r := azReply{status: resp.StatusCode, body: map[string]any{}, raw: string(b)}
	if len(b) > 0 {
		if err := json.Unmarshal(b, &r.body); err != nil {
			t.Fatalf("%s %s: not JSON (%d): %.300s", method, u, resp.StatusCode, b)
		}
	}
	return r
}

// azCheck asks base's POST /relationships/check; rev, when set, is the
// at_least_as_fresh token.
func azCheck(t *testing.T, hc *http.Client, base, object, perm, subject, rev string) azReply {
	t.Helper()
	body := map[string]any{"object": object, "permission": perm, "subject": subject}
	if rev != "" {
		body["consistency"] = map[string]any{"at_least_as_fresh": rev}
	}
	r := azDo(t, hc, http.MethodPost, base+"/relationships/check", body)
	if r.status != http.StatusOK {
		t.Fatalf("check %s#%s@%s: %d %.300s", object, perm, subject, r.status, r.raw)
	}
	return r
}

// azDecisions reads GET /decisions with query q.
func azDecisions(t *testing.T, hc *http.Client, base string, q url.Values) []map[string]any {
	t.Helper()
	r := azDo(t, hc, http.MethodGet, base+"/decisions?"+q.Encode(), nil)
	if r.status != http.StatusOK {
		t.Fatalf("decisions: %d %.300s", r.status, r.raw)
	}
	var out []map[string]any
	list, _ := r.body["decisions"].([]any)
	for _, d := range list {
		if m, ok := d.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

// azStrs converts a JSON array of strings.
func azStrs(v any) []string {
	list, _ := v.([]any)
	out := make([]string, 0, len(list))
	for _, x := range list {
		out = append(out, str(x))
	}
	return out
}

// azMetricSum sums every sample of the named metric on the admin listener.
func azMetricSum(t *testing.T, admin, name string) float64 {
	t.Helper()
	resp, err := http.Get(admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	text := readBody(t, resp)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %d", resp.StatusCode)
	}
	sum, found := 0.0, false
	for _, line := range strings.Split(text, "\n") {
		if !strings.HasPrefix(line, name) || (len(line) > len(name) && line[len(name)] != ' ' && line[len(name)] != '{') {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", line, err)
		}
		sum, found = sum+v, true
	}
	if !found && !strings.Contains(text, "# TYPE "+name+" ") {
		t.Fatalf("%s is not exposed on /metrics", name)
	}
	return sum
}

// azWriteFile replaces path's content in one rename, as a deploy does.
func azWriteFile(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// azEventually polls cond every 20ms until it holds or within passes; it
// returns how long it took.
func azEventually(t *testing.T, within time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > within {
			t.Fatalf("%s: not within %s", what, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}
