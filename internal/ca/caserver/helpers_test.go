package caserver

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/gatehouse/gatehouse/internal/ca"
	"github.com/gatehouse/gatehouse/internal/secret"
	"github.com/gatehouse/gatehouse/internal/storage"
	"github.com/gatehouse/gatehouse/sdk/auth"
	"github.com/gatehouse/gatehouse/sdk/workload"
)

var testTD = spiffeid.RequireTrustDomainFromString("gatehouse.test")

// fakeCA is an in-test Issuer: a root and an intermediate with fixed
// subjects (two fakeCAs share them: "wrong CA, identical subject"), real
// certificates from crypto/x509. It uses only the CSR's key, like the CA.
type fakeCA struct {
	td       spiffeid.TrustDomain
	root     *x509.Certificate
	inter    *x509.Certificate
	interKey *ecdsa.PrivateKey
	issued   atomic.Int64               // Issue + IssueCSR + IssueRequest calls that succeeded
	requests atomic.Int64               // IssueRequest calls
	bundle   atomic.Pointer[fakeBundle] // nil: the root alone, sequence 1
	issueErr atomic.Pointer[error]
	clock    *testClock
}

// testClock is a settable clock shared by the server and the fake CA.
type testClock struct {
	mu  sync.Mutex
	off time.Duration
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.off)
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.off += d
	c.mu.Unlock()
}

// sameKey reports whether two public keys are equal.
func sameKey(a, b crypto.PublicKey) bool {
	k, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && k.Equal(b)
}

func newFakeCA(t testing.TB, td spiffeid.TrustDomain) *fakeCA {
	t.Helper()
	rootKey := mustKey(t)
	now := time.Now()
	rootTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Fake Root CA", Organization: []string{"Gatehouse"}},
		NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(48 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, URIs: []*url.URL{spiffeid.RequireFromPath(td, "").URL()}}
	root := mustCert(t, rootTmpl, rootTmpl, rootKey.Public(), rootKey)
	interKey := mustKey(t)
	interTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "Fake Intermediate CA", Organization: []string{"Gatehouse"}},
		NotBefore: now.Add(-24 * time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		MaxPathLenZero: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	inter := mustCert(t, interTmpl, root, interKey.Public(), rootKey)
	return &fakeCA{td: td, root: root, inter: inter, interKey: interKey, clock: &testClock{}}
}

func mustKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustCert(t testing.TB, tmpl, parent *x509.Certificate, pub crypto.PublicKey, signer crypto.Signer) *x509.Certificate {
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

// leafTemplate is a well-formed SVID template for id, valid from nb to na.
func leafTemplate(id spiffeid.ID, nb, na time.Time) *x509.Certificate {
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	return &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{Organization: []string{"Gatehouse workload"}},
		NotBefore: nb, NotAfter: na, URIs: []*url.URL{id.URL()}, BasicConstraintsValid: true,
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
}

// sign signs a leaf template with the intermediate and returns the chain.
func (f *fakeCA) sign(t testing.TB, tmpl *x509.Certificate, pub crypto.PublicKey) []*x509.Certificate {
	t.Helper()
	return []*x509.Certificate{mustCert(t, tmpl, f.inter, pub, f.interKey), f.inter}
}

func (f *fakeCA) TrustDomain() spiffeid.TrustDomain { return f.td }

func (f *fakeCA) IssueCSR(ctx context.Context, id spiffeid.ID, csrDER []byte, ttl time.Duration) (*ca.SVID, error) {
	csr, err := x509.ParseCertificateRequest(csrDER)
	if err != nil {
		return nil, errors.Join(ca.ErrBadCSR, err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, errors.Join(ca.ErrBadCSR, err)
	}
	if !acceptedKey(csr.PublicKey) {
		return nil, ca.ErrWeakKey
	}
	return f.Issue(ctx, id, csr.PublicKey, ttl)
}

// IssueRequest, like the CA's, does not check the CSR's signature again.
func (f *fakeCA) IssueRequest(ctx context.Context, id spiffeid.ID, csr *x509.CertificateRequest, ttl time.Duration) (*ca.SVID, error) {
	f.requests.Add(1)
	if !acceptedKey(csr.PublicKey) {
		return nil, ca.ErrWeakKey
	}
	return f.Issue(ctx, id, csr.PublicKey, ttl)
}

func (f *fakeCA) Issue(ctx context.Context, id spiffeid.ID, pub crypto.PublicKey, ttl time.Duration) (*ca.SVID, error) {
	if p := f.issueErr.Load(); p != nil {
		return nil, *p
	}
	if !id.MemberOf(f.td) || id.Path() == "" {
		return nil, ca.ErrBadID
	}
	now := f.clock.Now()
	der, err := x509.CreateCertificate(rand.Reader, leafTemplate(id, now.Add(-30*time.Second), now.Add(ttl)), f.inter, pub, f.interKey)
	if err != nil {
		return nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	f.issued.Add(1)
	return &ca.SVID{ID: id, Certificates: []*x509.Certificate{leaf, f.inter}, NotAfter: leaf.NotAfter}, nil
}

// fakeBundle replaces the fakeCA's bundle (roots and sequence).
type fakeBundle struct {
	roots []*x509.Certificate
	seq   uint64
}

func (f *fakeCA) Bundle() (*x509bundle.Bundle, uint64) {
	if b := f.bundle.Load(); b != nil {
		return x509bundle.FromX509Authorities(f.td, b.roots), b.seq
	}
	return x509bundle.FromX509Authorities(f.td, []*x509.Certificate{f.root}), 1
}

func (f *fakeCA) BundleJSON() ([]byte, error) {
	return spiffebundle.FromX509Authorities(f.td, []*x509.Certificate{f.root}).Marshal()
}

// fakeJoinTokens is a single-use store with compare-and-swap semantics.
type fakeJoinTokens struct {
	mu     sync.Mutex
	tokens map[string]*storage.JoinToken
	err    error // returned by every call when set (storage down)
}

func (s *fakeJoinTokens) ConsumeJoinToken(_ context.Context, hash string, now time.Time) (storage.JoinToken, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return storage.JoinToken{}, s.err
	}
	t, ok := s.tokens[hash]
	switch {
	case !ok:
		return storage.JoinToken{}, storage.ErrNotFound
	case !t.UsedAt.IsZero():
		return *t, storage.ErrAlreadyUsed
	case !now.Before(t.ExpiresAt):
		return *t, storage.ErrExpired
	}
	t.UsedAt = now
	return *t, nil
}

// fakeClients is a client store.
type fakeClients struct {
	clients map[string]storage.Client
	err     error
}

func (s *fakeClients) GetClient(_ context.Context, id string) (storage.Client, error) {
	if s.err != nil {
		return storage.Client{}, s.err
	}
	c, ok := s.clients[id]
	if !ok {
		return storage.Client{}, storage.ErrNotFound
	}
	return c, nil
}

// fakeTokens maps raw access tokens to claims.
type fakeTokens struct {
	claims map[string]*auth.Claims
	err    error
}

func (v *fakeTokens) Authenticate(_ context.Context, token string) (*auth.Claims, error) {
	if v.err != nil {
		return nil, v.err
	}
	c, ok := v.claims[token]
	if !ok {
		return nil, auth.ErrInvalidToken
	}
	return c, nil
}

// harness is a running server with its fakes.
type harness struct {
	t       *testing.T
	ca      *fakeCA
	srv     *Server
	ts      *httptest.Server
	joins   *fakeJoinTokens
	clients *fakeClients
	tokens  *fakeTokens
	keyed   *secret.Keyed
	policy  atomic.Pointer[workload.Policy]
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	return newHarnessWith(t, nil)
}

// newHarnessWith is newHarness with opt (nil: none) applied to the deps and
// config before New.
func newHarnessWith(t *testing.T, opt func(*Deps, *Config)) *harness {
	t.Helper()
	keyed, err := secret.NewKeyed(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, ca: newFakeCA(t, testTD), joins: &fakeJoinTokens{tokens: map[string]*storage.JoinToken{}},
		clients: &fakeClients{clients: map[string]storage.Client{}}, tokens: &fakeTokens{claims: map[string]*auth.Claims{}},
		keyed: keyed}
	deps := Deps{CA: h.ca, JoinTokens: h.joins, Clients: h.clients, Tokens: h.tokens, Secrets: keyed,
		Policy: h.policy.Load, Now: h.ca.clock.Now}
	cfg := Config{SVIDTTL: time.Hour}
	if opt != nil {
		opt(&deps, &cfg)
	}
	h.srv, err = New(deps, cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.ts = httptest.NewUnstartedServer(h.srv.Handler())
	h.ts.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are expected
	h.ts.TLS = h.srv.TLSConfig()
	h.ts.StartTLS()
	// StartTLS adds httptest's own certificate, which Go prefers over
	// GetCertificate for clients without SNI (IP addresses): drop it so that
	// only the server's TLSConfig answers, as in production. No connection
	// exists yet, and the listener shares this *tls.Config.
	h.ts.TLS.Certificates = nil
	t.Cleanup(h.ts.Close)
	return h
}

// addJoinToken stores a join token for id and returns it.
func (h *harness) addJoinToken(id string, ttl time.Duration) string {
	tok := secret.New()
	now := time.Now()
	h.joins.mu.Lock()
	h.joins.tokens[hex.EncodeToString(h.keyed.Sum(tok))] = &storage.JoinToken{SPIFFEID: id, CreatedAt: now.Add(-time.Minute), ExpiresAt: now.Add(ttl)}
	h.joins.mu.Unlock()
	return tok
}

// client returns an HTTP client for the harness's server.
func (h *harness) client(chain []*x509.Certificate, key crypto.Signer) *http.Client {
	return tlsClient(func() *x509bundle.Bundle { b, _ := h.ca.Bundle(); return b }, chain, key)
}

// tlsClient returns an HTTP client that checks the server presents the
// CA's SVID (spiffe://<td>/gatehouse/ca, verified against bundle) and
// presents chain/key as its client certificate (none when chain is nil).
func tlsClient(bundle func() *x509bundle.Bundle, chain []*x509.Certificate, key crypto.Signer) *http.Client {
	cfg := &tls.Config{InsecureSkipVerify: true, //nolint:gosec // verified below as an SVID
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			id, _, err := x509svid.ParseAndVerify(raw, bundle())
			if err != nil {
				return err
			}
			if id.Path() != CAPath {
				return errors.New("unexpected server ID " + id.String())
			}
			return nil
		}}
	if chain != nil {
		cert := &tls.Certificate{PrivateKey: key, Leaf: chain[0]}
		for _, c := range chain {
			cert.Certificate = append(cert.Certificate, c.Raw)
		}
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: true}, Timeout: 10 * time.Second}
}

// csr returns a base64 CSR for key with the given template fields.
func csrB64(t testing.TB, key crypto.Signer, tmpl *x509.CertificateRequest) string {
	t.Helper()
	if tmpl == nil {
		tmpl = &x509.CertificateRequest{}
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(der)
}

// answer is a decoded response.
type answer struct {
	status int
	header http.Header
	body   map[string]any
	raw    []byte
}

func (a answer) code() string { s, _ := a.body["error"].(string); return s }

// do sends a request; authz is the Authorization header ("" for none).
func (h *harness) do(c *http.Client, method, path, authz, body string) answer {
	h.t.Helper()
	req, err := http.NewRequest(method, h.ts.URL+path, bytes.NewBufferString(body))
	if err != nil {
		h.t.Fatal(err)
	}
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, header: resp.Header, raw: raw}
	_ = json.Unmarshal(raw, &a.body)
	return a
}

// svidBody is the JSON request body for a fresh key; it returns the key.
func svidBody(t testing.TB) (string, *ecdsa.PrivateKey) {
	k := mustKey(t)
	return `{"csr":"` + csrB64(t, k, nil) + `"}`, k
}

// chainOf decodes an SVID answer's certificates.
func chainOf(t testing.TB, a answer) []*x509.Certificate {
	t.Helper()
	list, _ := a.body["x509_svid"].([]any)
	if len(list) != 2 {
		t.Fatalf("x509_svid: want 2 certificates, got %d (%s)", len(list), a.raw)
	}
	var out []*x509.Certificate
	for _, v := range list {
		der, err := base64.StdEncoding.DecodeString(v.(string))
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
