package e2e

import (
	"context"
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// The browser tests drive a real headless Chromium through the IdP's pages
// and the devdemo relying party. Gatehouse's pages carry no script; the
// JavaScript below is the test's own (reading the DOM, tampering a field).

// TestBrowserLoginFlow signs in from the demo app through the login and
// consent pages, uses the tokens (refresh, userinfo), signs out through the
// IdP's confirmation page, and checks that the IdP session is gone.
func TestBrowserLoginFlow(t *testing.T) {
	browser := newBrowser(t)
	forEachLocalBackend(t, func(t *testing.T, e *localEnv) {
		demo := startDemo(t, e)
		ctx := newTab(t, browser)

		run(t, ctx, "open the demo app", chromedp.Navigate(demo+"/"), chromedp.WaitVisible(chromedp.ID("signin")))
		run(t, ctx, "click Sign in", chromedp.Click(chromedp.ID("signin")), chromedp.WaitVisible(chromedp.ID("login-form")))
		if u := location(t, ctx); !strings.HasPrefix(u, e.Issuer+"/login?auth_request=") {
			t.Fatalf("login page at %s", u)
		}
		if title := must(t, ctx, "title", chromedp.Title()); title != "Sign in · Gatehouse" {
			t.Errorf("login title %q", title)
		}
		if h := text(t, ctx, "h1"); h != "Sign in" {
			t.Errorf("login heading %q", h)
		}
		if lead := text(t, ctx, ".lead"); !strings.Contains(lead, "Demo App") {
			t.Errorf("login page does not name the client: %q", lead)
		}
		waitTrue(t, ctx, "document.activeElement && document.activeElement.id === 'username'", "document.activeElement && document.activeElement.id")
		screenshot(t, ctx, "login.png")

		resp := navResponse(t, ctx, "submit the login form",
			chromedp.SendKeys(chromedp.ID("username"), "alice"),
			chromedp.SendKeys(chromedp.ID("password"), alicePassword),
			chromedp.Click(chromedp.ID("submit")))
		if resp.Status != http.StatusOK || !strings.HasPrefix(resp.URL, e.Issuer+"/consent?") {
			t.Fatalf("after login: %d %s; posts %+v", resp.Status, resp.URL, e.Hits.find(http.MethodPost, "/login"))
		}
		run(t, ctx, "consent page", chromedp.WaitVisible(chromedp.ID("allow")), chromedp.WaitVisible(chromedp.ID("deny")))
		if title := must(t, ctx, "title", chromedp.Title()); title != "Allow access · Gatehouse" {
			t.Errorf("consent title %q", title)
		}
		scopes := text(t, ctx, "ul.scopes")
		for _, s := range []string{"openid", "profile", "email", "offline_access"} {
			if !strings.Contains(scopes, s) {
				t.Errorf("consent page does not list scope %s: %q", s, scopes)
			}
		}
		screenshot(t, ctx, "consent.png")

		run(t, ctx, "click Allow", chromedp.Click(chromedp.ID("allow")), chromedp.WaitVisible(chromedp.ID("claim-sub")))
		if u := location(t, ctx); u != demo+"/" {
			t.Errorf("signed in at %s, want the demo home", u)
		}
		for sel, want := range map[string]string{"#claim-sub": "usr_alice", "#claim-email": "alice@example.com",
			"#claim-preferred_username": "alice"} {
			if got := text(t, ctx, sel); got != want {
				t.Errorf("%s = %q, want %q", sel, got, want)
			}
		}

		run(t, ctx, "refresh", chromedp.Click(chromedp.ID("refresh")), chromedp.WaitVisible(chromedp.ID("refreshed")))
		run(t, ctx, "call userinfo", chromedp.Click(chromedp.ID("call-userinfo")), chromedp.WaitVisible(chromedp.ID("userinfo")))
		if ui := text(t, ctx, "#userinfo"); !strings.Contains(ui, `"usr_alice"`) {
			t.Errorf("userinfo: %q", ui)
		}
		assertNoError(t, ctx)

		run(t, ctx, "sign out", chromedp.Click(chromedp.ID("signout")), chromedp.WaitVisible(chromedp.ID("logout")))
		if u := location(t, ctx); !strings.HasPrefix(u, e.Issuer+"/end_session?") {
			t.Fatalf("logout confirmation at %s", u)
		}
		if lead := text(t, ctx, ".lead"); !strings.Contains(lead, "Demo App") {
			t.Errorf("logout page does not name the client: %q", lead)
		}
		run(t, ctx, "confirm sign-out", chromedp.Click(chromedp.ID("logout")), chromedp.WaitVisible(chromedp.ID("signin")))
		if u := location(t, ctx); !strings.HasPrefix(u, demo+"/?state=") {
			t.Errorf("after sign-out at %s, want the demo home with state", u)
		}

		// The IdP session ended: signing in again asks for the password.
		run(t, ctx, "sign in again", chromedp.Click(chromedp.ID("signin")), chromedp.WaitVisible(chromedp.CSS("#login-form, #allow")))
		if !js[bool](t, ctx, "!!document.getElementById('login-form')") {
			t.Fatalf("IdP session survived sign-out: %s", location(t, ctx))
		}

		for _, h := range e.Hits.all() {
			if h.Status >= 400 && h.Path != "/favicon.ico" {
				t.Errorf("IdP answered %s %s with %d", h.Method, h.Path, h.Status)
			}
		}
	})
}

// assertNoError fails when the page shows an error container.
func assertNoError(t *testing.T, ctx context.Context) {
	t.Helper()
	if msg := js[string](t, ctx, "(document.getElementById('error') || {}).textContent || ''"); msg != "" {
		t.Fatalf("page shows an error: %q", msg)
	}
}

// openLoginPage starts an authorization for client web in the tab and waits
// for the login page; it returns the login page URL.
func openLoginPage(t *testing.T, ctx context.Context, e *localEnv) string {
	t.Helper()
	_, ch := pkce()
	run(t, ctx, "open the login page", chromedp.Navigate(e.Issuer+"/authorize?"+authParams("web", webRedirect, ch).Encode()),
		chromedp.WaitVisible(chromedp.ID("login-form")))
	return location(t, ctx)
}

// TestBrowserWrongPassword: a wrong password keeps the browser on the login
// page with the one generic message (BF-02), the username kept and the focus
// on the password.
func TestBrowserWrongPassword(t *testing.T) {
	ctx := newTab(t, newBrowser(t))
	e := sqliteLocalEnv(t, nil)
	openLoginPage(t, ctx, e)
	resp := navResponse(t, ctx, "submit a wrong password",
		chromedp.SendKeys(chromedp.ID("username"), "alice"),
		chromedp.SendKeys(chromedp.ID("password"), "not-the-password"),
		chromedp.Click(chromedp.ID("submit")))
	if resp.Status != http.StatusUnauthorized {
		t.Fatalf("status %d, want 401; posts %+v", resp.Status, e.Hits.find(http.MethodPost, "/login"))
	}
	if msg := text(t, ctx, "#error"); msg != "Incorrect username or password." {
		t.Errorf("error %q", msg)
	}
	if u := location(t, ctx); !strings.HasPrefix(u, e.Issuer+"/login") {
		t.Errorf("left the login page: %s", u)
	}
	run(t, ctx, "login form again", chromedp.WaitVisible(chromedp.ID("login-form")))
	if v := must(t, ctx, "username", chromedp.Value(chromedp.ID("username"))); v != "alice" {
		t.Errorf("username field %q, want it kept", v)
	}
	if v := must(t, ctx, "password", chromedp.Value(chromedp.ID("password"))); v != "" {
		t.Error("the password was echoed back into the form")
	}
	waitTrue(t, ctx, "document.activeElement && document.activeElement.id === 'password'", "document.activeElement && document.activeElement.id")
	if n := len(e.Hits.find(http.MethodPost, "/login")); n != 1 {
		t.Errorf("%d login posts", n)
	}
}

// TestBrowserCSRF: a tampered CSRF token and a cross-site form post are both
// refused with 403 and log nobody in (CS-01).
func TestBrowserCSRF(t *testing.T) {
	browser := newBrowser(t)
	t.Run("CS-01/tampered-token", func(t *testing.T) {
		ctx := newTab(t, browser)
		e := sqliteLocalEnv(t, nil)
		openLoginPage(t, ctx, e)
		js[string](t, ctx, `document.querySelector('input[name=csrf]').value = 'AAAA' + document.querySelector('input[name=csrf]').value.slice(4)`)
		resp := navResponse(t, ctx, "submit with a tampered token",
			chromedp.SendKeys(chromedp.ID("username"), "alice"),
			chromedp.SendKeys(chromedp.ID("password"), alicePassword),
			chromedp.Click(chromedp.ID("submit")))
		if resp.Status != http.StatusForbidden {
			t.Errorf("status %d, want 403", resp.Status)
		}
		if h := text(t, ctx, "h1"); h != "Request blocked" {
			t.Errorf("heading %q", h)
		}
		posts := e.Hits.find(http.MethodPost, "/login")
		if len(posts) != 1 || posts[0].SecFetchSite != "same-origin" || !posts[0].HadCSRFCookie {
			t.Fatalf("the browser should have sent a same-origin post with the CSRF cookie, so only the token is wrong: %+v", posts)
		}
		assertLoggedOut(t, ctx, e)
		// Control: the same form with its token intact is accepted, so the
		// 403 above came from the token alone.
		resp = navResponse(t, ctx, "submit with the real token",
			chromedp.SendKeys(chromedp.ID("username"), "alice"),
			chromedp.SendKeys(chromedp.ID("password"), alicePassword),
			chromedp.Click(chromedp.ID("submit")))
		if resp.Status != http.StatusOK || !strings.HasPrefix(resp.URL, e.Issuer+"/consent?") {
			t.Fatalf("control login: %d %s; posts %+v", resp.Status, resp.URL, e.Hits.find(http.MethodPost, "/login"))
		}
	})
	t.Run("CS-01/cross-site-form", func(t *testing.T) {
		ctx := newTab(t, browser)
		e := sqliteLocalEnv(t, nil)
		// The victim has visited the IdP: the browser holds its CSRF cookie.
		loginURL := openLoginPage(t, ctx, e)
		lu, err := url.Parse(loginURL)
		if err != nil {
			t.Fatal(err)
		}
		attacker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, `<!doctype html><title>attacker</title><body onload="document.forms[0].submit()">
<form method="post" action="%s"><input name="auth_request" value="%s"><input name="username" value="alice">
<input name="password" value="%s"><input name="csrf" value="forged"></form>`,
				html.EscapeString(e.Issuer+"/login"), html.EscapeString(lu.Query().Get("auth_request")), html.EscapeString(alicePassword))
		}))
		t.Cleanup(attacker.Close)
		// The attacker page posts itself on load; the IdP's answer has a
		// main element, the attacker page none.
		run(t, ctx, "open the attacker page", chromedp.Navigate(attacker.URL), chromedp.WaitVisible(chromedp.CSS("main h1")))
		if u := location(t, ctx); u != e.Issuer+"/login" {
			t.Fatalf("after the cross-site post at %s", u)
		}
		if h := text(t, ctx, "h1"); h != "Request blocked" {
			t.Errorf("heading %q", h)
		}
		posts := e.Hits.find(http.MethodPost, "/login")
		if len(posts) != 1 {
			t.Fatalf("%d login posts", len(posts))
		}
		p := posts[0]
		if p.Status != http.StatusForbidden {
			t.Errorf("status %d, want 403", p.Status)
		}
		if p.SecFetchSite != "cross-site" || p.HadCSRFCookie {
			t.Errorf("Chromium sent Sec-Fetch-Site %q, CSRF cookie %v; want cross-site and no cookie", p.SecFetchSite, p.HadCSRFCookie)
		}
		assertLoggedOut(t, ctx, e)
	})
}

// assertLoggedOut checks that the browser has no IdP session: a new
// authorization for a third-party client shows the login page, not consent.
func assertLoggedOut(t *testing.T, ctx context.Context, e *localEnv) {
	t.Helper()
	_, ch := pkce()
	run(t, ctx, "authorize again", chromedp.Navigate(e.Issuer+"/authorize?"+authParams("web", webRedirect, ch).Encode()),
		chromedp.WaitVisible(chromedp.CSS("#login-form, #allow")))
	if !js[bool](t, ctx, "!!document.getElementById('login-form')") {
		t.Fatal("the browser was logged in")
	}
}

// headerStripper removes the named response headers, to build a deliberately
// vulnerable IdP for the positive control of the framing test.
type headerStripper struct {
	http.ResponseWriter
	names []string
}

func (s *headerStripper) strip() {
	for _, n := range s.names {
		s.Header().Del(n)
	}
}

func (s *headerStripper) WriteHeader(code int) { s.strip(); s.ResponseWriter.WriteHeader(code) }

func (s *headerStripper) Write(b []byte) (int, error) { s.strip(); return s.ResponseWriter.Write(b) }

// TestBrowserFraming: another site cannot frame the login page (OA-H,
// clickjacking). The frame's document must be Chromium's error page without
// the login form, and the page's stylesheet is never fetched. The controls
// strip the IdP's headers and show that each of X-Frame-Options and the CSP
// frame-ancestors alone blocks, and that the check sees a rendered frame.
func TestBrowserFraming(t *testing.T) {
	browser := newBrowser(t)
	for _, tc := range []struct {
		name       string
		strip      []string
		wantFramed bool
	}{
		{"OA-H/login-page-not-framed", nil, false},
		{"OA-H/csp-alone-blocks", []string{"X-Frame-Options"}, false},
		{"OA-H/xfo-alone-blocks", []string{"Content-Security-Policy"}, false},
		{"control/no-headers-frame-renders", []string{"X-Frame-Options", "Content-Security-Policy"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var wrap func(http.Handler) http.Handler
			if tc.strip != nil {
				wrap = func(h http.Handler) http.Handler {
					return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
						h.ServeHTTP(&headerStripper{ResponseWriter: w, names: tc.strip}, r)
					})
				}
			}
			e := sqliteLocalEnv(t, wrap)
			_, ch := pkce()
			resp, _ := get(t, http.DefaultClient, e.Issuer+"/authorize?"+authParams("web", webRedirect, ch).Encode())
			loginURL := resp.Header.Get("Location")
			if resp.StatusCode != http.StatusFound || !strings.HasPrefix(loginURL, e.Issuer+"/login?auth_request=") {
				t.Fatalf("authorize: %d %q", resp.StatusCode, loginURL)
			}
			attacker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				fmt.Fprintf(w, `<!doctype html><title>attacker</title><iframe id="f" src="%s" width="600" height="500"></iframe>`,
					html.EscapeString(loginURL))
			}))
			t.Cleanup(attacker.Close)
			ctx := newTab(t, browser)
			run(t, ctx, "open the attacker page", chromedp.Navigate(attacker.URL), chromedp.WaitReady(chromedp.ID("f")))
			frame := frameTarget(t, ctx, loginURL)
			if tc.wantFramed {
				waitTrue(t, frame, "!!document.getElementById('login-form')", "location.href")
			} else {
				waitTrue(t, frame, "location.href.startsWith('chrome-error://') && !document.getElementById('login-form')", "location.href")
			}
			// The IdP served the page both times; only a rendered page
			// fetches its stylesheet.
			if n := len(e.Hits.find(http.MethodGet, "/login")); n != 1 {
				t.Errorf("%d GET /login", n)
			}
			css := 0
			for _, h := range e.Hits.all() {
				if strings.HasPrefix(h.Path, "/static/") {
					css++
				}
			}
			if framed := css > 0; framed != tc.wantFramed {
				t.Errorf("stylesheet fetched %d times; want framed=%v", css, tc.wantFramed)
			}
		})
	}
}
