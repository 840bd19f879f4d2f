package e2e

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
)

// loginPage starts an authorization request and returns the login page.
func (e *Env) loginPage(t *testing.T, b *http.Client, clientID string) string {
	t.Helper()
	_, ch := pkce()
	resp, err := b.Get(e.Issuer + "/authorize?" + authParams(clientID, webRedirect, ch).Encode())
	if err != nil {
		t.Fatal(err)
	}
	page := readBody(t, resp)
	if !strings.Contains(page, `id="login-form"`) {
		t.Fatalf("no login page: %.200s", page)
	}
	return page
}

func (e *Env) postLogin(t *testing.T, b *http.Client, page, user, pw string, hdr map[string]string) *http.Response {
	t.Helper()
	form := url.Values{"csrf": {hidden(page, "csrf")}, "auth_request": {hidden(page, "auth_request")}, "username": {user}, "password": {pw}}
	req, _ := http.NewRequest("POST", e.Issuer+"/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := noRedirect(b).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// TestPageHeaders: login, consent, logout and error pages refuse framing
// and referrers (OA-H); login POST answers 303 (never 307).
func TestPageHeaders(t *testing.T) {
	e := sqliteEnv(t, nil)
	b := e.browser()
	check := func(t *testing.T, resp *http.Response) {
		t.Helper()
		h := resp.Header
		if !strings.Contains(h.Get("Content-Security-Policy"), "frame-ancestors 'none'") || h.Get("X-Frame-Options") != "DENY" ||
			h.Get("Referrer-Policy") != "no-referrer" {
			t.Errorf("OA-H: headers %v", h)
		}
	}
	resp, err := b.Get(e.Issuer + "/authorize?client_id=nobody")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	t.Run("OA-H/error-page", func(t *testing.T) { check(t, resp) })
	page := e.loginPage(t, b, "web")
	_, ch := pkce()
	resp, _ = b.Get(e.Issuer + "/authorize?" + authParams("web", webRedirect, ch).Encode())
	resp.Body.Close()
	t.Run("OA-H/login-page", func(t *testing.T) { check(t, resp) })
	resp = e.postLogin(t, b, page, "alice", alicePassword, nil)
	resp.Body.Close()
	t.Run("OA-H/login-303", func(t *testing.T) {
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("POST login answered %d", resp.StatusCode)
		}
		check(t, resp)
	})
	t.Run("SE-02/cookie-attributes", func(t *testing.T) {
		found := false
		for _, c := range resp.Header.Values("Set-Cookie") {
			if !strings.HasPrefix(c, "__Host-gatehouse-session=") {
				continue
			}
			found = true
			l := strings.ToLower(c)
			for _, want := range []string{"path=/", "secure", "httponly", "samesite=lax"} {
				if !strings.Contains(l, want) {
					t.Errorf("cookie lacks %s: %s", want, c)
				}
			}
			if strings.Contains(l, "domain=") {
				t.Errorf("cookie has Domain: %s", c)
			}
		}
		if !found {
			t.Fatal("no session cookie set at login")
		}
	})
	resp, _ = b.Get(e.Issuer + "/end_session")
	resp.Body.Close()
	t.Run("OA-H/logout-page", func(t *testing.T) { check(t, resp) })
	t.Run("OA-H/escaped-error", func(t *testing.T) {
		_, body := get(t, http.DefaultClient, e.Issuer+"/login?auth_request=%3Cscript%3Ealert(1)%3C/script%3E")
		if strings.Contains(body, "<script>alert(1)") {
			t.Fatal("unescaped input reflected")
		}
	})
}

// TestSessionFixation: the session id changes at login, unknown ids are
// never adopted, and ids in URLs are ignored (SE-01).
func TestSessionFixation(t *testing.T) {
	e := sqliteEnv(t, nil)
	b := e.browser()
	iss, _ := url.Parse(e.Issuer)
	planted := "attacker-chosen-session-id-0123456789abcdef"
	b.Jar.SetCookies(iss, []*http.Cookie{{Name: "__Host-gatehouse-session", Value: planted, Path: "/"}})
	page := e.loginPage(t, b, "firstparty")
	resp := e.postLogin(t, b, page, "alice", alicePassword, nil)
	resp.Body.Close()
	for _, c := range b.Jar.Cookies(iss) {
		if c.Name == "__Host-gatehouse-session" && c.Value == planted {
			t.Fatal("SE-01: planted session id adopted")
		}
	}
	// A session id in the URL is ignored.
	_, ch := pkce()
	resp, _ = get(t, http.DefaultClient, e.Issuer+"/authorize?"+authParams("firstparty", webRedirect, ch, "prompt", "none", "session", planted).Encode())
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if loc.Query().Get("error") != "login_required" {
		t.Fatalf("SE-01: url session id honoured: %v", loc)
	}
}

// TestSessionTimeouts: idle and absolute timeouts are enforced server-side (SE-03).
func TestSessionTimeouts(t *testing.T) {
	e := sqliteEnv(t, func(c *config.Config) {
		c.IDP.Session.IdleTimeout = config.Duration(10 * time.Minute)
		c.IDP.Session.AbsoluteTimeout = config.Duration(time.Hour)
	})
	b := e.browser()
	_, ch := pkce()
	e.remember(e.authorize(t, b, authParams("firstparty", webRedirect, ch), "alice", alicePassword).Query().Get("code"))
	silent := func() string {
		_, ch := pkce()
		loc := e.authorize(t, b, authParams("firstparty", webRedirect, ch, "prompt", "none"), "", "")
		e.remember(loc.Query().Get("code"))
		return loc.Query().Get("error")
	}
	if silent() != "" {
		t.Fatal("fresh session not usable")
	}
	for i := 0; i < 7; i++ { // stay active: 7 x 9 min = 63 min > absolute timeout
		e.Clock.Advance(9 * time.Minute)
		if i < 6 && silent() != "" {
			t.Fatalf("SE-03: active session dropped at step %d", i)
		}
	}
	if silent() != "login_required" {
		t.Fatal("SE-03/absolute: session outlived the absolute timeout")
	}
	// Idle timeout.
	_, ch = pkce()
	e.authorize(t, b, authParams("firstparty", webRedirect, ch, "prompt", "login"), "alice", alicePassword)
	e.Clock.Advance(11 * time.Minute)
	if silent() != "login_required" {
		t.Fatal("SE-03/idle: idle session still valid")
	}
}

// TestCSRF: every state-changing POST needs a CSRF token bound to this
// browser and request; cross-site posts are refused (CS-01).
func TestCSRF(t *testing.T) {
	e := sqliteEnv(t, nil)
	b := e.browser()
	page := e.loginPage(t, b, "web")
	other := e.loginPage(t, e.browser(), "web")
	cases := map[string]struct {
		page string
		hdr  map[string]string
		mod  func(string) string
	}{
		"CS-01/missing-token":  {page: strings.Replace(page, `name="csrf"`, `name="x"`, 1)},
		"CS-01/other-browser":  {page: strings.Replace(page, hidden(page, "csrf"), hidden(other, "csrf"), 1)},
		"CS-01/cross-site":     {page: page, hdr: map[string]string{"Sec-Fetch-Site": "cross-site"}},
		"CS-01/foreign-origin": {page: page, hdr: map[string]string{"Origin": "https://evil.example"}},
		"CS-01/null-origin":    {page: page, hdr: map[string]string{"Origin": "null"}},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			resp := e.postLogin(t, b, c.page, "alice", alicePassword, c.hdr)
			resp.Body.Close()
			if resp.StatusCode != http.StatusForbidden {
				t.Fatalf("status %d", resp.StatusCode)
			}
		})
	}
	t.Run("CS-01/logout-needs-post-and-token", func(t *testing.T) {
		resp, _ := get(t, http.DefaultClient, e.Issuer+"/logout")
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Fatalf("GET logout: %d", resp.StatusCode)
		}
		resp, err := b.PostForm(e.Issuer+"/logout", url.Values{"decision": {"logout"}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("POST logout without token: %d", resp.StatusCode)
		}
	})
}

// TestLoginThrottlingAndEnumeration: BF-01 and BF-02.
func TestLoginThrottlingAndEnumeration(t *testing.T) {
	e := sqliteEnv(t, func(c *config.Config) { c.IDP.Throttle.AccountMaxFailures = 3 })
	b := e.browser()
	page := e.loginPage(t, b, "web")
	t.Run("BF-02/same-answer", func(t *testing.T) {
		r1 := e.postLogin(t, b, page, "bob", "wrong-password-1", nil)
		b1 := readBody(t, r1)
		r2 := e.postLogin(t, b, page, "nosuchuser", "wrong-password-1", nil)
		b2 := readBody(t, r2)
		r3 := e.postLogin(t, b, page, "dora", alicePassword, nil) // disabled user, right password
		b3 := readBody(t, r3)
		if r1.StatusCode != r2.StatusCode || r1.StatusCode != r3.StatusCode {
			t.Fatalf("statuses differ: %d %d %d", r1.StatusCode, r2.StatusCode, r3.StatusCode)
		}
		msg := "Incorrect username or password."
		if !strings.Contains(b1, msg) || !strings.Contains(b2, msg) || !strings.Contains(b3, msg) {
			t.Fatal("messages differ")
		}
	})
	t.Run("BF-01/account-throttled", func(t *testing.T) {
		for i := 0; i < 3; i++ {
			resp := e.postLogin(t, b, page, "alice", "nope-nope-nope", nil)
			resp.Body.Close()
		}
		resp := e.postLogin(t, b, page, "alice", alicePassword, nil)
		resp.Body.Close()
		if resp.StatusCode != http.StatusTooManyRequests {
			t.Fatalf("correct password accepted while throttled: %d", resp.StatusCode)
		}
		// Not locked out for good: after the window the right password works.
		e.Clock.Advance(16 * time.Minute)
		page := e.loginPage(t, b, "web")
		resp = e.postLogin(t, b, page, "alice", alicePassword, nil)
		resp.Body.Close()
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("BF-01: victim still locked out after the window: %d", resp.StatusCode)
		}
	})
}

// TestPromptLoginAndMaxAge: prompt=login and max_age force re-authentication (OA-L).
func TestPromptLoginAndMaxAge(t *testing.T) {
	e := sqliteEnv(t, nil)
	b := e.browser()
	_, ch := pkce()
	e.remember(e.authorize(t, b, authParams("firstparty", webRedirect, ch), "alice", alicePassword).Query().Get("code"))
	for name, extra := range map[string][]string{"OA-L/prompt-login": {"prompt", "login"}, "OA-L/max-age-0": {"max_age", "0"}} {
		t.Run(name, func(t *testing.T) {
			e.Clock.Advance(2 * time.Second)
			_, ch := pkce()
			resp, _ := get(t, b, e.Issuer+"/authorize?"+authParams("firstparty", webRedirect, ch, extra...).Encode())
			if !strings.Contains(resp.Header.Get("Location"), "/login?") {
				t.Fatalf("not sent to login: %s", resp.Header.Get("Location"))
			}
		})
	}
	t.Run("OA-L/forged-id-token-hint", func(t *testing.T) {
		forged := "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJpc3MiOiIiLCJhdWQiOiJ3ZWIifQ."
		q := url.Values{"id_token_hint": {forged}, "post_logout_redirect_uri": {"https://client.example.com/bye"}}
		resp, _ := get(t, b, e.Issuer+"/end_session?"+q.Encode())
		if resp.StatusCode != 400 || resp.Header.Get("Location") != "" {
			t.Fatalf("forged hint: %d %q", resp.StatusCode, resp.Header.Get("Location"))
		}
		q = url.Values{"client_id": {"web"}, "post_logout_redirect_uri": {"https://evil.example/bye"}}
		resp, _ = get(t, b, e.Issuer+"/end_session?"+q.Encode())
		if resp.StatusCode != 400 {
			t.Fatalf("OA-R/post-logout: unregistered URI accepted: %d", resp.StatusCode)
		}
	})
}

// TestAuthRequestExpiry: a login form left open past idp.auth_request_ttl
// cannot complete; the user starts again (nothing is issued).
func TestAuthRequestExpiry(t *testing.T) {
	e := sqliteEnv(t, nil)
	b := e.browser()
	page := e.loginPage(t, b, "web")
	e.Clock.Advance(16 * time.Minute)
	resp := e.postLogin(t, b, page, "alice", alicePassword, nil)
	body := readBody(t, resp)
	if resp.StatusCode != 400 || !strings.Contains(body, "expired") || resp.Header.Get("Location") != "" {
		t.Fatalf("expired auth request: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
}
