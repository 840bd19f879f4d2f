package e2e

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/examples/demo"
	"github.com/gatehouse/gatehouse/examples/nativelogin"
	"github.com/gatehouse/gatehouse/internal/storage"
)

// The demo's APIs and scopes, as gatehouse dev registers them.
const (
	ordersAPI   = "https://api.orders.example"
	paymentsAPI = "https://api.payments.example"
	demoScopes  = "openid orders:read orders:write payments:write"
)

// aliceWorld is a Gatehouse with the demo's users and clients, and the demo
// orders and payments services running against it with the SDK.
type aliceWorld struct {
	e                 *Env
	orders, payments  *httptest.Server
	ordersURL, payURL string
}

// seedAlice adds what gatehouse dev seeds for the demo: alice and bob with
// role user, carol with role admin, the public CLI client demo-cli and the
// confidential billing client demo-billing (payments only).
func (e *Env) seedAlice(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	now := time.Now()
	for _, id := range []string{"usr_alice", "usr_bob"} {
		if err := e.Store.UpdateUser(ctx, id, func(u storage.User) (storage.User, error) {
			u.Roles = []string{"user"}
			return u, nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	h, err := e.App.Passwords.Hash(alicePassword)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Store.CreateUser(ctx, storage.User{ID: "usr_carol", Username: "carol", Name: "Carol", Email: "carol@example.com",
		EmailVerified: true, PasswordHash: h, Roles: []string{"admin"}, Tenant: "acme", CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	secret := "ghs_" + strings.NewReplacer("+", "-", "/", "_", "=", "").Replace(randB64(32))
	e.Secrets["demo-billing"] = secret
	for _, c := range []storage.Client{
		{ID: "demo-cli", Name: "Demo CLI", Public: true, FirstParty: true, RedirectURIs: []string{"http://127.0.0.1/callback"},
			GrantTypes: []string{"authorization_code", "refresh_token"}, Scopes: strings.Fields(demoScopes),
			Audiences: []string{ordersAPI, paymentsAPI}},
		{ID: "demo-billing", Name: "Demo billing", SecretHash: e.App.Secrets.Sum(secret), GrantTypes: []string{"client_credentials"},
			Scopes: []string{"payments:write"}, Audiences: []string{paymentsAPI}},
	} {
		c.CreatedAt, c.UpdatedAt = now, now
		if err := e.Store.CreateClient(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
}

// startAliceWorld seeds e and starts orders and payments with real SDK
// verifiers trusting e's issuer (keys over HTTP from its JWKS).
func startAliceWorld(t *testing.T, e *Env) *aliceWorld {
	t.Helper()
	e.seedAlice(t)
	w := &aliceWorld{e: e}
	w.orders, w.payments = httptest.NewUnstartedServer(nil), httptest.NewUnstartedServer(nil)
	w.ordersURL, w.payURL = "http://"+w.orders.Listener.Addr().String(), "http://"+w.payments.Listener.Addr().String()
	// The services log into the env's buffer, so the leak check covers them.
	log := slog.New(slog.NewJSONHandler(e.Logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg := demo.Config{Issuer: e.Issuer, OrdersURL: w.ordersURL, PaymentsURL: w.payURL, Logger: log}
	o, err := demo.NewOrders(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(o.Close)
	p, err := demo.NewPayments(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	w.orders.Config.Handler, w.payments.Config.Handler = o.Handler, p.Handler
	w.orders.Start()
	w.payments.Start()
	t.Cleanup(w.orders.Close)
	t.Cleanup(w.payments.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, s := range []*demo.Service{o, p} {
		if err := s.Verifier.WaitReady(ctx); err != nil {
			t.Fatalf("the services never got the issuer's keys: %v", err)
		}
	}
	return w
}

// login signs username in with the demo's terminal login (examples/
// nativelogin): code flow with PKCE and a loopback redirect, the browser
// being the harness's form-filling client. It returns the access token.
func (w *aliceWorld) login(t *testing.T, username string) string {
	t.Helper()
	browser := w.e.browser()
	tok, err := nativelogin.Login(t.Context(), nativelogin.Config{
		Issuer: w.e.Issuer, ClientID: "demo-cli", Scopes: strings.Fields(demoScopes),
		Resources: []string{ordersAPI, paymentsAPI}, ForceLogin: true, Timeout: 30 * time.Second,
		OpenURL: func(authURL string) error {
			u, err := url.Parse(authURL)
			if err != nil {
				return err
			}
			if u.Query().Get("prompt") != "login" || u.Query().Get("code_challenge_method") != "S256" {
				t.Errorf("login URL lacks prompt=login or PKCE: %s", u.Redacted())
			}
			loc := w.e.authorize(t, browser, u.Query(), username, alicePassword)
			// The browser follows the redirect to the loopback callback.
			resp, err := http.Get(loc.String())
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("callback answered %d", resp.StatusCode)
			}
			return nil
		},
	})
	if err != nil {
		t.Fatalf("login as %s: %v", username, err)
	}
	w.e.remember(tok.AccessToken, tok.RefreshToken)
	return tok.AccessToken
}

// reply is a decoded answer of a demo service.
type reply struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

// call sends method url with token (if any) and an optional JSON body.
func call(t *testing.T, method, u, token, body string) reply {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	r := reply{status: resp.StatusCode, header: resp.Header, body: map[string]any{}, raw: string(b)}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") && len(b) > 0 {
		if err := json.Unmarshal(b, &r.body); err != nil {
			t.Fatalf("%s %s: not JSON: %.200s", method, u, b)
		}
	}
	return r
}

// orderIDs lists the ids of a GET /orders answer.
func orderIDs(r reply) string {
	var ids []string
	list, _ := r.body["orders"].([]any)
	for _, o := range list {
		if m, ok := o.(map[string]any); ok {
			ids = append(ids, str(m["id"]))
		}
	}
	return strings.Join(ids, ",")
}
