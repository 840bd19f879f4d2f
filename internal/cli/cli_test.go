package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/testutil/syncbuf"
)

func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Main(args, strings.NewReader(""), &out, &errb, []string{"PATH=/usr/bin"})
	return code, out.String(), errb.String()
}

func TestVersion(t *testing.T) {
	if code, out, _ := run(t, "version"); code != 0 || !strings.HasPrefix(out, "gatehouse ") {
		t.Fatalf("%d %q", code, out)
	}
}

func TestConfigValidateReportsEveryError(t *testing.T) {
	p := filepath.Join(t.TempDir(), "bad.yaml")
	doc := "issuer: ftp://x\nstorage:\n  driver: mysql\n  dsn: x\nidp:\n  access_token_ttl: 0s\n"
	if err := os.WriteFile(p, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := run(t, "config", "validate", "--config", p)
	if code == 0 {
		t.Fatal("invalid config accepted")
	}
	for _, key := range []string{"issuer", "storage.driver", "idp.access_token_ttl", "secrets.key_encryption_key"} {
		if !strings.Contains(errOut, key) {
			t.Errorf("error output lacks %s:\n%s", key, errOut)
		}
	}
	p2 := filepath.Join(t.TempDir(), "unknown.yaml")
	_ = os.WriteFile(p2, []byte("issuer: https://a.example\nidp:\n  acess_token_ttl: 5m\n"), 0o600)
	if code, _, errOut := run(t, "config", "validate", "--config", p2); code == 0 || !strings.Contains(errOut, "acess_token_ttl") {
		t.Fatalf("unknown key accepted: %d %s", code, errOut)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestDevQuickStart runs README's first command (gatehouse dev) and follows
// its tour: a client-credentials token, introspected; every step of the
// Alice tour through the gateway; the delegated decisions; the workload
// identity step (mTLS between the services, checked at start).
func TestDevQuickStart(t *testing.T) {
	dir := t.TempDir()
	idpAddr, adminAddr, demoAddr, ordersAddr, paymentsAddr := freeAddr(t), freeAddr(t), freeAddr(t), freeAddr(t), freeAddr(t)
	gatewayAddr, authorizerAddr, authzAddr, caAddr := freeAddr(t), freeAddr(t), freeAddr(t), freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	var out, errb syncbuf.Buffer
	done := make(chan struct{})
	go func() {
		defer close(done)
		root := newRoot(env{vars: nil, stdin: strings.NewReader(""), stdout: &out, stderr: &errb})
		root.SetArgs([]string{"dev", "--data-dir", dir, "--listen", idpAddr, "--admin-listen", adminAddr, "--demo-listen", demoAddr,
			"--orders-listen", ordersAddr, "--payments-listen", paymentsAddr, "--gateway-listen", gatewayAddr,
			"--authorizer-listen", authorizerAddr, "--authz-listen", authzAddr, "--ca-listen", caAddr, "--signing-algorithm", "ES256"})
		_ = root.ExecuteContext(ctx)
	}()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(out.String(), "Alice and her orders") {
		if time.Now().After(deadline) {
			t.Fatalf("no tour printed; stderr:\n%s", errb.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(errb.String(), "WARNING") {
		t.Error("dev mode must warn loudly")
	}
	var st devState
	b, err := os.ReadFile(filepath.Join(dir, "dev-secrets.json"))
	if err != nil || json.Unmarshal(b, &st) != nil {
		t.Fatal("dev-secrets.json unreadable")
	}
	if fi, _ := os.Stat(filepath.Join(dir, "dev-secrets.json")); fi.Mode().Perm() != 0o600 {
		t.Errorf("dev secrets mode %v", fi.Mode().Perm())
	}
	_, port, _ := net.SplitHostPort(idpAddr)
	issuer := "http://localhost:" + port
	if !strings.Contains(out.String(), issuer) || !strings.Contains(out.String(), st.DemoServiceSecret) {
		t.Fatal("tour lacks the issuer or the demo credentials")
	}
	post := func(user, pass string, form url.Values) map[string]any {
		req, _ := http.NewRequest("POST", "http://"+idpAddr+"/oauth/token", strings.NewReader(form.Encode()))
		if _, ok := form["token"]; ok {
			req.URL.Path = "/oauth/introspect"
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(user, pass)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		m := map[string]any{}
		_ = json.NewDecoder(resp.Body).Decode(&m)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d %v", req.URL.Path, resp.StatusCode, m)
		}
		return m
	}
	tok := post("demo-service", st.DemoServiceSecret, url.Values{"grant_type": {"client_credentials"}, "scope": {"orders:read"}})
	in := post("demo-api", st.DemoAPISecret, url.Values{"token": {tok["access_token"].(string)}})
	if in["active"] != true || in["client_id"] != "demo-service" {
		t.Fatalf("introspection: %v", in)
	}
	// The demo app answers.
	resp, err := http.Get("http://" + demoAddr + "/")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("demo app: %v", err)
	}
	resp.Body.Close()
	// The Alice tour, every step as printed, through the gateway.
	billing := post("demo-billing", st.DemoBillingSecret, url.Values{"grant_type": {"client_credentials"},
		"scope": {"payments:write"}, "resource": {"https://api.payments.example"}})
	billingTok := billing["access_token"].(string)
	vars := map[string]string{"SERVICE": tok["access_token"].(string), "BILLING": billingTok,
		"ALICE": devLogin(t, issuer, "alice", demoAlicePassword), "BOB": devLogin(t, issuer, "bob", demoBobPassword),
		"CAROL": devLogin(t, issuer, "carol", demoCarolPassword)}
	authzTok := post(devOrdersClient, st.DemoOrdersSecret, url.Values{"grant_type": {"client_credentials"},
		"scope": {"authz:check authz:write authz:audit"}, "resource": {devAuthzAudience}})
	vars["AUTHZ"] = authzTok["access_token"].(string)
	checkDevTour(t, out.String(), st, "http://"+gatewayAddr, "http://"+authorizerAddr, "http://"+authzAddr, vars)
	checkAuthzTour(t, out.String(), "http://"+authzAddr, "http://"+adminAddr, filepath.Join(dir, "decisions.jsonl"), vars)
	checkWorkloadTour(t, out.String(), "http://"+gatewayAddr, vars)
	joinRE := regexp.MustCompile(`DEMO_BILLING_JOIN_TOKEN=(\S+)`)
	join := joinRE.FindStringSubmatch(out.String())
	if join == nil {
		t.Fatal("the tour prints no join token for the billing job")
	}
	for _, s := range []string{st.DemoServiceSecret, st.DemoBillingSecret, st.DemoGatewaySecret, st.DemoOrdersSecret, vars["ALICE"],
		vars["SERVICE"], vars["AUTHZ"], billingTok, join[1]} {
		if strings.Contains(errb.String(), s) {
			t.Fatal("a secret or token was logged")
		}
	}
}
