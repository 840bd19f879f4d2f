package admin_test

import (
	"encoding/hex"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/gatehouse/gatehouse/internal/admin"
	"github.com/gatehouse/gatehouse/internal/admin/admintest"
	"github.com/gatehouse/gatehouse/internal/storage"
	"github.com/gatehouse/gatehouse/internal/testutil/syncbuf"
)

const joinTokensPath = "/admin/v1/join-tokens"

// TestMT04JoinTokenCreate: the token is random, shown once, stored only as
// its keyed hash, short-lived and never logged.
func TestMT04JoinTokenCreate(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name string
		body string
		ttl  time.Duration
	}{
		{"default-ttl", `{"spiffe_id":"spiffe://gatehouse.local/orders"}`, admin.DefaultJoinTokenTTL},
		{"explicit-ttl", `{"spiffe_id":"spiffe://gatehouse.local/orders","ttl":"1h"}`, time.Hour},
		{"min-ttl", `{"spiffe_id":"spiffe://gatehouse.local/a/b","ttl":"1m"}`, time.Minute},
		{"max-ttl", `{"spiffe_id":"spiffe://gatehouse.local/a","ttl":"24h"}`, 24 * time.Hour},
	}
	seen := map[string]bool{}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := e.do("POST", joinTokensPath, tc.body)
			wantStatus(t, w, 201)
			if cc := w.Header().Get("Cache-Control"); cc != "no-store" {
				t.Errorf("Cache-Control = %q", cc)
			}
			resp := decodeInto[admin.JoinTokenResponse](t, w)
			if len(resp.Token) < 43 || seen[resp.Token] {
				t.Fatalf("token %q is short or repeated", resp.Token)
			}
			seen[resp.Token] = true
			want := admintest.Now.Add(tc.ttl)
			if !resp.ExpiresAt.Equal(want) {
				t.Errorf("expires_at = %v, want %v", resp.ExpiresAt, want)
			}
			hash := hex.EncodeToString(e.secrets.Sum(resp.Token))
			var stored *storage.JoinToken
			for _, jt := range e.store.JoinTokens() {
				if jt.Hash == hash {
					stored = &jt
				}
				if jt.Hash == resp.Token || strings.Contains(jt.Hash, resp.Token) {
					t.Fatal("the plaintext token was stored")
				}
			}
			if stored == nil {
				t.Fatal("no stored token has the keyed hash of the returned token")
			}
			if stored.SPIFFEID != resp.SPIFFEID || !stored.CreatedAt.Equal(admintest.Now) ||
				!stored.ExpiresAt.Equal(want) || !stored.UsedAt.IsZero() {
				t.Errorf("stored %+v, response %+v", *stored, resp)
			}
			if strings.Contains(e.logs.String(), resp.Token) || strings.Contains(e.logs.String(), hash) {
				t.Error("the token or its hash reached the logs")
			}
			if !strings.Contains(e.logs.String(), "join token created") {
				t.Error("creation not logged")
			}
		})
	}
}

func TestJoinTokenValidation(t *testing.T) {
	tests := []struct {
		name   string
		body   string
		status int
		want   string // substring of error_description
	}{
		{"missing-spiffe-id", `{"ttl":"10m"}`, 400, "spiffe_id: required"},
		{"MT-01/no-path", `{"spiffe_id":"spiffe://gatehouse.local"}`, 400, "must have a path"},
		{"reserved-ca-identity", `{"spiffe_id":"spiffe://gatehouse.local/gatehouse/ca"}`, 400, "reserved for Gatehouse"},
		{"reserved-prefix", `{"spiffe_id":"spiffe://gatehouse.local/gatehouse"}`, 400, "reserved for Gatehouse"},
		{"MT-01/root-path", `{"spiffe_id":"spiffe://gatehouse.local/"}`, 400, "not a SPIFFE ID"},
		{"wrong-scheme", `{"spiffe_id":"https://gatehouse.local/orders"}`, 400, "not a SPIFFE ID"},
		{"upper-case-trust-domain", `{"spiffe_id":"spiffe://Gatehouse.local/orders"}`, 400, "not a SPIFFE ID"},
		{"dot-segment", `{"spiffe_id":"spiffe://gatehouse.local/a/../b"}`, 400, "not a SPIFFE ID"},
		{"trailing-slash", `{"spiffe_id":"spiffe://gatehouse.local/orders/"}`, 400, "not a SPIFFE ID"},
		{"query", `{"spiffe_id":"spiffe://gatehouse.local/orders?x=1"}`, 400, "not a SPIFFE ID"},
		{"userinfo", `{"spiffe_id":"spiffe://u@gatehouse.local/orders"}`, 400, "not a SPIFFE ID"},
		{"port", `{"spiffe_id":"spiffe://gatehouse.local:8443/orders"}`, 400, "not a SPIFFE ID"},
		{"too-long", `{"spiffe_id":"spiffe://gatehouse.local/` + strings.Repeat("a", 2048) + `"}`, 400, "longer than 2048"},
		{"MT-04/ttl-too-long", `{"spiffe_id":"spiffe://gatehouse.local/orders","ttl":"25h"}`, 400, "ttl: must be between"},
		{"MT-04/ttl-too-short", `{"spiffe_id":"spiffe://gatehouse.local/orders","ttl":"59s"}`, 400, "ttl: must be between"},
		{"MT-04/ttl-negative", `{"spiffe_id":"spiffe://gatehouse.local/orders","ttl":"-10m"}`, 400, "ttl: must be between"},
		{"ttl-not-duration", `{"spiffe_id":"spiffe://gatehouse.local/orders","ttl":"soon"}`, 400, "ttl:"},
		{"ttl-number", `{"spiffe_id":"spiffe://gatehouse.local/orders","ttl":600}`, 400, "ttl"},
		{"every-problem-listed", `{"spiffe_id":"spiffe://x","ttl":"48h"}`, 400, "spiffe_id"},
		{"unknown-field", `{"spiffe_id":"spiffe://gatehouse.local/orders","token":"chosen"}`, 400, "unknown field"},
		{"JWT-E02/duplicate-member", `{"spiffe_id":"spiffe://gatehouse.local/a","spiffe_id":"spiffe://gatehouse.local/b"}`, 400, "duplicate"},
		{"JWT-E02/case-variant-member", `{"SPIFFE_ID":"spiffe://gatehouse.local/a"}`, 400, ""},
		{"empty-body", ``, 415, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			w := e.do("POST", joinTokensPath, tc.body)
			wantStatus(t, w, tc.status)
			er := decodeInto[admin.ErrorResponse](t, w)
			if !strings.Contains(er.ErrorDescription, tc.want) {
				t.Errorf("error_description %q lacks %q", er.ErrorDescription, tc.want)
			}
			if n := len(e.store.JoinTokens()); n != 0 {
				t.Errorf("%d tokens stored", n)
			}
		})
	}
	t.Run("every-problem-listed/ttl", func(t *testing.T) {
		w := newEnv(t).do("POST", joinTokensPath, `{"spiffe_id":"spiffe://x","ttl":"48h"}`)
		if d := decodeInto[admin.ErrorResponse](t, w).ErrorDescription; !strings.Contains(d, "ttl:") {
			t.Errorf("error_description %q lacks the ttl problem", d)
		}
	})
}

// TestJoinTokensDisabled: without a JoinTokens store the endpoint does not
// exist.
func TestJoinTokensDisabled(t *testing.T) {
	d := admintest.NewFakes(t).Deps(nil)
	d.JoinTokens = nil
	h, err := admin.NewHandler(d)
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest("POST", joinTokensPath, strings.NewReader(`{"spiffe_id":"spiffe://gatehouse.local/a"}`))
	r.Header.Set("Authorization", "Bearer "+admintest.Token)
	r.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	wantStatus(t, w, 404)
	if er := decodeInto[admin.ErrorResponse](t, w); er.ErrorDescription != "no such endpoint" {
		t.Errorf("error = %+v", er)
	}
}

func TestJoinTokenConfiguredTTL(t *testing.T) {
	f := admintest.NewFakes(t)
	d := f.Deps(nil)
	for _, bad := range []time.Duration{time.Second, 25 * time.Hour, -time.Minute} {
		d.JoinTokenTTL = bad
		if _, err := admin.NewHandler(d); err == nil {
			t.Errorf("JoinTokenTTL %s accepted", bad)
		}
	}
	d.JoinTokenTTL = 30 * time.Minute
	h, err := admin.NewHandler(d)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, h: h, store: f.Store, keys: f.Keys, secrets: f.Secrets, logs: &syncbuf.Buffer{}}
	w := e.do("POST", joinTokensPath, `{"spiffe_id":"spiffe://gatehouse.local/orders"}`)
	wantStatus(t, w, 201)
	if got := decodeInto[admin.JoinTokenResponse](t, w).ExpiresAt; !got.Equal(admintest.Now.Add(30 * time.Minute)) {
		t.Errorf("expires_at = %v, want the configured default", got)
	}
}

func TestJoinTokenStoreErrors(t *testing.T) {
	e := newEnv(t)
	e.store.SetFail(fmt.Errorf("dial tcp 10.0.0.5:5432: %w", storage.ErrUnavailable))
	w := e.do("POST", joinTokensPath, `{"spiffe_id":"spiffe://gatehouse.local/orders"}`)
	wantStatus(t, w, 503)
	if strings.Contains(w.Body.String(), "10.0.0.5") {
		t.Errorf("cause leaked: %s", w.Body.String())
	}
}

func TestClientSPIFFEID(t *testing.T) {
	e := newEnv(t)
	const base = `"name":"Orders","grant_types":["client_credentials"],"audiences":["https://ca.internal"]`
	c := e.createClient(`{"id":"orders",` + base + `,"spiffe_id":"spiffe://gatehouse.local/orders"}`)
	if c.SPIFFEID != "spiffe://gatehouse.local/orders" || e.client("orders").SPIFFEID != c.SPIFFEID {
		t.Fatalf("created %+v, stored %q", c, e.client("orders").SPIFFEID)
	}
	if got := decodeInto[admin.ClientResponse](t, e.do("GET", "/admin/v1/clients/orders", "")); got.SPIFFEID != c.SPIFFEID {
		t.Errorf("GET spiffe_id = %q", got.SPIFFEID)
	}
	if got := decodeInto[admin.ClientList](t, e.do("GET", "/admin/v1/clients", "")); len(got.Clients) != 1 || got.Clients[0].SPIFFEID != c.SPIFFEID {
		t.Errorf("list = %+v", got)
	}
	// No spiffe_id: none in the JSON either.
	e.createClient(`{"id":"plain",` + base + `}`)
	if w := e.do("GET", "/admin/v1/clients/plain", ""); strings.Contains(w.Body.String(), "spiffe_id") {
		t.Errorf("empty spiffe_id shown: %s", w.Body.String())
	}

	w := e.do("PATCH", "/admin/v1/clients/orders", `{"spiffe_id":"spiffe://gatehouse.local/orders/v2"}`)
	wantStatus(t, w, 200)
	if e.client("orders").SPIFFEID != "spiffe://gatehouse.local/orders/v2" {
		t.Error("patch not stored")
	}
	wantStatus(t, e.do("PATCH", "/admin/v1/clients/orders", `{"spiffe_id":"spiffe://gatehouse.local"}`), 400)
	if e.client("orders").SPIFFEID != "spiffe://gatehouse.local/orders/v2" {
		t.Error("invalid patch stored")
	}
	wantStatus(t, e.do("PATCH", "/admin/v1/clients/orders", `{"name":"Renamed"}`), 200)
	if e.client("orders").SPIFFEID == "" {
		t.Error("a patch without spiffe_id removed it")
	}
	wantStatus(t, e.do("PATCH", "/admin/v1/clients/orders", `{"spiffe_id":""}`), 200)
	if e.client("orders").SPIFFEID != "" {
		t.Error("empty spiffe_id did not remove it")
	}

	for _, tc := range []struct{ name, body, want string }{
		{"MT-01/no-path", `{` + base + `,"spiffe_id":"spiffe://gatehouse.local"}`, "must have a path"},
		{"not-spiffe", `{` + base + `,"spiffe_id":"orders"}`, "not a SPIFFE ID"},
		{"too-long", `{` + base + `,"spiffe_id":"spiffe://gatehouse.local/` + strings.Repeat("a", 2048) + `"}`, "longer than 2048"},
		{"public-client", `{"name":"SPA","public":true,"redirect_uris":["https://a.example/cb"],"spiffe_id":"spiffe://gatehouse.local/spa"}`, "public clients"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			w := e.do("POST", "/admin/v1/clients", tc.body)
			wantStatus(t, w, 400)
			if d := decodeInto[admin.ErrorResponse](t, w).ErrorDescription; !strings.Contains(d, tc.want) {
				t.Errorf("error_description %q lacks %q", d, tc.want)
			}
			if e.nClients() != 0 {
				t.Error("invalid client stored")
			}
		})
	}
}

// TestMT01TrustDomain: with a trust domain configured, SPIFFE IDs of another
// trust domain are refused for join tokens and clients.
func TestMT01TrustDomain(t *testing.T) {
	f := admintest.NewFakes(t)
	d := f.Deps(nil)
	d.TrustDomain = spiffeid.RequireTrustDomainFromString("gatehouse.local")
	h, err := admin.NewHandler(d)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, h: h, store: f.Store, keys: f.Keys, secrets: f.Secrets, logs: &syncbuf.Buffer{}}
	const base = `"name":"Orders","grant_types":["client_credentials"]`
	tests := []struct {
		name, method, path, body string
		status                   int
	}{
		{"join-token/other-domain", "POST", joinTokensPath, `{"spiffe_id":"spiffe://evil.example/orders"}`, 400},
		{"join-token/suffix-domain", "POST", joinTokensPath, `{"spiffe_id":"spiffe://gatehouse.local.evil/orders"}`, 400},
		{"join-token/own-domain", "POST", joinTokensPath, `{"spiffe_id":"spiffe://gatehouse.local/orders"}`, 201},
		{"client/other-domain", "POST", "/admin/v1/clients", `{"id":"a",` + base + `,"spiffe_id":"spiffe://evil.example/a"}`, 400},
		{"client/own-domain", "POST", "/admin/v1/clients", `{"id":"b",` + base + `,"spiffe_id":"spiffe://gatehouse.local/b"}`, 201},
		{"patch/other-domain", "PATCH", "/admin/v1/clients/b", `{"spiffe_id":"spiffe://evil.example/b"}`, 400},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := e.do(tc.method, tc.path, tc.body)
			wantStatus(t, w, tc.status)
			if tc.status == 400 && !strings.Contains(w.Body.String(), "trust domain gatehouse.local") {
				t.Errorf("body %s", w.Body.String())
			}
		})
	}
	if c := e.client("b"); c.SPIFFEID != "spiffe://gatehouse.local/b" {
		t.Errorf("stored spiffe_id = %q", c.SPIFFEID)
	}
}
