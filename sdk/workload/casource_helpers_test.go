package workload

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

var caTD = spiffeid.RequireTrustDomainFromString("example.org")

// caTestAuthority is a CA certificate and its key.
type caTestAuthority struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func caTestKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func caTestSerial() *big.Int {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return new(big.Int).SetBytes(b)
}

func caMustCert(t testing.TB, tmpl, parent *x509.Certificate, pub crypto.PublicKey, signer crypto.Signer) *x509.Certificate {
	t.Helper()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// caTestRoot makes a self-signed root valid for a day.
func caTestRoot(t testing.TB, cn string) caTestAuthority {
	key := caTestKey(t)
	tmpl := &x509.Certificate{SerialNumber: caTestSerial(), Subject: pkix.Name{CommonName: cn, Organization: []string{"Gatehouse"}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	return caTestAuthority{cert: caMustCert(t, tmpl, tmpl, key.Public(), key), key: key}
}

// intermediate signs a path-length-0 intermediate under a.
func (a caTestAuthority) intermediate(t testing.TB, cn string) caTestAuthority {
	key := caTestKey(t)
	tmpl := &x509.Certificate{SerialNumber: caTestSerial(), Subject: pkix.Name{CommonName: cn, Organization: []string{"Gatehouse"}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(23 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, MaxPathLenZero: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	return caTestAuthority{cert: caMustCert(t, tmpl, a.cert, key.Public(), a.key), key: key}
}

// leaf issues an SVID certificate for id and pub.
func (a caTestAuthority) leaf(t testing.TB, id spiffeid.ID, pub crypto.PublicKey, nb, na time.Time) *x509.Certificate {
	u, _ := url.Parse(id.String())
	tmpl := &x509.Certificate{SerialNumber: caTestSerial(), Subject: pkix.Name{Organization: []string{"Gatehouse workload"}},
		NotBefore: nb, NotAfter: na, URIs: []*url.URL{u}, BasicConstraintsValid: true,
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	return caMustCert(t, tmpl, a.cert, pub, a.key)
}

func caFingerprint(c *x509.Certificate) string {
	s := sha256.Sum256(c.Raw)
	return hex.EncodeToString(s[:])
}

// fakeCA implements the CA API wire contract with switches and counters.
type fakeCA struct {
	t     testing.TB
	root  caTestAuthority
	inter caTestAuthority
	srv   *httptest.Server

	mu          sync.Mutex
	roots       []*x509.Certificate // published bundle
	seq         uint64
	hint        int64 // seconds
	ttl         time.Duration
	backdate    time.Duration // NotBefore = now - backdate (the real CA: 30s)
	joinTokens  map[string]spiffeid.ID
	bearers     map[string]spiffeid.ID
	down        bool                                 // every request: 503 temporarily_unavailable
	renewErr    *caError                             // answer renewals with this error
	tamper      string                               // wrong_td | unverifiable | wrong_key | id_mismatch
	bundleBody  func([]byte) []byte                  // rewrite GET /v1/bundle answers
	policy      *Policy                              // GET /v1/policy answer (nil: empty policy)
	policyFail  bool                                 // GET /v1/policy answers 500
	onRenewal   func(nb, na time.Time, at time.Time) // called with the presented SVID's validity
	counts      map[string]int                       // join_token, client_credentials, renewal, bundle, policy
	renewalsLog []renewalRec
}

// renewalRec is what the fake saw on one renewal request.
type renewalRec struct {
	clientCert    bool
	authorization string
}

func newFakeCA(t testing.TB) *fakeCA {
	t.Helper()
	f := &fakeCA{t: t, ttl: time.Hour, hint: 300, seq: 1,
		joinTokens: map[string]spiffeid.ID{}, bearers: map[string]spiffeid.ID{}, counts: map[string]int{}}
	f.root = caTestRoot(t, "Test Root")
	f.inter = f.root.intermediate(t, "Test Intermediate")
	f.roots = []*x509.Certificate{f.root.cert}
	srvKey := caTestKey(t)
	caID := spiffeid.RequireFromSegments(caTD, "gatehouse", "ca")
	srvLeaf := f.inter.leaf(t, caID, srvKey.Public(), time.Now().Add(-time.Minute), time.Now().Add(time.Hour))
	f.srv = httptest.NewUnstartedServer(http.HandlerFunc(f.serve))
	f.srv.TLS = &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{srvLeaf.Raw, f.inter.cert.Raw}, PrivateKey: srvKey, Leaf: srvLeaf}},
		ClientAuth:   tls.RequestClientCert,
		MinVersion:   tls.VersionTLS12,
	}
	f.srv.StartTLS()
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeCA) set(fn func(f *fakeCA)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

func (f *fakeCA) count(k string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.counts[k]
}

// bundleJSONLocked is the SPIFFE bundle document of the published roots.
func (f *fakeCA) bundleJSONLocked() []byte {
	b := spiffebundle.FromX509Authorities(caTD, f.roots)
	b.SetSequenceNumber(f.seq)
	b.SetRefreshHint(time.Duration(f.hint) * time.Second)
	data, err := b.Marshal()
	if err != nil {
		f.t.Error(err)
	}
	return data
}

func caWriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func caWriteErr(w http.ResponseWriter, status int, code, desc string) {
	caWriteJSON(w, status, map[string]string{"error": code, "error_description": desc})
}

func (f *fakeCA) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		caWriteErr(w, http.StatusServiceUnavailable, "temporarily_unavailable", "the CA is not ready")
		return
	}
	switch {
	case strings.HasPrefix(r.URL.Path, "/redirect/"):
		http.Redirect(w, r, strings.TrimPrefix(r.URL.Path, "/redirect"), http.StatusFound)
	case r.Method == http.MethodGet && r.URL.Path == "/v1/bundle":
		f.counts["bundle"]++
		body := f.bundleJSONLocked()
		if f.bundleBody != nil {
			body = f.bundleBody(body)
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	case r.Method == http.MethodPost && r.URL.Path == "/v1/svid":
		f.issue(w, r)
	case r.Method == http.MethodGet && r.URL.Path == "/v1/policy":
		if _, err := f.clientIDLocked(r); err != nil {
			caWriteErr(w, http.StatusUnauthorized, "invalid_svid", err.Error())
			return
		}
		f.counts["policy"]++
		if f.policyFail {
			caWriteErr(w, http.StatusInternalServerError, "server_error", "boom")
			return
		}
		p := f.policy
		if p == nil {
			var err error
			if p, err = NewPolicy(nil); err != nil {
				f.t.Error(err)
			}
		}
		data, err := p.MarshalJSON()
		if err != nil {
			f.t.Error(err)
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(data)
	default:
		caWriteErr(w, http.StatusNotFound, "not_found", "no such endpoint")
	}
}

// clientIDLocked verifies the connection's client certificate.
func (f *fakeCA) clientIDLocked(r *http.Request) (spiffeid.ID, error) {
	if len(r.TLS.PeerCertificates) == 0 {
		return spiffeid.ID{}, caErrNoCert
	}
	id, _, err := x509svid.Verify(r.TLS.PeerCertificates, x509bundle.FromX509Authorities(caTD, f.roots))
	return id, err
}

var caErrNoCert = &caError{Status: 401, Code: "invalid_svid", Description: "no client certificate"}

func (f *fakeCA) issue(w http.ResponseWriter, r *http.Request) {
	auth := r.Header.Get("Authorization")
	hasCert := len(r.TLS.PeerCertificates) > 0
	if (auth != "") == hasCert {
		caWriteErr(w, http.StatusBadRequest, "invalid_request", "exactly one credential is required")
		return
	}
	var body struct {
		CSR string `json:"csr"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		caWriteErr(w, http.StatusBadRequest, "invalid_request", "malformed JSON")
		return
	}
	der, err := base64.StdEncoding.DecodeString(body.CSR)
	if err != nil {
		caWriteErr(w, http.StatusBadRequest, "invalid_csr", "not base64")
		return
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil || csr.CheckSignature() != nil {
		caWriteErr(w, http.StatusBadRequest, "invalid_csr", "bad CSR")
		return
	}
	var id spiffeid.ID
	method := ""
	switch {
	case hasCert:
		method = "renewal"
		leaf := r.TLS.PeerCertificates[0]
		f.renewalsLog = append(f.renewalsLog, renewalRec{true, auth})
		if f.onRenewal != nil {
			f.onRenewal(leaf.NotBefore, leaf.NotAfter, time.Now())
		}
		if f.renewErr != nil {
			caWriteErr(w, f.renewErr.Status, f.renewErr.Code, f.renewErr.Description)
			return
		}
		if time.Now().After(leaf.NotAfter) {
			caWriteErr(w, http.StatusUnauthorized, "svid_expired", "the SVID expired at "+leaf.NotAfter.Format(time.RFC3339)+
				"; renewal needs a valid SVID: bootstrap again with a join token or client credentials")
			return
		}
		if id, err = f.clientIDLocked(r); err != nil {
			caWriteErr(w, http.StatusUnauthorized, "invalid_svid", "the client certificate does not verify")
			return
		}
	case strings.HasPrefix(auth, "JoinToken "):
		method = "join_token"
		var ok bool
		tok := strings.TrimPrefix(auth, "JoinToken ")
		if id, ok = f.joinTokens[tok]; !ok {
			caWriteErr(w, http.StatusUnauthorized, "invalid_token", "join token is invalid, expired or already used")
			return
		}
		delete(f.joinTokens, tok)
	case strings.HasPrefix(auth, "Bearer "):
		method = "client_credentials"
		var ok bool
		if id, ok = f.bearers[strings.TrimPrefix(auth, "Bearer ")]; !ok {
			caWriteErr(w, http.StatusUnauthorized, "invalid_token", "access token invalid")
			return
		}
	default:
		caWriteErr(w, http.StatusBadRequest, "invalid_request", "unknown credential")
		return
	}
	f.counts[method]++
	pub, signer := csr.PublicKey, f.inter
	spiffeID := id.String()
	switch f.tamper {
	case "wrong_td":
		id = spiffeid.RequireFromString("spiffe://other.org/svc")
	case "unverifiable":
		signer = caTestRoot(f.t, "Rogue Root").intermediate(f.t, "Test Intermediate")
	case "wrong_key":
		pub = caTestKey(f.t).Public()
	case "id_mismatch":
		spiffeID = "spiffe://example.org/someone-else"
	}
	now := time.Now()
	leaf := signer.leaf(f.t, id, pub, now.Add(-f.backdate), now.Add(f.ttl))
	caWriteJSON(w, http.StatusOK, map[string]any{
		"spiffe_id":  spiffeID,
		"x509_svid":  []string{base64.StdEncoding.EncodeToString(leaf.Raw), base64.StdEncoding.EncodeToString(signer.cert.Raw)},
		"expires_at": leaf.NotAfter.Format(time.RFC3339),
		"bundle":     json.RawMessage(f.bundleJSONLocked()),
	})
}

// caLogBuffer is a goroutine-safe log sink.
type caLogBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *caLogBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *caLogBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// caFastOpts keeps retries short in tests.
var caFastOpts = caOptions{backoffMin: 50 * time.Millisecond, backoffMax: 300 * time.Millisecond}

// baseConfig is a join-token config for f (the token is registered).
func (f *fakeCA) baseConfig(token string, log *caLogBuffer) CAConfig {
	f.set(func(f *fakeCA) { f.joinTokens[token] = spiffeid.RequireFromString("spiffe://example.org/orders") })
	cfg := CAConfig{URL: f.srv.URL, TrustDomain: caTD, RootFingerprint: caFingerprint(f.root.cert),
		JoinToken: token, PolicyRefresh: -1, Timeout: 2 * time.Second}
	if log != nil {
		cfg.Logger = slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return cfg
}

// caWaitFor polls cond until it holds or d passes.
func caWaitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// caSVIDWith wraps a bare leaf for the scheduling helpers.
func caSVIDWith(leaf *x509.Certificate) *x509svid.SVID {
	return &x509svid.SVID{Certificates: []*x509.Certificate{leaf}}
}
