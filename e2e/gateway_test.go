package e2e

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/examples/demo"
	"github.com/gatehouse/gatehouse/examples/nativelogin"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/gateway"
	"github.com/gatehouse/gatehouse/internal/storage"
)

// upstreamLog counts the requests a demo service receives and keeps their
// headers, so a test can tell who decided: the gateway alone, or the
// service behind it.
type upstreamLog struct {
	mu   sync.Mutex
	hdrs []http.Header
}

func (u *upstreamLog) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.hdrs = append(u.hdrs, r.Header.Clone())
		u.mu.Unlock()
		h.ServeHTTP(w, r)
	})
}

func (u *upstreamLog) count() int { u.mu.Lock(); defer u.mu.Unlock(); return len(u.hdrs) }

// since returns the headers of the requests after the first n.
func (u *upstreamLog) since(n int) []http.Header {
	u.mu.Lock()
	defer u.mu.Unlock()
	return slices.Clone(u.hdrs[n:])
}

// gatewayWorld is the Alice world with the gateway in front: the demo
// services behind recorders, and gatehouse dev's gateway routes.
type gatewayWorld struct {
	*aliceWorld
	gw                 *httptest.Server
	ordersLog, payLog  *upstreamLog
	gatewaySecret      string
	ordersRoot, payURL string
}

// startGatewayWorld seeds e as gatehouse dev does (demo users and clients,
// plus the demo-gateway client for token exchange), starts orders and
// payments with SDK verifiers, and the gateway with the dev routes.
func startGatewayWorld(t *testing.T, e *Env) *gatewayWorld {
	t.Helper()
	e.seedAlice(t)
	gw := &gatewayWorld{aliceWorld: &aliceWorld{e: e}, ordersLog: &upstreamLog{}, payLog: &upstreamLog{}}
	gw.gatewaySecret = "ghs_" + strings.NewReplacer("+", "-", "/", "_", "=", "").Replace(randB64(32))
	e.Secrets["demo-gateway"] = gw.gatewaySecret
	now := time.Now()
	if err := e.Store.CreateClient(context.Background(), storage.Client{ID: "demo-gateway", Name: "Demo gateway",
		SecretHash: e.App.Secrets.Sum(gw.gatewaySecret), GrantTypes: []string{exchangeGrant},
		Scopes: []string{"orders:read"}, Audiences: []string{ordersAPI}, CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	orders, payments := httptest.NewUnstartedServer(nil), httptest.NewUnstartedServer(nil)
	gw.ordersRoot, gw.payURL = "http://"+orders.Listener.Addr().String(), "http://"+payments.Listener.Addr().String()
	log := slog.New(slog.NewJSONHandler(e.Logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg := demo.Config{Issuer: e.Issuer, OrdersURL: gw.ordersRoot, PaymentsURL: gw.payURL, Logger: log}
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
	orders.Config.Handler, payments.Config.Handler = gw.ordersLog.wrap(o.Handler), gw.payLog.wrap(p.Handler)
	orders.Start()
	payments.Start()
	t.Cleanup(orders.Close)
	t.Cleanup(payments.Close)

	g, err := gateway.New(devLikeGateway(gw.gatewaySecret, e.Issuer, gw.ordersRoot, gw.payURL),
		gateway.Deps{Issuer: e.Issuer, Log: log.With("component", "gateway")})
	if err != nil {
		t.Fatalf("gateway: %v", err)
	}
	t.Cleanup(g.Close)
	gw.gw = httptest.NewServer(g)
	t.Cleanup(gw.gw.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, s := range []*demo.Service{o, p} {
		if err := s.Verifier.WaitReady(ctx); err != nil {
			t.Fatalf("the services never got the issuer's keys: %v", err)
		}
	}
	if err := g.WaitReady(ctx); err != nil {
		t.Fatalf("the gateway never got the issuer's keys: %v", err)
	}
	return gw
}

// devLikeGateway is internal/cli's devGateway: the same routes and limits.
func devLikeGateway(secret, issuer, ordersURL, paymentsURL string) config.GatewayConfig {
	g := config.Default().Gateway
	g.TrustedProxies = []string{"127.0.0.1/32", "::1/128"}
	g.TokenExchange = config.GatewayTokenExchange{ClientID: "demo-gateway", ClientSecret: secret}
	g.ReloadInterval = 0
	perUser := []config.GatewayRateRule{{By: "subject", Rate: 20, Period: config.Duration(time.Second), Burst: 40}}
	perIP := []config.GatewayRateRule{{By: "ip", Rate: 50, Period: config.Duration(time.Second), Burst: 100}}
	orders := config.GatewayAuth{Mode: "jwt", Audience: ordersAPI}
	read, write, tenant := orders, orders, orders
	read.ScopesAll = []string{"orders:read"}
	write.ScopesAll = []string{"orders:write"}
	tenant.ScopesAll = []string{"orders:read"}
	tenant.Tenant = &config.GatewayTenant{Source: "host_label", Index: 0}
	g.Routes = []config.GatewayRoute{
		{Name: "orders-read", PathPrefix: "/orders", Methods: []string{"GET", "HEAD"}, Upstreams: []string{ordersURL},
			Auth: read, Token: "exchange", Exchange: config.GatewayExchange{Audience: ordersAPI, Scopes: []string{"orders:read"}},
			RateLimits: append(slices.Clone(perIP), perUser...)},
		{Name: "orders-write", PathPrefix: "/orders", Methods: []string{"POST", "DELETE"}, Upstreams: []string{ordersURL},
			Auth: write, Token: "forward", RateLimits: append(slices.Clone(perIP), perUser...)},
		{Name: "tenant-orders", Hosts: []string{"*.localhost"}, PathPrefix: "/orders", Methods: []string{"GET"},
			Upstreams: []string{ordersURL}, Auth: tenant, Token: "forward"},
		{Name: "discovery", PathPrefix: "/.well-known/openid-configuration", Methods: []string{"GET"}, Upstreams: []string{issuer},
			Auth: config.GatewayAuth{Mode: "anonymous"}, Token: "strip", RateLimits: perIP},
		{Name: "payments", PathPrefix: "/payments", Methods: []string{"POST"}, Upstreams: []string{paymentsURL},
			Auth:  config.GatewayAuth{Mode: "jwt", Audience: paymentsAPI, ScopesAll: []string{"payments:write"}, EndUser: true},
			Token: "forward", RateLimits: append(slices.Clone(perIP), perUser...)},
	}
	return g
}

// loginScopes is aliceWorld.login asking for other scopes.
func (w *gatewayWorld) loginScopes(t *testing.T, username string, scopes []string) string {
	t.Helper()
	browser := w.e.browser()
	tok, err := nativelogin.Login(t.Context(), nativelogin.Config{Issuer: w.e.Issuer, ClientID: "demo-cli", Scopes: scopes,
		Resources: []string{ordersAPI, paymentsAPI}, ForceLogin: true, Timeout: 30 * time.Second,
		OpenURL: func(authURL string) error {
			u, err := url.Parse(authURL)
			if err != nil {
				return err
			}
			resp, err := http.Get(w.e.authorize(t, browser, u.Query(), username, alicePassword).String())
			if err != nil {
				return err
			}
			return resp.Body.Close()
		}})
	if err != nil {
		t.Fatalf("login as %s: %v", username, err)
	}
	w.e.remember(tok.AccessToken, tok.RefreshToken)
	return tok.AccessToken
}

// send calls the gateway with optional token, extra headers and Host.
func (w *gatewayWorld) send(t *testing.T, method, path, token, body string, hdr ...string) reply {
	t.Helper()
	req, err := http.NewRequest(method, w.gw.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i] == "Host" {
			req.Host = hdr[i+1]
			continue
		}
		req.Header.Add(hdr[i], hdr[i+1])
	}
	return doReply(t, req)
}

func doReply(t *testing.T, req *http.Request) reply {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	return decodeReply(t, resp)
}

// assertEdge: the gateway answered status itself with error code, its
// request id, and neither service was called.
func (w *gatewayWorld) assertEdge(t *testing.T, r reply, status int, code string, ordersBefore, payBefore int) {
	t.Helper()
	if r.status != status || r.body["error"] != code {
		t.Fatalf("status %d error %v, want %d %s: %.300s", r.status, r.body["error"], status, code, r.raw)
	}
	if r.header.Get("X-Request-Id") == "" {
		t.Error("a gateway refusal without X-Request-Id")
	}
	if status == http.StatusUnauthorized && !strings.Contains(r.header.Get("WWW-Authenticate"), `realm="gatehouse"`) {
		t.Errorf("WWW-Authenticate %q is not the gateway's", r.header.Get("WWW-Authenticate"))
	}
	if n := w.ordersLog.count() - ordersBefore; n != 0 {
		t.Errorf("orders was called %d times", n)
	}
	if n := w.payLog.count() - payBefore; n != 0 {
		t.Errorf("payments was called %d times", n)
	}
}

// TestAliceThroughGateway acts out the dev tour through the API gateway:
// coarse refusals at the edge (the services are never called), the
// fine-grained ones in the services, token exchange for reads, the user's
// token propagated for writes, and identity headers the client cannot set.
func TestAliceThroughGateway(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *Env) {
		w := startGatewayWorld(t, e)
		alice, bob, carol := w.login(t, "alice"), w.login(t, "bob"), w.login(t, "carol")
		readOnly := w.loginScopes(t, "alice", []string{"openid", "orders:read"})
		gatewayAnswers(t, w, alice, readOnly)
		serviceAnswers(t, w, alice, bob, carol)
		t.Run("GW-01/identity-headers-from-the-token-only", func(t *testing.T) {
			n := w.ordersLog.count()
			r := w.send(t, "GET", "/orders/o-3001", alice, "", "X-Auth-Subject", "usr_carol", "X-Auth-Roles", "admin",
				"X_Auth_Subject", "usr_carol", "x-auth-subject", "usr_carol", "X-Auth-Tenant", "globex")
			if r.status != http.StatusNotFound {
				t.Fatalf("alice posing as carol: %d %.200s", r.status, r.raw)
			}
			got := w.ordersLog.since(n)
			if len(got) != 1 {
				t.Fatalf("orders saw %d requests", len(got))
			}
			h := got[0]
			for k, v := range h {
				if norm := strings.ReplaceAll(strings.ToLower(k), "_", "-"); strings.HasPrefix(norm, "x-auth-") &&
					k != http.CanonicalHeaderKey(norm) {
					t.Errorf("a variant header reached orders: %s: %v", k, v)
				}
			}
			for name, want := range map[string]string{"X-Auth-Subject": "usr_alice", "X-Auth-Roles": "user", "X-Auth-Tenant": "acme"} {
				if v := h.Values(name); len(v) != 1 || v[0] != want {
					t.Errorf("orders received %s %q, want %q", name, v, want)
				}
			}
		})
		t.Run("rate-limit/bob-is-throttled-at-the-edge", func(t *testing.T) {
			const rate, burst = 20, 40 // bob's per-user limit above
			n := w.ordersLog.count()
			allowed := 0
			start := time.Now()
			var refused *reply
			for i := range 60 {
				r := w.send(t, "GET", "/orders", bob, "")
				if r.status == http.StatusOK {
					allowed++
					continue
				}
				if i < 30 {
					t.Fatalf("refused after %d requests (burst 40): %d %.200s", i, r.status, r.raw)
				}
				refused = &r
				break
			}
			if refused == nil {
				// A loaded machine sent the 60 slower than bob's bucket
				// refills: a faster flood must still be refused.
				var more int
				refused, more = w.floodUntilRefused(t, bob, 20*time.Second)
				allowed += more
				t.Logf("60 sequential requests in %s all allowed; refused after %d more", time.Since(start), more)
			}
			if refused == nil {
				t.Fatal("a flood of requests by bob and no 429")
			}
			r := *refused
			if r.status != http.StatusTooManyRequests || r.body["error"] != "rate_limited" || r.header.Get("X-Request-Id") == "" {
				t.Fatalf("%d %.200s", r.status, r.raw)
			}
			if got := w.ordersLog.count() - n; got != allowed {
				t.Fatalf("orders saw %d requests, the gateway allowed %d", got, allowed)
			}
			if limit := burst + rate*time.Since(start).Seconds() + 1; float64(allowed) > limit {
				t.Fatalf("allowed %d requests by bob, more than his limit allows (%.0f)", allowed, limit)
			}
		})
		e.assertNoSecretsLogged()
	})
}

// floodUntilRefused sends GET /orders with token from several workers at
// once until one is refused (or within passes). It returns that refusal
// (nil if none came) and how many requests were allowed; it waits for every
// request in flight, so the caller can compare with what orders saw.
func (w *gatewayWorld) floodUntilRefused(t *testing.T, token string, within time.Duration) (*reply, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), within)
	defer cancel()
	var mu sync.Mutex
	var refused *reply
	allowed := 0
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for ctx.Err() == nil {
				req, err := http.NewRequest("GET", w.gw.URL+"/orders", nil)
				if err != nil {
					t.Error(err)
					return
				}
				req.Header.Set("Authorization", "Bearer "+token)
				resp, err := http.DefaultClient.Do(req) // not ctx: a request sent runs to its end
				if err != nil {
					t.Error(err)
					cancel()
					return
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				mu.Lock()
				if resp.StatusCode == http.StatusOK {
					allowed++
				} else if refused == nil {
					r := reply{status: resp.StatusCode, header: resp.Header, body: map[string]any{}, raw: string(b)}
					_ = json.Unmarshal(b, &r.body)
					refused = &r
					cancel()
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return refused, allowed
}

// gatewayAnswers: what the gateway decides alone, and the exchange.
func gatewayAnswers(t *testing.T, w *gatewayWorld, alice, readOnly string) {
	t.Run("edge/no-token-401", func(t *testing.T) {
		o, p := w.ordersLog.count(), w.payLog.count()
		w.assertEdge(t, w.send(t, "GET", "/orders", "", ""), 401, "unauthorized", o, p)
		w.assertEdge(t, w.send(t, "POST", "/payments", "", `{"order_id":"o-1001"}`), 401, "unauthorized", o, p)
	})
	t.Run("edge/delete-without-orders-write-403", func(t *testing.T) {
		o, p := w.ordersLog.count(), w.payLog.count()
		r := w.send(t, "DELETE", "/orders/o-1001", readOnly, "")
		w.assertEdge(t, r, 403, "insufficient_scope", o, p)
		if h := r.header.Get("WWW-Authenticate"); !strings.Contains(h, `error="insufficient_scope"`) || !strings.Contains(h, "orders:write") {
			t.Errorf("WWW-Authenticate %q", h)
		}
	})
	t.Run("edge/billing-token-is-not-for-orders-401", func(t *testing.T) {
		status, out, _ := w.e.postForm(t, "/oauth/token", url.Values{"grant_type": {"client_credentials"},
			"scope": {"payments:write"}, "resource": {paymentsAPI}}, "demo-billing", w.e.Secrets["demo-billing"])
		billing := str(out["access_token"])
		if status != 200 || billing == "" {
			t.Fatalf("billing token: %d %v", status, out)
		}
		w.e.remember(billing)
		o, p := w.ordersLog.count(), w.payLog.count()
		w.assertEdge(t, w.send(t, "GET", "/orders", billing, ""), 401, "invalid_token", o, p)
		// The payments route is for end users: the job pays from inside.
		w.assertEdge(t, w.send(t, "POST", "/payments", billing, `{"invoice_id":"inv-1","amount_cents":1200}`), 403, "forbidden", o, p)
	})
	t.Run("edge/tenant-host", func(t *testing.T) {
		o, p := w.ordersLog.count(), w.payLog.count()
		w.assertEdge(t, w.send(t, "GET", "/orders", alice, "", "Host", "globex.localhost"), 403, "forbidden", o, p)
		r := w.send(t, "GET", "/orders", alice, "", "Host", "acme.localhost")
		if r.status != 200 || orderIDs(r) != "o-1001,o-1002" {
			t.Fatalf("acme.localhost: %d %.300s", r.status, r.raw)
		}
		got := w.ordersLog.since(o)
		if len(got) != 1 || got[0].Get("Authorization") != "Bearer "+alice || got[0].Get("X-Auth-Route") != "tenant-orders" {
			t.Errorf("tenant-orders forwards alice's token: %d requests", len(got))
		}
	})
	t.Run("edge/discovery-is-public", func(t *testing.T) {
		r := w.send(t, "GET", "/.well-known/openid-configuration", "", "")
		if r.status != 200 || r.body["issuer"] != w.e.Issuer {
			t.Fatalf("%d %.200s", r.status, r.raw)
		}
	})
	t.Run("exchange/alice-reads-her-orders-with-an-orders-only-token", func(t *testing.T) {
		n := w.ordersLog.count()
		r := w.send(t, "GET", "/orders", alice, "")
		if r.status != 200 || orderIDs(r) != "o-1001,o-1002" {
			t.Fatalf("%d %.300s", r.status, r.raw)
		}
		got := w.ordersLog.since(n)
		if len(got) != 1 {
			t.Fatalf("orders saw %d requests", len(got))
		}
		tok, ok := strings.CutPrefix(got[0].Get("Authorization"), "Bearer ")
		if !ok || tok == alice {
			t.Fatal("orders did not receive an exchanged token")
		}
		w.e.remember(tok)
		_, c := decodeJWT(t, tok)
		aud := c["aud"]
		if l, isList := aud.([]any); isList && len(l) == 1 {
			aud = l[0]
		}
		act, _ := c["act"].(map[string]any)
		if aud != ordersAPI || c["scope"] != "orders:read" || c["sub"] != "usr_alice" || act["sub"] != "demo-gateway" {
			t.Errorf("exchanged token: aud %v scope %v sub %v act %v", c["aud"], c["scope"], c["sub"], c["act"])
		}
		if got[0].Get("X-Auth-Subject") != "usr_alice" || got[0].Get("X-Auth-Route") != "orders-read" || got[0].Get("X-Request-Id") == "" {
			t.Errorf("identity headers %v", got[0])
		}
	})
}

// serviceAnswers: the gateway lets these through, the services decide.
func serviceAnswers(t *testing.T, w *gatewayWorld, alice, bob, carol string) {
	expect := func(t *testing.T, r reply, status int, code string) {
		t.Helper()
		if r.status != status || code != "" && r.body["error"] != code {
			t.Fatalf("status %d, want %d %s: %.300s", r.status, status, code, r.raw)
		}
		if strings.Contains(r.header.Get("WWW-Authenticate"), `realm="gatehouse"`) {
			t.Errorf("the gateway answered, not the service")
		}
	}
	reached := func(t *testing.T, before int) {
		t.Helper()
		if w.ordersLog.count() == before {
			t.Error("orders was not called: the gateway decided")
		}
	}
	t.Run("service/hidden-orders-are-404", func(t *testing.T) {
		n := w.ordersLog.count()
		expect(t, w.send(t, "GET", "/orders/o-3001", alice, ""), 404, "not_found")
		expect(t, w.send(t, "GET", "/orders/o-1001", bob, ""), 404, "not_found")
		reached(t, n)
	})
	t.Run("service/alice-sees-bobs-orders-as-his-manager", func(t *testing.T) {
		n := w.ordersLog.count()
		r := w.send(t, "GET", "/orders?owner=usr_bob", alice, "")
		expect(t, r, 200, "")
		if orderIDs(r) != "o-2001" {
			t.Errorf("orders %q", orderIDs(r))
		}
		expect(t, w.send(t, "GET", "/orders?owner=usr_alice", bob, ""), 403, "forbidden")
		reached(t, n)
	})
	t.Run("service/alice-cannot-delete-bobs-order", func(t *testing.T) {
		n := w.ordersLog.count()
		expect(t, w.send(t, "DELETE", "/orders/o-2001", alice, ""), 403, "forbidden")
		reached(t, n)
	})
	t.Run("propagation/alice-pays-her-order", func(t *testing.T) {
		n, p := w.ordersLog.count(), w.payLog.count()
		r := w.send(t, "POST", "/orders/o-1001/pay", alice, "")
		expect(t, r, 201, "")
		if r.body["payer"] != "usr_alice" || r.body["order_id"] != "o-1001" {
			t.Errorf("payment %v", r.body)
		}
		og, pg := w.ordersLog.since(n), w.payLog.since(p)
		if len(og) == 0 || og[0].Get("Authorization") != "Bearer "+alice {
			t.Error("orders-write must forward alice's token")
		}
		if len(pg) != 1 || pg[0].Get("Authorization") != "Bearer "+alice {
			t.Errorf("payments was reached %d times, or without alice's token", len(pg))
		}
		expect(t, w.send(t, "POST", "/payments", alice, `{"order_id":"o-2001"}`), 403, "forbidden")
	})
	t.Run("service/carol-admin", func(t *testing.T) {
		r := w.send(t, "GET", "/orders?owner=usr_alice", carol, "")
		expect(t, r, 200, "")
		if orderIDs(r) != "o-1001,o-1002" {
			t.Errorf("orders %q", orderIDs(r))
		}
		expect(t, w.send(t, "DELETE", "/orders/o-2001", carol, ""), 204, "")
		expect(t, w.send(t, "GET", "/orders/o-2001", bob, ""), 404, "not_found")
	})
}

// decodeReply reads a response as call does.
func decodeReply(t *testing.T, resp *http.Response) reply {
	t.Helper()
	b, _ := io.ReadAll(resp.Body)
	r := reply{status: resp.StatusCode, header: resp.Header, body: map[string]any{}, raw: string(b)}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") && len(b) > 0 {
		if err := json.Unmarshal(b, &r.body); err != nil {
			t.Fatalf("not JSON: %.200s", b)
		}
	}
	return r
}
