package authz

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gatehouse/gatehouse/internal/authz/decisionlog"
	"github.com/gatehouse/gatehouse/internal/authz/policy"
	"github.com/gatehouse/gatehouse/internal/rebac"
	"github.com/gatehouse/gatehouse/internal/storage"
	"github.com/gatehouse/gatehouse/internal/storage/sqlstore"
	"github.com/gatehouse/gatehouse/sdk/auth"
)

const (
	testIssuer     = "https://idp.test"
	otherIssuer    = "https://other-idp.test"
	callerAudience = "gatehouse-authz"
	apiAudience    = "orders-api"
)

var (
	testKey  = []byte("0123456789abcdef0123456789abcdef-test-key")
	otherKey = []byte("fedcba9876543210fedcba9876543210-other-key")
)

// relSchema is the ReBAC schema of docs/authz.md.
const relSchema = `
definition user {}
definition client {}
definition team {
  relation member: user | team#member
  relation manager: user
}
definition order {
  relation owner: user
  relation team: team
  relation blocked: user
  permission view = owner + team->manager
  permission delete = owner - blocked
  permission pay = owner & team->member
}
`

// seed is the Alice world: alice owns o-1001 (team eng, of which she is a
// member); bob owns o-2001 of team eng, which alice manages; o-1002 is
// alice's shipped order.
var seed = []string{
	"order:o-1001#owner@user:usr_alice",
	"order:o-1001#team@team:eng",
	"team:eng#member@user:usr_alice",
	"team:eng#member@user:usr_bob",
	"team:eng#manager@user:usr_alice",
	"order:o-2001#owner@user:usr_bob",
	"order:o-2001#team@team:eng",
	"order:o-1002#owner@user:usr_alice",
}

// mint signs claims as an HS256 at+jwt with key.
func mint(t testing.TB, key []byte, claims map[string]any) string {
	t.Helper()
	enc := base64.RawURLEncoding
	h, _ := json.Marshal(map[string]string{"alg": "HS256", "typ": "at+jwt"})
	p, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	in := enc.EncodeToString(h) + "." + enc.EncodeToString(p)
	m := hmac.New(sha256.New, key)
	m.Write([]byte(in))
	return in + "." + enc.EncodeToString(m.Sum(nil))
}

// userToken is a principal token for sub with extra claims.
func userToken(t testing.TB, sub string, extra map[string]any) string {
	now := time.Now()
	c := map[string]any{"iss": testIssuer, "sub": sub, "aud": apiAudience, "client_id": "orders-web",
		"email": "alice@example.com", "exp": now.Add(10 * time.Minute).Unix(), "iat": now.Unix(), "jti": sub + "-j"}
	for k, v := range extra {
		c[k] = v
	}
	return mint(t, testKey, c)
}

// callerToken is an API caller token (client credentials) with scopes.
func callerToken(t testing.TB, scopes ...string) string {
	now := time.Now()
	return mint(t, testKey, map[string]any{"iss": testIssuer, "sub": "orders-svc", "client_id": "orders-svc",
		"aud": callerAudience, "scope": strings.Join(scopes, " "),
		"exp": now.Add(10 * time.Minute).Unix(), "iat": now.Unix(), "jti": "c-" + strings.Join(scopes, "-")})
}

func verifier(t testing.TB, audience string) *auth.Verifier {
	t.Helper()
	v, err := auth.NewVerifier(auth.VerifierConfig{Issuers: []auth.IssuerConfig{{Issuer: testIssuer, Audience: audience, HMACKey: testKey}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	return v
}

func loadSet(t testing.TB, dir string) *policy.Set {
	t.Helper()
	set, err := policy.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	return set
}

// env is a Service over real parts: SQLite in memory, the rebac checker,
// the demo policies, HS256 verifiers and a decision log.
type env struct {
	svc   *Service
	store *sqlstore.Store
	reg   *prometheus.Registry
	log   *decisionlog.Logger
	srv   *httptest.Server
	opts  Options
}

func newEnv(t testing.TB, mutate ...func(*Options)) *env {
	t.Helper()
	return newEnvWith(t, seed, mutate...)
}

// newEnvWith is newEnv with the given initial tuples (none: an empty store).
func newEnvWith(t testing.TB, tuples []string, mutate ...func(*Options)) *env {
	t.Helper()
	store, err := sqlstore.Open(context.Background(), sqlstore.DriverSQLite, "file::memory:")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	e := &env{store: store, reg: prometheus.NewRegistry()}
	e.log, err = decisionlog.New(decisionlog.Config{Writer: io.Discard, Sample: 1, Ring: 1000}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.log.Close() })
	e.opts = Options{
		Policies:   policy.NewHolder(loadSet(t, "policy/testdata/demo")),
		Store:      store,
		Checker:    newChecker(t, store, rebacLimits()),
		Callers:    verifier(t, callerAudience),
		Principals: verifier(t, apiAudience),
		Log:        e.log,
		Registerer: e.reg,
		// Generous budgets: the suite runs under -race on loaded machines;
		// the budget tests set their own.
		DecisionTimeout: 10 * time.Second,
	}
	for _, m := range mutate {
		m(&e.opts)
	}
	e.svc, err = New(e.opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(tuples) > 0 {
		e.write(t, tuples...)
	}
	e.srv = httptest.NewServer(e.svc.Handler())
	t.Cleanup(e.srv.Close)
	return e
}

func newChecker(t testing.TB, r rebac.Reader, l rebac.Limits) *rebac.Checker {
	t.Helper()
	return newCheckerOf(t, relSchema, r, l)
}

func newCheckerOf(t testing.TB, src string, r rebac.Reader, l rebac.Limits) *rebac.Checker {
	t.Helper()
	schema, err := rebac.ParseSchema("schema.zed", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return rebac.NewChecker(schema, r, l)
}

// write touches tuples directly in the store (another replica's write: the
// service learns of it through its poller or a token).
func (e *env) write(t testing.TB, tuples ...string) storage.Revision {
	t.Helper()
	var ws []storage.TupleWrite
	for _, s := range tuples {
		tp, err := rebac.ParseTuple(s)
		if err != nil {
			t.Fatal(err)
		}
		ws = append(ws, storage.TupleWrite{Op: storage.TupleTouch, Tuple: tp})
	}
	rev, err := e.store.WriteTuples(context.Background(), ws)
	if err != nil {
		t.Fatal(err)
	}
	return rev
}

// do sends a request with the caller token tok and decodes the JSON answer.
func (e *env) do(t testing.TB, method, path, tok string, body any) (int, map[string]any, http.Header) {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("%s %s: status %d, non-JSON answer %q", method, path, resp.StatusCode, raw)
	}
	return resp.StatusCode, out, resp.Header
}

// authorize posts body to /authorize with a check-scoped caller.
func (e *env) authorize(t testing.TB, body any) (int, map[string]any) {
	t.Helper()
	st, out, _ := e.do(t, http.MethodPost, "/authorize", callerToken(t, ScopeCheck), body)
	return st, out
}

func principal(id, tenant string, roles ...string) map[string]any {
	if roles == nil {
		roles = []string{}
	}
	return map[string]any{"type": "user", "id": id, "tenant": tenant, "roles": roles}
}

func order(id, tenant, status string) map[string]any {
	return map[string]any{"type": "order", "id": id, "tenant": tenant, "attrs": map[string]any{"status": status}}
}

func entity(typ, id string) policy.Entity {
	return policy.Entity{Type: typ, ID: id, Attrs: map[string]any{"roles": []any{}, "tenant": "acme"}}
}

func orderEntity(id, status string) policy.Entity {
	return policy.Entity{Type: "order", ID: id, Attrs: map[string]any{"status": status, "tenant": "acme"}}
}

// rebacLimits are the checker's test limits: defaults, but a time budget
// that a loaded CI machine cannot exceed by accident.
func rebacLimits() rebac.Limits { return rebac.Limits{Timeout: 10 * time.Second} }
