package caserver

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/hex"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/gatehouse/gatehouse/internal/ca"
	"github.com/gatehouse/gatehouse/internal/secret"
	"github.com/gatehouse/gatehouse/internal/storage"
	"github.com/gatehouse/gatehouse/internal/storage/sqlstore"
	"github.com/gatehouse/gatehouse/sdk/auth"
)

// TestRealCA runs the API on the real CA over SQLite: join token (MT-02 with
// the CA's own CSR handling), renewal, and MT-04 single use under
// concurrency with the store's compare-and-swap.
func TestRealCA(t *testing.T) {
	ctx := t.Context()
	st, err := sqlstore.Open(ctx, sqlstore.DriverSQLite, filepath.Join(t.TempDir(), "ca.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	core, err := ca.New(st, ca.Config{TrustDomain: testTD, KEK: bytes.Repeat([]byte{9}, 32)}, time.Now, quiet)
	if err != nil {
		t.Fatal(err)
	}
	if err := core.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(core.Stop)
	keyed, _ := secret.NewKeyed(bytes.Repeat([]byte{3}, 32))
	tokens := &fakeTokens{claims: map[string]*auth.Claims{"cc": {Subject: "svc", ClientID: "svc"}}}
	now := time.Now()
	if err := st.CreateClient(ctx, storage.Client{ID: "svc", Name: "svc", SecretHash: keyed.Sum("s"),
		GrantTypes: []string{"client_credentials"}, SPIFFEID: "spiffe://gatehouse.test/payments",
		CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	srv, err := New(Deps{CA: core, JoinTokens: st, Clients: st, Tokens: tokens, Secrets: keyed, Revocations: st, Log: quiet},
		Config{SVIDTTL: 10 * time.Minute, RevocationRefresh: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(srv.Handler())
	ts.Config.ErrorLog = log.New(io.Discard, "", 0)
	ts.TLS = srv.TLSConfig()
	ts.StartTLS()
	ts.TLS.Certificates = nil // see newHarness
	t.Cleanup(ts.Close)
	h := &harness{t: t, ts: ts, srv: srv, keyed: keyed}
	client := func(chain []*x509.Certificate, key crypto.Signer) *http.Client {
		return tlsClient(func() *x509bundle.Bundle { b, _ := core.Bundle(); return b }, chain, key)
	}
	bundle, _ := core.Bundle()
	newToken := func(id string) string {
		tok := secret.New()
		now := time.Now()
		if err := st.CreateJoinToken(ctx, storage.JoinToken{Hash: hex.EncodeToString(keyed.Sum(tok)), SPIFFEID: id,
			CreatedAt: now, ExpiresAt: now.Add(time.Minute)}); err != nil {
			t.Fatal(err)
		}
		return tok
	}

	// MT-02: a CSR asking for another ID, DNS names and CA:true gets only
	// the token's ID, as a leaf.
	key := mustKey(t)
	evil := &x509.CertificateRequest{DNSNames: []string{"payments.internal"},
		URIs: []*url.URL{spiffeid.RequireFromString("spiffe://gatehouse.test/payments").URL()}}
	tok := newToken("spiffe://gatehouse.test/orders")
	a := h.do(client(nil, nil), http.MethodPost, "/v1/svid", "JoinToken "+tok, `{"csr":"`+csrB64(t, key, evil)+`"}`)
	if a.status != http.StatusOK {
		t.Fatalf("join token on the real CA: %d %s", a.status, a.raw)
	}
	chain := chainOf(t, a)
	id, _, err := x509svid.Verify(chain, bundle)
	if err != nil || id.String() != "spiffe://gatehouse.test/orders" || len(chain[0].DNSNames) != 0 || chain[0].IsCA {
		t.Fatalf("issued SVID: %v %v DNS %v CA %v", id, err, chain[0].DNSNames, chain[0].IsCA)
	}

	// Renewal with the issued SVID.
	body, _ := svidBody(t)
	if a := h.do(client(chain, key), http.MethodPost, "/v1/svid", "", body); a.status != http.StatusOK {
		t.Fatalf("renewal on the real CA: %d %s", a.status, a.raw)
	}

	// Client credentials: the registered spiffe_id from the store.
	if a := h.do(client(nil, nil), http.MethodPost, "/v1/svid", "Bearer cc", body); a.status != http.StatusOK ||
		a.body["spiffe_id"] != "spiffe://gatehouse.test/payments" {
		t.Fatalf("client credentials on the real CA: %d %s", a.status, a.raw)
	}

	// MT-04: one token, concurrent requests, one SVID; reuse → 401.
	tok = newToken("spiffe://gatehouse.test/ledger")
	const n = 8
	statuses := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		c := client(nil, nil)
		wg.Go(func() { statuses[i] = h.do(c, http.MethodPost, "/v1/svid", "JoinToken "+tok, body).status })
	}
	wg.Wait()
	ok := 0
	for _, s := range statuses {
		if s == http.StatusOK {
			ok++
		} else if s != http.StatusUnauthorized {
			t.Errorf("status %d", s)
		}
	}
	if ok != 1 {
		t.Fatalf("%d of %d concurrent uses of one join token succeeded (%v)", ok, n, statuses)
	}

	// Revocation (stored in SQLite, the CA's real backdate): the SVID
	// issued before it is not renewed; a bootstrap after it renews. The
	// SVID's NotBefore has whole seconds, so the new bootstrap waits one.
	if err := st.RevokeSPIFFEID(ctx, "spiffe://gatehouse.test/orders", time.Now()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond)
	if a := h.do(client(chain, key), http.MethodPost, "/v1/svid", "", body); a.status != http.StatusUnauthorized || a.code() != "svid_revoked" {
		t.Fatalf("renewal after revocation on the real CA: %d %s", a.status, a.raw)
	}
	freshBody, freshKey := svidBody(t)
	a = h.do(client(nil, nil), http.MethodPost, "/v1/svid", "JoinToken "+newToken("spiffe://gatehouse.test/orders"), freshBody)
	if a.status != http.StatusOK {
		t.Fatalf("bootstrap after revocation: %d %s", a.status, a.raw)
	}
	if a := h.do(client(chainOf(t, a), freshKey), http.MethodPost, "/v1/svid", "", body); a.status != http.StatusOK {
		t.Fatalf("renewal of an SVID issued after the revocation: %d %s", a.status, a.raw)
	}
}
