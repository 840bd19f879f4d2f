package gateway

import (
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
)

// TestReviewMethodCase: a method the routes never name in that spelling
// ("delete") must not fall through to a less restricted route of the same
// prefix; upstream frameworks (Werkzeug, Rack, many others) upper-case the
// method and would serve it as DELETE (GW-03, method confusion).
func TestReviewMethodCase(t *testing.T) {
	is := newTestIssuer(t)
	up, hits := newCountingEcho(t)
	writes := jwtRoute("writes", "/api", up.URL, "admin")
	writes.Methods = []string{http.MethodDelete, http.MethodPost}
	reads := anonRoute("reads", "/api", up.URL)
	tg := startGateway(t, is, gatewayConfig(is, writes, reads), nil)
	reader := is.user(t, "usr_bob", "read")
	for _, m := range []string{"delete", "Delete", "post", "pOST"} {
		t.Run("GW-03/method-case/"+m, func(t *testing.T) {
			before := hits()
			for _, tok := range []string{"", reader} {
				resp, body := tg.do(t, m, "/api/x", tok, nil)
				if resp.StatusCode < 400 {
					t.Fatalf("token %t: status %d: %s", tok != "", resp.StatusCode, body)
				}
			}
			if n := hits() - before; n != 0 {
				t.Fatalf("upstream reached %d times with method %q", n, m)
			}
			resp, body := tg.authorize(t, http.MethodGet, ForwardAuthPath, "", traefik(m, "/api/x", ""))
			if resp.StatusCode == http.StatusOK {
				t.Fatalf("authorizer allowed method %q: %s", m, body)
			}
		})
	}
	t.Run("GW-03/method-case/upper-case-still-works", func(t *testing.T) {
		resp, body := tg.do(t, http.MethodGet, "/api/x", "", nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET status %d: %s", resp.StatusCode, body)
		}
		resp, body = tg.do(t, http.MethodDelete, "/api/x", is.user(t, "usr_alice", "admin"), nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("DELETE status %d: %s", resp.StatusCode, body)
		}
	})
}

// TestReviewRateLimitsSameKey: two limits of the same kind on one route
// (a burst limit and an hourly quota) are two buckets; sharing one bucket
// let the slow limit's interval count against the fast one.
func TestReviewRateLimitsSameKey(t *testing.T) {
	is := newTestIssuer(t)
	up := newEcho(t)
	for _, by := range []string{"ip", "subject", "route"} {
		t.Run("RL/two-limits-by-"+by, func(t *testing.T) {
			r := jwtRoute("r", "/", up.URL)
			r.RateLimits = []config.GatewayRateRule{
				{By: by, Rate: 10, Period: config.Duration(time.Second), Burst: 10},
				{By: by, Rate: 100, Period: config.Duration(time.Hour), Burst: 100},
			}
			tg := startGateway(t, is, gatewayConfig(is, r), nil)
			tok := is.user(t, "usr_alice")
			for i := range 5 {
				if resp, body := tg.do(t, http.MethodGet, "/x", tok, nil); resp.StatusCode != http.StatusOK {
					t.Fatalf("request %d: status %d (both limits have room): %s", i+1, resp.StatusCode, body)
				}
			}
		})
	}
}

// TestReviewHostRankPerMatch: a route listing an exact host and a wildcard
// ("example.com" and "*.example.com") ranks as a wildcard route for the
// subdomains it matches through the wildcard; it must not beat a more
// specific wildcard route's longer prefix (GW-03, anonymous fallthrough).
func TestReviewHostRankPerMatch(t *testing.T) {
	is := newTestIssuer(t)
	up, hits := newCountingEcho(t)
	admin := jwtRoute("admin", "/admin", up.URL, "admin")
	admin.Hosts = []string{"*.example.com"}
	site := anonRoute("site", "/", up.URL)
	site.Hosts = []string{"example.com", "*.example.com"}
	tg := startGateway(t, is, gatewayConfig(is, site, admin), nil)
	t.Run("GW-03/wildcard-match-ranks-as-wildcard", func(t *testing.T) {
		before := hits()
		resp, body := tg.send(t, newReq(t, tg, http.MethodGet, "app.example.com", "/admin/users", nil))
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("status %d, want 401 from the admin route: %s", resp.StatusCode, body)
		}
		if n := hits() - before; n != 0 {
			t.Fatalf("upstream reached %d times without a token", n)
		}
		resp, _ = tg.send(t, newReq(t, tg, http.MethodGet, "app.example.com", "/x", nil))
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("public path: status %d", resp.StatusCode)
		}
	})
	t.Run("GW-03/config-order-breaks-ties", func(t *testing.T) {
		// Both match app.example.com through a wildcard, same prefix: the
		// first configured wins, whatever other hosts they list.
		first := jwtRoute("first", "/", up.URL)
		first.Hosts = []string{"*.example.com"}
		second := anonRoute("second", "/", up.URL)
		second.Hosts = []string{"example.com", "*.example.com"}
		tg := startGateway(t, is, gatewayConfig(is, first, second), nil)
		if resp, body := tg.send(t, newReq(t, tg, http.MethodGet, "app.example.com", "/x", nil)); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("status %d, want 401 from the first route: %s", resp.StatusCode, body)
		}
	})
	t.Run("GW-03/exact-match-still-first", func(t *testing.T) {
		resp, body := tg.send(t, newReq(t, tg, http.MethodGet, "example.com", "/admin/users", nil))
		if resp.StatusCode != http.StatusOK || seen(t, body).Header.Get(HeaderRoute) != "site" {
			t.Fatalf("apex: status %d: %s", resp.StatusCode, body)
		}
	})
}

// TestReviewSubjectlessClientToken: a client-credentials token without
// sub is the client itself; X-Auth-Subject must name it, never be empty
// (JWT-C04: an empty subject never means "authenticated").
func TestReviewSubjectlessClientToken(t *testing.T) {
	is := newTestIssuer(t)
	up := newEcho(t)
	tg := startGateway(t, is, gatewayConfig(is, jwtRoute("api", "/", up.URL)), nil)
	tok := is.mint(t, map[string]any{"sub": nil, "client_id": "svc-billing", "scope": "read"})
	t.Run("JWT-C04/no-sub-names-the-client", func(t *testing.T) {
		resp, body := tg.do(t, http.MethodGet, "/x", tok, nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
		h := seen(t, body).Header
		if got := h.Values(HeaderSubject); len(got) != 1 || got[0] != "svc-billing" {
			t.Fatalf("X-Auth-Subject %q, want the client id", got)
		}
		if h.Get(HeaderKind) != "client" {
			t.Fatalf("X-Auth-Kind %q", h.Get(HeaderKind))
		}
		resp, body = tg.authorize(t, http.MethodGet, ForwardAuthPath, "", traefik(http.MethodGet, "/x", tok))
		if resp.StatusCode != http.StatusOK || resp.Header.Get(HeaderSubject) != "svc-billing" {
			t.Fatalf("authorizer: status %d, X-Auth-Subject %q: %s", resp.StatusCode, resp.Header.Get(HeaderSubject), body)
		}
	})
}

// TestReviewExchangeScopesHeader: X-Auth-Scopes describes the token the
// upstream really gets. The IdP narrows an exchange to what the gateway
// client may delegate and says so in scope (RFC 8693 §2.2.1); the header
// must not name scopes the exchanged token lacks.
func TestReviewExchangeScopesHeader(t *testing.T) {
	is := newTestIssuer(t)
	up := newEcho(t)
	f := newFakeTokenEndpoint(t)
	tg := startGateway(t, is, exchangeGatewayConfig(is, f, up.URL), nil)
	for _, c := range []struct {
		name, scope string
		stated      bool
		path        string
		has         []string
		want        string
	}{
		{"narrowed-by-idp", "billing:read", true, "/billing/1", []string{"billing:read", "admin:all", "openid"}, "billing:read"},
		{"idp-says-nothing", "", false, "/billing/2", []string{"billing:read", "admin:all", "openid"}, "billing:read admin:all"},
		{"idp-cannot-widen", "orders:admin billing:read admin:all", true, "/orders-admin/1",
			[]string{"orders:read", "orders:admin", "billing:read"}, "orders:admin"},
	} {
		t.Run("GW-06/exchange-scopes/"+c.name, func(t *testing.T) {
			f.setAnswer(func(form url.Values, n int64) (int, string) {
				var m map[string]any
				_ = json.Unmarshal([]byte(okExchange(form, n, 300)), &m)
				if c.stated {
					m["scope"] = c.scope
				}
				b, _ := json.Marshal(m)
				return http.StatusOK, string(b)
			})
			u := is.user(t, "usr_alice", c.has...)
			resp, body := tg.do(t, http.MethodGet, c.path, u, nil)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			if got := seen(t, body).Header.Get(HeaderScopes); got != c.want {
				t.Fatalf("X-Auth-Scopes %q, want %q", got, c.want)
			}
			// The cached exchange answers the same.
			resp, body = tg.do(t, http.MethodGet, c.path, u, nil)
			if got := seen(t, body).Header.Get(HeaderScopes); resp.StatusCode != http.StatusOK || got != c.want {
				t.Fatalf("cached: status %d, X-Auth-Scopes %q, want %q", resp.StatusCode, got, c.want)
			}
			if resp, _ := tg.authorize(t, http.MethodGet, ForwardAuthPath, "", traefik(http.MethodGet, c.path, u)); resp.StatusCode != http.StatusOK ||
				resp.Header.Get(HeaderScopes) != c.want {
				t.Fatalf("authorizer: status %d, X-Auth-Scopes %q", resp.StatusCode, resp.Header.Get(HeaderScopes))
			}
		})
	}
}
