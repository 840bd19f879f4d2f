package app

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"go.yaml.in/yaml/v3"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/password"
	"github.com/gatehouse/gatehouse/internal/secret"
	"github.com/gatehouse/gatehouse/internal/storage"
	"github.com/gatehouse/gatehouse/internal/testutil/syncbuf"
	"github.com/gatehouse/gatehouse/sdk/workload"
)

func randB64(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b)
}

// freeAddr returns a loopback address that was free a moment ago (the
// issuer and the CA URL must be known before the app starts).
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// caConfig is an all-in-one configuration (IdP + CA) on sqlite.
func caConfig(t *testing.T) config.Config {
	t.Helper()
	idp := freeAddr(t)
	cfg := config.Default()
	cfg.Issuer = "http://" + idp
	cfg.Storage = config.StorageConfig{Driver: "sqlite", DSN: "file:" + filepath.Join(t.TempDir(), "gh.db")}
	cfg.Secrets = config.SecretsConfig{KeyEncryptionKey: randB64(t, 32), Pepper: randB64(t, 32)}
	cfg.Admin.Listen = ""
	cfg.IDP.Listen = idp
	cfg.IDP.Signing.Algorithm = "ES256"
	cfg.CA.Listen, cfg.CA.TrustDomain = "127.0.0.1:0", "gatehouse.local"
	cfg.CA.Policy = []workload.Rule{{Name: "a", Effect: "allow", From: []string{"spiffe://gatehouse.local/orders"},
		To: []string{"spiffe://gatehouse.local/payments"}}}
	return cfg
}

// runApp builds and runs cfg, and returns the app and its bound addresses.
func runApp(t *testing.T, cfg config.Config, logs io.Writer) (*App, map[string]string) {
	t.Helper()
	if _, err := cfg.Validate(); err != nil {
		t.Fatalf("config: %v", err)
	}
	hasher, err := password.NewInsecureHasherForTests(password.TestParams)
	if err != nil {
		t.Fatal(err)
	}
	if logs == nil {
		logs = io.Discard
	}
	a, err := New(t.Context(), cfg, slog.New(slog.NewJSONHandler(logs, nil)), Options{Passwords: hasher})
	if err != nil {
		t.Fatalf("app: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	addrs := map[string]string{}
	n := len(a.Listeners(nil))
	up := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- a.Run(ctx, func(name, addr string) {
			mu.Lock()
			defer mu.Unlock()
			addrs[name] = addr
			if len(addrs) == n {
				close(up)
			}
		})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
		a.Close()
	})
	select {
	case <-up:
	case err := <-done:
		t.Fatalf("run: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("listeners did not start")
	}
	mu.Lock()
	defer mu.Unlock()
	return a, addrs
}

// caClient trusts the app's CA bundle and accepts only the CA's own SVID.
func caClient(t *testing.T, a *App) *http.Client {
	t.Helper()
	caID := spiffeid.RequireFromString("spiffe://gatehouse.local/gatehouse/ca")
	bundle, _ := a.CA.Bundle()
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		MinVersion: tls.VersionTLS12, InsecureSkipVerify: true, // verified below as a SPIFFE ID
		VerifyConnection: func(cs tls.ConnectionState) error {
			id, _, err := x509svid.Verify(cs.PeerCertificates, bundle)
			if err == nil && id != caID {
				t.Errorf("CA presents %s", id)
			}
			return err
		}}}}
}

func TestCAServesBundle(t *testing.T) {
	a, addrs := runApp(t, caConfig(t), nil)
	if a.CA == nil || addrs["ca"] == "" {
		t.Fatalf("no CA: %v", addrs)
	}
	resp, err := caClient(t, a).Get("https://" + addrs["ca"] + "/v1/bundle")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc struct {
		Keys []struct {
			Use string   `json:"use"`
			X5C []string `json:"x5c"`
		} `json:"keys"`
		Seq uint64 `json:"spiffe_sequence"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil || resp.StatusCode != 200 {
		t.Fatalf("bundle: %d %v", resp.StatusCode, err)
	}
	if len(doc.Keys) != 1 || doc.Keys[0].Use != "x509-svid" || len(doc.Keys[0].X5C) != 1 || doc.Seq == 0 {
		t.Fatalf("bundle %+v", doc)
	}
	der, _ := base64.StdEncoding.DecodeString(doc.Keys[0].X5C[0])
	sum := sha256.Sum256(der)
	if fp := a.CAFingerprint(); fp != hex.EncodeToString(sum[:]) {
		t.Fatalf("CAFingerprint %q, want the bundle root's", fp)
	}
	for _, c := range a.Checks() {
		if c.Name == "ca" {
			if err := c.Fn(context.Background()); err != nil {
				t.Fatalf("ca readiness: %v", err)
			}
			return
		}
	}
	t.Fatal("no ca readiness check")
}

func TestCAPolicyHotReload(t *testing.T) {
	cfg := caConfig(t)
	cfg.Gateway.ReloadInterval = config.Duration(20 * time.Millisecond)
	var logs syncbuf.Buffer
	a, _ := runApp(t, cfg, &logs)
	if a.Gateway != nil {
		t.Fatal("no gateway expected")
	}
	path := filepath.Join(t.TempDir(), "gatehouse.yaml")
	write := func(c config.Config) {
		b, err := yaml.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go a.WatchConfig(ctx, path, nil)
	first := a.CAPolicy().Version()
	next := cfg
	next.CA.Policy = append(append([]workload.Rule(nil), cfg.CA.Policy...), workload.Rule{Name: "b", Effect: "deny",
		From: []string{"spiffe://gatehouse.local/*"}, To: []string{"spiffe://gatehouse.local/admin"}})
	write(next)
	want, _ := next.CA.NewPolicy()
	waitFor(t, func() bool { return a.CAPolicy().Version() == want.Version() }, "policy reloaded")
	if first == want.Version() {
		t.Fatal("versions equal")
	}
	// A bad policy keeps the running one, and says so.
	bad := next
	bad.CA.Policy = []workload.Rule{{Name: "x", Effect: "maybe", From: []string{"nope"}, To: []string{"spiffe://gatehouse.local/a"}}}
	write(bad)
	waitFor(t, func() bool { return strings.Contains(logs.String(), "configuration reload rejected") }, "rejection logged")
	if a.CAPolicy().Version() != want.Version() {
		t.Fatal("a bad policy replaced the running one")
	}
	if !strings.Contains(logs.String(), "ca.policy[0].effect") {
		t.Errorf("the log does not name the key: %s", logs.String())
	}
}

// TestGatewaySVIDAllInOne: the gateway of an all-in-one process gets its
// SVID from the CA beside it (client credentials, root pinned from the
// process) and reaches an upstream that requires it; readiness waits for
// the SVID.
func TestGatewaySVIDAllInOne(t *testing.T) {
	cfg := caConfig(t)
	caAddr := freeAddr(t)
	cfg.CA.Listen = caAddr
	const gwID, ordersID = "spiffe://gatehouse.local/gateway", "spiffe://gatehouse.local/orders"
	secret := "ghs_" + strings.TrimRight(randB64(t, 24), "=")
	cfg.Gateway.Listen = "127.0.0.1:0"
	cfg.Gateway.Workload = config.GatewayWorkload{CAURL: "https://" + caAddr, ClientID: "gateway", ClientSecret: secret, Audience: "gatehouse-ca"}
	// The upstream: an SVID for orders straight from the CA, requiring the gateway's ID.
	var upAddr string
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	upAddr = ln.Addr().String()
	cfg.Gateway.Routes = []config.GatewayRoute{{Name: "orders", PathPrefix: "/orders", Upstreams: []string{"https://" + upAddr},
		Token: "strip", Auth: config.GatewayAuth{Mode: "anonymous"}, UpstreamTLS: config.GatewayTLS{SPIFFEID: ordersID}}}

	// The gateway's client must exist before the app asks for its SVID:
	// open the store first, as another replica would have.
	st, err := OpenStore(t.Context(), cfg.Storage)
	if err != nil {
		t.Fatal(err)
	}
	pep, _ := cfg.Secrets.PepperBytes()
	keyed := mustKeyed(t, pep)
	now := time.Now()
	if err := st.CreateClient(t.Context(), storage.Client{ID: "gateway", Name: "Gateway", GrantTypes: []string{"client_credentials"},
		Audiences: []string{"gatehouse-ca"}, SPIFFEID: gwID, SecretHash: keyed.Sum(secret), CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	_ = st.Close()

	var logs syncbuf.Buffer
	a, addrs := runApp(t, cfg, &logs)
	upstream := upstreamFromCA(t, a, ordersID, gwID, ln)
	defer upstream.Close()

	waitFor(t, func() bool {
		for _, c := range a.Checks() {
			if c.Name == "gateway_svid" {
				return c.Fn(context.Background()) == nil
			}
		}
		return false
	}, "gateway_svid ready")
	resp, err := http.Get("http://" + addrs["gateway"] + "/orders/1")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), gwID) {
		t.Fatalf("through the gateway: %d %s\nlogs: %s", resp.StatusCode, body, logs.String())
	}
	if strings.Contains(logs.String(), secret) {
		t.Fatal("the client secret was logged")
	}
}

// upstreamFromCA serves on ln with an SVID for id issued by the app's CA,
// accepting only client, and echoes the client's SPIFFE ID.
func upstreamFromCA(t *testing.T, a *App, id, client string, ln net.Listener) *http.Server {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	sv, err := a.CA.Issue(t.Context(), spiffeid.RequireFromString(id), key.Public(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	bundle, _ := a.CA.Bundle()
	src := &fixedSource{svid: &x509svid.SVID{ID: sv.ID, Certificates: sv.Certificates, PrivateKey: key}, bundle: bundle}
	tc, err := workload.ServerTLSConfig(src, workload.AuthorizeID(spiffeid.RequireFromString(client)))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{TLSConfig: tc, ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var peer string
		if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 && len(r.TLS.PeerCertificates[0].URIs) == 1 {
			peer = r.TLS.PeerCertificates[0].URIs[0].String()
		}
		_, _ = w.Write([]byte(`{"peer":"` + peer + `"}`))
	})}
	go func() { _ = srv.ServeTLS(ln, "", "") }()
	return srv
}

// fixedSource is one SVID and bundle.
type fixedSource struct {
	svid   *x509svid.SVID
	bundle *x509bundle.Bundle
}

func (f *fixedSource) GetX509SVID() (*x509svid.SVID, error) { return f.svid, nil }
func (f *fixedSource) GetX509BundleForTrustDomain(td spiffeid.TrustDomain) (*x509bundle.Bundle, error) {
	return f.bundle.GetX509BundleForTrustDomain(td)
}

func mustKeyed(t *testing.T, pepper []byte) *secret.Keyed {
	t.Helper()
	k, err := secret.NewKeyed(pepper)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
