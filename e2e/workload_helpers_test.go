package e2e

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"golang.org/x/oauth2"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/server"
	"github.com/gatehouse/gatehouse/sdk/auth"
	"github.com/gatehouse/gatehouse/sdk/workload"
)

// The workload tests' trust domain, identities and call.
const (
	wlTrustDomain = "gatehouse.local"
	wlAudience    = "gatehouse-ca"     // ca.client_audience (default)
	paymentsPath  = "/payments/charge" // what orders calls on payments
)

var (
	wlTD       = spiffeid.RequireTrustDomainFromString(wlTrustDomain)
	paymentsID = spiffeid.RequireFromString("spiffe://gatehouse.local/payments")
	ordersID   = spiffeid.RequireFromString("spiffe://gatehouse.local/orders")
	billingID  = spiffeid.RequireFromString("spiffe://gatehouse.local/billing")
	caSelfID   = spiffeid.RequireFromString("spiffe://gatehouse.local/gatehouse/ca")
)

// ordersPaysRule lets orders POST to payments' /payments paths.
func ordersPaysRule() workload.Rule {
	return workload.Rule{Name: "orders-pays", Effect: "allow", From: []string{ordersID.String()},
		To: []string{paymentsID.String()}, Paths: []string{"/payments", "/payments/*"}, Methods: []string{"POST"}}
}

// wlSetup varies the ca section of a workload test Gatehouse.
type wlSetup struct {
	svidTTL, interTTL, refresh time.Duration // zero: config defaults
	// rootTTL, when set, replaces ca.root_ttl after the configuration was
	// validated: the config refuses less than 1h, which no test can wait
	// for, and app.New does not validate again. Test only.
	rootTTL time.Duration
	policy  []workload.Rule
}

// wlEnv is a Gatehouse with the workload CA and the admin API served.
type wlEnv struct {
	*Env
	caAddr     string // host:port of the CA listener
	adminURL   string
	adminToken string
}

// caURL is the CA API's base URL.
func (w *wlEnv) caURL() string { return "https://" + w.caAddr }

// newWorkloadEnv starts Gatehouse (IdP, admin API, CA) on driver/dsn as
// newEnv does, with the ca section of s, serves the CA and admin listeners
// and waits until the CA is ready.
func newWorkloadEnv(t *testing.T, driver, dsn string, s wlSetup) *wlEnv {
	t.Helper()
	var handler atomic.Value
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		handler.Load().(http.Handler).ServeHTTP(w, r)
	}))
	cfg := config.Default()
	cfg.Issuer = "http://" + srv.Listener.Addr().String()
	cfg.Storage = config.StorageConfig{Driver: driver, DSN: dsn}
	cfg.Secrets.KeyEncryptionKey = randB64(32)
	cfg.Secrets.Pepper = randB64(32)
	cfg.IDP.Signing.Algorithm = "ES256"
	adminToken := "adm_" + hex.EncodeToString([]byte(randB64(24)))
	sum := sha256.Sum256([]byte(adminToken))
	cfg.Admin.Listen, cfg.Admin.TokenSHA256 = "127.0.0.1:0", hex.EncodeToString(sum[:])
	c := &cfg.CA
	c.Listen, c.TrustDomain, c.Policy = "127.0.0.1:0", wlTrustDomain, s.policy
	if s.svidTTL > 0 {
		c.SVIDTTL = config.Duration(s.svidTTL)
	}
	if s.interTTL > 0 {
		c.IntermediateTTL = config.Duration(s.interTTL)
	}
	if s.refresh > 0 {
		c.RefreshInterval = config.Duration(s.refresh)
	}
	if _, err := cfg.Validate(); err != nil {
		t.Fatalf("config: %v", err)
	}
	if s.rootTTL > 0 {
		c.RootTTL = config.Duration(s.rootTTL)
	}
	e := startApp(t, srv, &handler, cfg, nil)
	e.seed()
	if e.App.CA == nil || e.App.Admin == nil {
		t.Fatal("ca.listen and admin.listen are set but the app runs no CA or no admin API")
	}
	e.remember(adminToken)
	admin := httptest.NewServer(e.App.Admin)
	t.Cleanup(admin.Close)
	w := &wlEnv{Env: e, adminURL: admin.URL, adminToken: adminToken}
	w.caAddr = e.serveNamed(t, "ca")
	e.waitAuthzReady(t) // every readiness check, the CA's included
	return w
}

// serveNamed runs the app's listener name as serve does, on the address
// of the configuration (port 0: a free one), and returns its address.
func (e *Env) serveNamed(t *testing.T, name string) string {
	t.Helper()
	bound := make(chan string, 1)
	var ls []server.Listener
	for _, l := range e.App.Listeners(func(n, addr string) {
		if n == name {
			bound <- addr
		}
	}) {
		if l.Name == name {
			ls = append(ls, l)
		}
	}
	if len(ls) != 1 {
		t.Fatalf("the app has %d %s listeners", len(ls), name)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- server.Run(ctx, slog.New(slog.DiscardHandler), nil, ls...) }()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case addr := <-bound:
		return addr
	case err := <-done:
		t.Fatalf("%s listener: %v", name, err)
	case <-time.After(10 * time.Second):
		t.Fatalf("the %s listener never bound", name)
	}
	return ""
}

// adminPost calls the admin API and decodes its JSON answer into out.
func (w *wlEnv) adminPost(t *testing.T, path string, body, out any) int {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, w.adminURL+path, bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+w.adminToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("admin %s: %v", path, err)
	}
	data := readBody(t, resp)
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal([]byte(data), out); err != nil {
			t.Fatalf("admin %s: %v: %.300s", path, err, data)
		}
	}
	if resp.StatusCode >= 300 {
		t.Logf("admin %s: %d %.300s", path, resp.StatusCode, data)
	}
	return resp.StatusCode
}

// joinToken creates a join token for id through the admin API.
func (w *wlEnv) joinToken(t *testing.T, id spiffeid.ID) string {
	t.Helper()
	var out struct {
		Token     string    `json:"token"`
		SPIFFEID  string    `json:"spiffe_id"`
		ExpiresAt time.Time `json:"expires_at"`
	}
	if st := w.adminPost(t, "/admin/v1/join-tokens", map[string]string{"spiffe_id": id.String()}, &out); st != http.StatusCreated {
		t.Fatalf("join token for %s: status %d", id, st)
	}
	if out.Token == "" || out.SPIFFEID != id.String() || !out.ExpiresAt.After(time.Now()) {
		t.Fatalf("join token answer %+v", out)
	}
	w.remember(out.Token)
	return out.Token
}

// workloadClient registers, through the admin API, a client-credentials
// client allowed to get id from the CA, and returns a TokenSource of
// sdk/auth for the CA's audience.
func (w *wlEnv) workloadClient(t *testing.T, id spiffeid.ID) oauth2.TokenSource {
	t.Helper()
	var out struct {
		ID       string `json:"id"`
		Secret   string `json:"client_secret"`
		SPIFFEID string `json:"spiffe_id"`
	}
	req := map[string]any{"name": "workload " + id.Path(), "grant_types": []string{"client_credentials"},
		"audiences": []string{wlAudience}, "spiffe_id": id.String()}
	if st := w.adminPost(t, "/admin/v1/clients", req, &out); st != http.StatusCreated {
		t.Fatalf("registering the client of %s: status %d", id, st)
	}
	if out.ID == "" || out.Secret == "" || out.SPIFFEID != id.String() {
		t.Fatalf("client answer without id, secret or spiffe_id: id=%q spiffe_id=%q", out.ID, out.SPIFFEID)
	}
	w.Secrets[out.ID] = out.Secret
	ts, err := auth.NewClientCredentials(auth.ClientCredentialsConfig{TokenURL: w.Issuer + "/oauth/token",
		ClientID: out.ID, ClientSecret: out.Secret, Audience: []string{wlAudience}})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := ts.Token() // cached: the source's first bootstrap uses it
	if err != nil {
		t.Fatalf("client credentials of %s: %v", id, err)
	}
	w.remember(tok.AccessToken)
	return ts
}

// source starts a CASource against caURL (the CA or a proxy in front of
// it), pinned to the CA's root, logging into the app's log buffer (so the
// secret checks cover the SDK's logs too).
func (w *wlEnv) source(t *testing.T, caURL, joinToken string, ts oauth2.TokenSource, policyRefresh time.Duration) *workload.CASource {
	t.Helper()
	fp := w.App.CAFingerprint()
	if fp == "" {
		t.Fatal("the app reports no CA fingerprint")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	src, err := workload.NewCASource(ctx, workload.CAConfig{URL: caURL, TrustDomain: wlTD, RootFingerprint: fp,
		JoinToken: joinToken, TokenSource: ts, PolicyRefresh: policyRefresh, Timeout: 20 * time.Second,
		Logger: slog.New(slog.NewJSONHandler(w.Logs, &slog.HandlerOptions{Level: slog.LevelDebug})).With("component", "sdk")})
	if err != nil {
		t.Fatalf("NewCASource: %v", err)
	}
	t.Cleanup(func() { _ = src.Close() })
	return src
}

// peerLog records what a side of the connections saw of its peers.
type peerLog struct {
	mu      sync.Mutex
	leaves  map[string]bool // peer leaf serials
	inters  map[string]bool // SHA-256 of peer intermediates
	roots   map[string]bool // authority key IDs of the peer intermediates (their root)
	resumed int
	peers   map[string]int // peer SPIFFE IDs
}

func newPeerLog() *peerLog {
	return &peerLog{leaves: map[string]bool{}, inters: map[string]bool{}, roots: map[string]bool{}, peers: map[string]int{}}
}

func (l *peerLog) add(cs *tls.ConnectionState) {
	if cs == nil || len(cs.PeerCertificates) == 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	leaf := cs.PeerCertificates[0]
	l.leaves[leaf.SerialNumber.Text(16)] = true
	if id, err := x509svid.IDFromCert(leaf); err == nil {
		l.peers[id.String()]++
	}
	if len(cs.PeerCertificates) > 1 {
		in := cs.PeerCertificates[1]
		sum := sha256.Sum256(in.Raw)
		l.inters[hex.EncodeToString(sum[:])] = true
		l.roots[hex.EncodeToString(in.AuthorityKeyId)] = true
	}
	if cs.DidResume {
		l.resumed++
	}
}

// counts returns the distinct leaves, intermediates and roots seen and
// the resumed connections.
func (l *peerLog) counts() (leaves, inters, roots, resumed int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.leaves), len(l.inters), len(l.roots), l.resumed
}

// serveWorkload serves HTTPS for self with ServerTLSConfig (connection
// policy of src) and Middleware (request policy): the handler answers
// "ok <peer>" and records the peer's chain in seen. It returns the base
// URL and a buffer with the server's TLS errors.
func serveWorkload(t *testing.T, src workload.Source, pol workload.PolicySource, self spiffeid.ID, seen *peerLog) (string, *logBuffer) {
	t.Helper()
	cfg, err := workload.ServerTLSConfig(src, workload.AuthorizePolicy(pol, self))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	errs := &logBuffer{}
	h := workload.Middleware(pol, self, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, ok := workload.PeerID(r.Context())
		if !ok {
			http.Error(w, "no peer ID in the context", http.StatusInternalServerError)
			return
		}
		if seen != nil {
			seen.add(r.TLS)
		}
		_, _ = io.WriteString(w, "ok "+id.String())
	}))
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 20 * time.Second, ErrorLog: log.New(errs, "", 0)}
	go func() { _ = srv.Serve(tls.NewListener(ln, cfg)) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "https://" + ln.Addr().String(), errs
}

// Connection styles of workload clients.
const (
	keepAlive = "keep-alive"      // one pooled connection reused
	freshConn = "new-connections" // a full handshake per request
	resumed   = "resumed"         // a new connection per request, TLS session resumption
)

// workloadHTTP is an HTTP client presenting src's SVID and accepting only
// server, with the connection style mode.
func workloadHTTP(t *testing.T, src workload.Source, server spiffeid.ID, mode string) *http.Client {
	t.Helper()
	cfg, err := workload.ClientTLSConfig(src, workload.AuthorizeID(server))
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{TLSClientConfig: cfg, MaxIdleConnsPerHost: 4, TLSHandshakeTimeout: 20 * time.Second}
	switch mode {
	case freshConn:
		tr.DisableKeepAlives = true
	case resumed:
		tr.DisableKeepAlives = true
		cfg.ClientSessionCache = tls.NewLRUClientSessionCache(16)
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// wlCall POSTs to url and returns the status and body (an error when the
// request did not complete).
func wlCall(c *http.Client, url string) (int, string, *tls.ConnectionState, error) {
	resp, err := c.Post(url, "text/plain", strings.NewReader("1 EUR"))
	if err != nil {
		return 0, "", nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.TLS, err
}

// traffic is continuous load from several clients, counting failures.
type traffic struct {
	stop           atomic.Bool
	sent, failed   atomic.Int64
	byMode         sync.Map // mode -> *atomic.Int64 (successes)
	mu             sync.Mutex
	failures       []string // the first few
	firstAt        time.Time
	kinds          map[string]int
	wg             sync.WaitGroup
	serverSeenByMe *peerLog // the server chains the clients saw
}

// startTraffic runs one goroutine per client, each POSTing to url in a
// loop (with a short pause: the machine is shared) and expecting 200 with
// the caller's ID (the server saw caller).
func startTraffic(url string, caller spiffeid.ID, clients map[string][]*http.Client) *traffic {
	tr := &traffic{serverSeenByMe: newPeerLog(), kinds: map[string]int{}}
	for mode, cs := range clients {
		ok := &atomic.Int64{}
		tr.byMode.Store(mode, ok)
		for _, c := range cs {
			tr.wg.Add(1)
			go func() {
				defer tr.wg.Done()
				for !tr.stop.Load() {
					st, body, cs, err := wlCall(c, url)
					tr.sent.Add(1)
					if err != nil || st != http.StatusOK || body != "ok "+caller.String() {
						tr.failed.Add(1)
						tr.mu.Lock()
						tr.kinds[failureKind(mode, st, body, err)]++
						if tr.firstAt.IsZero() {
							tr.firstAt = time.Now()
						}
						if len(tr.failures) < 5 {
							tr.failures = append(tr.failures, fmt.Sprintf("%s at %s: status %d body %.200q err %v",
								mode, time.Now().UTC().Format(time.RFC3339Nano), st, body, err))
						}
						tr.mu.Unlock()
					} else {
						ok.Add(1)
						tr.serverSeenByMe.add(cs)
					}
					time.Sleep(15 * time.Millisecond)
				}
			}()
		}
	}
	return tr
}

// halt stops the traffic and waits for the requests in flight.
func (tr *traffic) halt() {
	tr.stop.Store(true)
	tr.wg.Wait()
}

// successes returns the successful requests of a mode.
func (tr *traffic) successes(mode string) int64 {
	v, ok := tr.byMode.Load(mode)
	if !ok {
		return 0
	}
	return v.(*atomic.Int64).Load()
}

// caHTTP is a plain client of the CA API that trusts the app's CA bundle
// and accepts only the CA's own SVID (no client certificate).
func (w *wlEnv) caHTTP(t *testing.T) *http.Client {
	c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		MinVersion: tls.VersionTLS12, InsecureSkipVerify: true, // verified below as a SPIFFE ID
		VerifyConnection: func(cs tls.ConnectionState) error {
			bundle, _ := w.App.CA.Bundle()
			id, _, err := x509svid.Verify(cs.PeerCertificates, bundle)
			if err == nil && id != caSelfID {
				return fmt.Errorf("the CA presents %s", id)
			}
			return err
		}}}}
	t.Cleanup(c.CloseIdleConnections)
	return c
}

// newCSR returns a fresh P-256 key and a CSR for it (base64 std DER).
func newCSR(t *testing.T) (*ecdsa.PrivateKey, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		t.Fatal(err)
	}
	return key, base64.StdEncoding.EncodeToString(der)
}

// svidAnswer is the CA's answer to POST /v1/svid.
type svidAnswer struct {
	SPIFFEID  string          `json:"spiffe_id"`
	X509SVID  []string        `json:"x509_svid"`
	ExpiresAt string          `json:"expires_at"`
	Bundle    json.RawMessage `json:"bundle"`
	Error     string          `json:"error"`
}

// postSVID sends a raw POST /v1/svid with the Authorization header auth.
func (w *wlEnv) postSVID(c *http.Client, auth, csr string) (int, svidAnswer, error) {
	body, _ := json.Marshal(map[string]string{"csr": csr})
	req, _ := http.NewRequest(http.MethodPost, w.caURL()+"/v1/svid", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", auth)
	resp, err := c.Do(req)
	if err != nil {
		return 0, svidAnswer{}, err
	}
	defer resp.Body.Close()
	var out svidAnswer
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return resp.StatusCode, out, fmt.Errorf("answer %d is not JSON: %w", resp.StatusCode, err)
	}
	return resp.StatusCode, out, nil
}

// parseSVIDChain decodes x509_svid (base64 std DER, leaf first).
func parseSVIDChain(t *testing.T, ders []string) []*x509.Certificate {
	t.Helper()
	var out []*x509.Certificate
	for _, s := range ders {
		der, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
	return out
}

// firstFailures returns the failures by kind and the first few, one a
// line.
func (tr *traffic) firstFailures() string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return fmt.Sprintf("by kind: %v\n%s", tr.kinds, strings.Join(tr.failures, "\n"))
}

// failureKind classifies a failed call for the report.
func failureKind(mode string, status int, body string, err error) string {
	switch {
	case err != nil && strings.Contains(err.Error(), "certificate has expired"):
		return mode + ": the peer's SVID expired during the handshake"
	case err != nil:
		return mode + ": transport error"
	case status == http.StatusUnauthorized && strings.Contains(body, "svid_expired"):
		return mode + ": 401 svid_expired"
	}
	return fmt.Sprintf("%s: status %d", mode, status)
}
