package caserver

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/gatehouse/gatehouse/internal/ca"
	"github.com/gatehouse/gatehouse/internal/secret"
	"github.com/gatehouse/gatehouse/internal/storage"
	"github.com/gatehouse/gatehouse/sdk/auth"
)

func TestNewRequiresDeps(t *testing.T) {
	_, err := New(Deps{}, Config{})
	if err == nil {
		t.Fatal("New with no deps: want an error")
	}
	for _, want := range []string{"CA", "JoinTokens", "Clients", "Tokens", "Secrets"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
}

func TestBundle(t *testing.T) {
	h := newHarness(t)
	c := h.client(nil, nil)
	a := h.do(c, http.MethodGet, "/v1/bundle", "", "")
	if a.status != http.StatusOK || a.header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET /v1/bundle: %d %s", a.status, a.raw)
	}
	keys, _ := a.body["keys"].([]any)
	if len(keys) != 1 || keys[0].(map[string]any)["use"] != "x509-svid" {
		t.Fatalf("bundle keys: %s", a.raw)
	}
	if a := h.do(c, http.MethodPost, "/v1/bundle", "", ""); a.status != http.StatusMethodNotAllowed || a.header.Get("Allow") != "GET" {
		t.Fatalf("POST /v1/bundle: %d %v", a.status, a.header)
	}
	if a := h.do(c, http.MethodGet, "/v1/nothing", "", ""); a.status != http.StatusNotFound || a.code() != "not_found" {
		t.Fatalf("GET /v1/nothing: %d %s", a.status, a.raw)
	}
}

// TestTLSConfig: the listener serves the CA's own SVID and refuses TLS < 1.2.
func TestTLSConfig(t *testing.T) {
	h := newHarness(t)
	resp, err := h.client(nil, nil).Get(h.ts.URL + "/v1/bundle")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	id, err := x509svid.IDFromCert(resp.TLS.PeerCertificates[0])
	if err != nil || id.String() != "spiffe://gatehouse.test/gatehouse/ca" {
		t.Fatalf("server ID %v, %v", id, err)
	}
	old := h.client(nil, nil)
	old.Transport.(*http.Transport).TLSClientConfig.MaxVersion = 0x0302 // TLS 1.1
	if resp, err := old.Get(h.ts.URL + "/v1/bundle"); err == nil {
		resp.Body.Close()
		t.Fatal("TLS 1.1 handshake succeeded")
	}
}

// TestServingCertRenewal: renewed at half-life, single-flight, and the old
// certificate keeps serving while the CA is down.
func TestServingCertRenewal(t *testing.T) {
	h := newHarness(t)
	first, err := h.srv.certs.get(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := h.srv.certs.get(t.Context()); again != first {
		t.Fatal("certificate renewed before half-life")
	}
	base := h.ca.issued.Load()
	h.ca.clock.Advance(31 * time.Minute)
	var wg sync.WaitGroup
	certs := make([]any, 16)
	for i := range certs {
		wg.Go(func() {
			c, err := h.srv.certs.get(t.Context())
			if err != nil {
				t.Error(err)
			}
			certs[i] = c
		})
	}
	wg.Wait()
	if n := h.ca.issued.Load() - base; n != 1 {
		t.Fatalf("renewal issued %d certificates, want 1 (single-flight)", n)
	}
	renewed, _ := h.srv.certs.get(t.Context())
	if renewed == first {
		t.Fatal("certificate not renewed after half-life")
	}
	// CA down past the next half-life: the current certificate serves on.
	down := ca.ErrNotReady
	h.ca.issueErr.Store(&down)
	h.ca.clock.Advance(31 * time.Minute)
	if c, err := h.srv.certs.get(t.Context()); err != nil || c != renewed {
		t.Fatalf("CA down: got %v, %v; want the current certificate", c, err)
	}
}

func TestJoinToken(t *testing.T) {
	h := newHarness(t)
	tok := h.addJoinToken("spiffe://gatehouse.test/orders", 10*time.Minute)
	body, key := svidBody(t)
	a := h.do(h.client(nil, nil), http.MethodPost, "/v1/svid", "JoinToken "+tok, body)
	if a.status != http.StatusOK {
		t.Fatalf("join token: %d %s", a.status, a.raw)
	}
	if a.header.Get("Cache-Control") != "no-store" {
		t.Errorf("Cache-Control %q", a.header.Get("Cache-Control"))
	}
	if a.body["spiffe_id"] != "spiffe://gatehouse.test/orders" {
		t.Errorf("spiffe_id %v", a.body["spiffe_id"])
	}
	if _, err := time.Parse(time.RFC3339, a.body["expires_at"].(string)); err != nil {
		t.Errorf("expires_at: %v", err)
	}
	if b, _ := a.body["bundle"].(map[string]any); b == nil || b["keys"] == nil {
		t.Errorf("bundle: %s", a.raw)
	}
	chain := chainOf(t, a)
	bundle, _ := h.ca.Bundle()
	id, _, err := x509svid.Verify(chain, bundle)
	if err != nil || id.String() != "spiffe://gatehouse.test/orders" {
		t.Fatalf("issued SVID: %v %v", id, err)
	}
	if !sameKey(chain[0].PublicKey, key.Public()) {
		t.Fatal("issued SVID is not for the CSR's key")
	}
}

// TestMT04JoinTokenSingleUse: a join token is single use, over HTTP too, and
// every failure has the same answer.
func TestMT04JoinTokenSingleUse(t *testing.T) {
	h := newHarness(t)
	c := h.client(nil, nil)
	const msg = "join token is invalid, expired or already used"
	tok := h.addJoinToken("spiffe://gatehouse.test/orders", time.Minute)
	body, _ := svidBody(t)
	if a := h.do(c, http.MethodPost, "/v1/svid", "JoinToken "+tok, body); a.status != http.StatusOK {
		t.Fatalf("first use: %d %s", a.status, a.raw)
	}
	expired := h.addJoinToken("spiffe://gatehouse.test/orders", -time.Second)
	for name, tk := range map[string]string{"reused": tok, "expired": expired, "unknown": secret.New()} {
		a := h.do(c, http.MethodPost, "/v1/svid", "JoinToken "+tk, body)
		if a.status != http.StatusUnauthorized || a.code() != "invalid_token" || a.body["error_description"] != msg {
			t.Errorf("%s token: %d %s", name, a.status, a.raw)
		}
	}
}

// TestMT04ConcurrentJoinToken: of concurrent requests with one join token
// exactly one gets an SVID.
func TestMT04ConcurrentJoinToken(t *testing.T) {
	h := newHarness(t)
	tok := h.addJoinToken("spiffe://gatehouse.test/orders", time.Minute)
	body, _ := svidBody(t)
	const n = 12
	statuses := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		c := h.client(nil, nil)
		wg.Go(func() { statuses[i] = h.do(c, http.MethodPost, "/v1/svid", "JoinToken "+tok, body).status })
	}
	wg.Wait()
	ok := 0
	for _, s := range statuses {
		switch s {
		case http.StatusOK:
			ok++
		case http.StatusUnauthorized:
		default:
			t.Errorf("unexpected status %d", s)
		}
	}
	if ok != 1 {
		t.Fatalf("%d requests succeeded with one join token, want exactly 1 (%v)", ok, statuses)
	}
}

// TestMT02CSRFieldsIgnored: the identity comes from the credential; the
// CSR's SANs and other fields do not reach the SVID. A CSR with a weak key
// is refused before the join token is spent.
func TestMT02CSRFieldsIgnored(t *testing.T) {
	h := newHarness(t)
	c := h.client(nil, nil)
	tok := h.addJoinToken("spiffe://gatehouse.test/orders", time.Minute)

	weak, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	a := h.do(c, http.MethodPost, "/v1/svid", "JoinToken "+tok, `{"csr":"`+csrB64(t, weak, nil)+`"}`)
	if a.status != http.StatusBadRequest || a.code() != "invalid_csr" {
		t.Fatalf("RSA-1024 CSR: %d %s", a.status, a.raw)
	}

	key := mustKey(t)
	evil := &x509.CertificateRequest{DNSNames: []string{"payments.internal"}, EmailAddresses: []string{"a@b.c"},
		URIs: []*url.URL{spiffeid.RequireFromString("spiffe://gatehouse.test/payments").URL(),
			spiffeid.RequireFromString("spiffe://gatehouse.test/gatehouse/ca").URL()}}
	a = h.do(c, http.MethodPost, "/v1/svid", "JoinToken "+tok, `{"csr":"`+csrB64(t, key, evil)+`"}`)
	if a.status != http.StatusOK {
		t.Fatalf("CSR with extra SANs (token still unspent): %d %s", a.status, a.raw)
	}
	leaf := chainOf(t, a)[0]
	if len(leaf.URIs) != 1 || leaf.URIs[0].String() != "spiffe://gatehouse.test/orders" || len(leaf.DNSNames)+len(leaf.EmailAddresses) != 0 {
		t.Fatalf("SVID SANs: URIs %v DNS %v email %v", leaf.URIs, leaf.DNSNames, leaf.EmailAddresses)
	}
	// Reserved IDs are never issued through the API.
	caTok := h.addJoinToken("spiffe://gatehouse.test/gatehouse/ca", time.Minute)
	if a := h.do(c, http.MethodPost, "/v1/svid", "JoinToken "+caTok, `{"csr":"`+csrB64(t, key, nil)+`"}`); a.status != http.StatusForbidden {
		t.Fatalf("join token for the CA's ID: %d %s", a.status, a.raw)
	}
}

func TestClientCredentials(t *testing.T) {
	h := newHarness(t)
	c := h.client(nil, nil)
	h.clients.clients["svc"] = storage.Client{ID: "svc", SPIFFEID: "spiffe://gatehouse.test/payments"}
	h.clients.clients["nospiffe"] = storage.Client{ID: "nospiffe"}
	h.clients.clients["foreign"] = storage.Client{ID: "foreign", SPIFFEID: "spiffe://other.test/payments"}
	cc := func(client string) *auth.Claims { return &auth.Claims{Subject: client, ClientID: client} }
	h.tokens.claims["ok"] = cc("svc")
	h.tokens.claims["user"] = &auth.Claims{Subject: "u1", ClientID: "svc"}
	h.tokens.claims["gid"] = &auth.Claims{Subject: "svc", ClientID: "svc", Extra: map[string]json.RawMessage{"gid": json.RawMessage(`"g"`)}}
	h.tokens.claims["act"] = &auth.Claims{Subject: "svc", ClientID: "svc", Extra: map[string]json.RawMessage{"act": json.RawMessage(`{"sub":"gw"}`)}}
	h.tokens.claims["nospiffe"] = cc("nospiffe")
	h.tokens.claims["foreign"] = cc("foreign")
	h.tokens.claims["deleted"] = cc("deleted")
	body, _ := svidBody(t)

	a := h.do(c, http.MethodPost, "/v1/svid", "Bearer ok", body)
	if a.status != http.StatusOK || a.body["spiffe_id"] != "spiffe://gatehouse.test/payments" {
		t.Fatalf("client credentials: %d %s", a.status, a.raw)
	}
	for _, tc := range []struct {
		token  string
		status int
		code   string
	}{
		{"user", http.StatusForbidden, "unauthorized_client"},
		{"gid", http.StatusForbidden, "unauthorized_client"},
		{"act", http.StatusForbidden, "unauthorized_client"},
		{"nospiffe", http.StatusForbidden, "unauthorized_client"},
		{"foreign", http.StatusForbidden, "unauthorized_client"},
		{"deleted", http.StatusUnauthorized, "invalid_token"},
		{"forged", http.StatusUnauthorized, "invalid_token"},
	} {
		a := h.do(c, http.MethodPost, "/v1/svid", "Bearer "+tc.token, body)
		if a.status != tc.status || a.code() != tc.code {
			t.Errorf("token %s: %d %s; want %d %s", tc.token, a.status, a.raw, tc.status, tc.code)
		}
	}
	h.tokens.err = fmt.Errorf("%w: keys not loaded", auth.ErrUnavailable)
	if a := h.do(c, http.MethodPost, "/v1/svid", "Bearer ok", body); a.status != http.StatusServiceUnavailable {
		t.Errorf("verifier without keys: %d %s", a.status, a.raw)
	}
	h.tokens.err = nil
	h.clients.err = fmt.Errorf("%w: connection refused", storage.ErrUnavailable)
	if a := h.do(c, http.MethodPost, "/v1/svid", "Bearer ok", body); a.status != http.StatusServiceUnavailable || a.code() != "temporarily_unavailable" {
		t.Errorf("client store down: %d %s", a.status, a.raw)
	}
}

func TestRenewal(t *testing.T) {
	h := newHarness(t)
	tok := h.addJoinToken("spiffe://gatehouse.test/orders", time.Minute)
	body, key := svidBody(t)
	a := h.do(h.client(nil, nil), http.MethodPost, "/v1/svid", "JoinToken "+tok, body)
	if a.status != http.StatusOK {
		t.Fatalf("bootstrap: %d %s", a.status, a.raw)
	}
	mtls := h.client(chainOf(t, a), key)
	body2, key2 := svidBody(t)
	a = h.do(mtls, http.MethodPost, "/v1/svid", "", body2)
	if a.status != http.StatusOK || a.body["spiffe_id"] != "spiffe://gatehouse.test/orders" {
		t.Fatalf("renewal: %d %s", a.status, a.raw)
	}
	if !sameKey(chainOf(t, a)[0].PublicKey, key2.Public()) {
		t.Fatal("renewed SVID is not for the new key")
	}
	// An SVID and a token at once: several credentials.
	tok2 := h.addJoinToken("spiffe://gatehouse.test/payments", time.Minute)
	if a := h.do(mtls, http.MethodPost, "/v1/svid", "JoinToken "+tok2, body2); a.status != http.StatusBadRequest || a.code() != "invalid_request" {
		t.Fatalf("SVID + join token: %d %s", a.status, a.raw)
	}
}

func TestStorageDown(t *testing.T) {
	h := newHarness(t)
	c := h.client(nil, nil)
	body, _ := svidBody(t)
	h.joins.err = fmt.Errorf("%w: dial tcp: connection refused", storage.ErrUnavailable)
	tok := h.addJoinToken("spiffe://gatehouse.test/orders", time.Minute)
	a := h.do(c, http.MethodPost, "/v1/svid", "JoinToken "+tok, body)
	if a.status != http.StatusServiceUnavailable || a.code() != "temporarily_unavailable" || a.header.Get("Retry-After") == "" {
		t.Fatalf("storage down: %d %v %s", a.status, a.header, a.raw)
	}
	h.joins.err = nil
	// The CA not ready: 503 as well (the join token is spent by then).
	notReady := fmt.Errorf("wrapped: %w", ca.ErrNotReady)
	h.ca.issueErr.Store(&notReady)
	if a := h.do(c, http.MethodPost, "/v1/svid", "JoinToken "+tok, body); a.status != http.StatusServiceUnavailable {
		t.Fatalf("CA not ready: %d %s", a.status, a.raw)
	}
	other := errors.New("boom")
	h.ca.issueErr.Store(&other)
	tok = h.addJoinToken("spiffe://gatehouse.test/orders", time.Minute)
	if a := h.do(c, http.MethodPost, "/v1/svid", "JoinToken "+tok, body); a.status != http.StatusInternalServerError || strings.Contains(string(a.raw), "boom") {
		t.Fatalf("CA failure: %d %s", a.status, a.raw)
	}
}
