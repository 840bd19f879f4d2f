package devdemo

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// TestCallbackRejects drives the real flow with a fake IdP that corrupts its
// authorization response or its ID token; no case may sign the browser in.
func TestCallbackRejects(t *testing.T) {
	const evil = "https://evil.example"
	tests := []struct {
		name       string
		mutateResp func(iss string, q url.Values)
		mutateID   func(iss string, c map[string]any)
		wantStatus int
		wantText   string
	}{
		{name: "OA-M/state-mismatch", mutateResp: func(_ string, q url.Values) { q.Set("state", "wrong") },
			wantStatus: 400, wantText: "state parameter does not match"},
		{name: "OA-M/state-missing", mutateResp: func(_ string, q url.Values) { q.Del("state") },
			wantStatus: 400, wantText: "state parameter does not match"},
		{name: "OA-M/state-prefix", mutateResp: func(_ string, q url.Values) { q.Set("state", q.Get("state")[:10]) },
			wantStatus: 400, wantText: "state parameter does not match"},
		{name: "OA-M/iss-wrong", mutateResp: func(_ string, q url.Values) { q.Set("iss", evil) },
			wantStatus: 400, wantText: "expected issuer"},
		{name: "OA-M/iss-trailing-slash", mutateResp: func(iss string, q url.Values) { q.Set("iss", iss+"/") },
			wantStatus: 400, wantText: "expected issuer"},
		{name: "OA-M/iss-upper-case", mutateResp: func(iss string, q url.Values) { q.Set("iss", strings.ToUpper(iss)) },
			wantStatus: 400, wantText: "expected issuer"},
		{name: "OA-M/iss-missing-though-advertised", mutateResp: func(_ string, q url.Values) { q.Del("iss") },
			wantStatus: 400, wantText: "expected issuer"},
		{name: "OA-M/iss-twice", mutateResp: func(iss string, q url.Values) { q["iss"] = []string{iss, evil} },
			wantStatus: 400, wantText: "expected issuer"},
		{name: "OA-M/iss-wrong-on-error-response", mutateResp: func(_ string, q url.Values) {
			q.Del("code")
			q.Set("error", "access_denied")
			q.Set("iss", evil)
		}, wantStatus: 400, wantText: "expected issuer"},
		{name: "OA-H/error-escaped", mutateResp: func(_ string, q url.Values) {
			q.Del("code")
			q.Set("error", "access_denied")
			q.Set("error_description", `<script>alert(1)</script>`)
		}, wantStatus: 400, wantText: "access_denied: &lt;script&gt;alert(1)&lt;/script&gt;"},
		{name: "OA-C/code-missing", mutateResp: func(_ string, q url.Values) { q.Del("code") },
			wantStatus: 400, wantText: "no authorization code"},
		{name: "OA-C/code-unknown", mutateResp: func(_ string, q url.Values) { q.Set("code", "forged") },
			wantStatus: 502, wantText: "invalid_grant"},
		{name: "nonce-mismatch", mutateID: func(_ string, c map[string]any) { c["nonce"] = "attacker-nonce" },
			wantStatus: 502, wantText: "nonce mismatch"},
		{name: "nonce-missing", mutateID: func(_ string, c map[string]any) { delete(c, "nonce") },
			wantStatus: 502, wantText: "nonce mismatch"},
		{name: "JWT-C02/id-token-iss-other", mutateID: func(_ string, c map[string]any) { c["iss"] = evil },
			wantStatus: 502, wantText: "ID token was rejected"},
		{name: "JWT-C03/id-token-aud-other", mutateID: func(_ string, c map[string]any) { c["aud"] = "another-client" },
			wantStatus: 502, wantText: "ID token was rejected"},
		{name: "JWT-C01/id-token-expired", mutateID: func(_ string, c map[string]any) {
			c["exp"] = time.Now().Add(-time.Hour).Unix()
		}, wantStatus: 502, wantText: "ID token was rejected"},
		{name: "at_hash-mismatch", mutateID: func(_ string, c map[string]any) { c["at_hash"] = "AAAAAAAAAAAAAAAAAAAAAA" },
			wantStatus: 502, wantText: "ID token was rejected"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			iss := h.idp.issuer()
			h.idp.set(func(f *fakeIdP) {
				if tt.mutateResp != nil {
					f.mutateResp = func(q url.Values) { tt.mutateResp(iss, q) }
				}
				if tt.mutateID != nil {
					f.mutateID = func(c map[string]any) { tt.mutateID(iss, c) }
				}
			})
			p := h.get("/login")
			if p.status != tt.wantStatus || p.url.Path != "/callback" {
				t.Fatalf("got %d at %s, want %d at /callback:\n%s", p.status, p.url, tt.wantStatus, p.body)
			}
			if !strings.Contains(p.body, `id="error"`) || !strings.Contains(p.body, tt.wantText) {
				t.Errorf("error page lacks %q:\n%s", tt.wantText, p.body)
			}
			if strings.Contains(p.body, "<script>") {
				t.Errorf("unescaped input reflected")
			}
			assertSignedOut(t, h)
			assertNoTokenLeak(t, h, p)
		})
	}
}

// TestCallbackSingleUse: a callback URL cannot be replayed, nor used in a
// browser that did not start the flow (login CSRF).
func TestCallbackSingleUse(t *testing.T) {
	h := newHarness(t)
	var callback string
	h.c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if req.URL.Path == "/callback" && callback == "" {
			callback = req.URL.String()
		}
		return nil
	}
	h.signIn()
	if callback == "" {
		t.Fatal("callback not seen")
	}
	for name, c := range map[string]*http.Client{"same-browser-replay": h.c, "other-browser": newBrowser(t)} {
		t.Run(name, func(t *testing.T) {
			resp, err := c.Get(callback)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest || resp.Request.URL.Path != "/callback" {
				t.Errorf("replayed callback: %d at %s", resp.StatusCode, resp.Request.URL)
			}
		})
	}
}

// TestCSRF: every state-changing POST needs the session's CSRF token and a
// same-origin request; a rejected POST changes nothing.
func TestCSRF(t *testing.T) {
	h := newHarness(t)
	home := h.signIn()
	good := home.csrf(t)
	second := *h // another browser on the same app
	second.c = newBrowser(t)
	other := second.signIn().csrf(t)
	tests := []struct {
		name string
		form url.Values
		hdr  http.Header
	}{
		{name: "CS-01/missing", form: url.Values{}},
		{name: "CS-01/empty", form: url.Values{"csrf": {""}}},
		{name: "CS-01/wrong", form: url.Values{"csrf": {"x" + good[1:]}}},
		{name: "CS-01/prefix", form: url.Values{"csrf": {good[:len(good)-1]}}},
		{name: "CS-01/other-session", form: url.Values{"csrf": {other}}},
		{name: "CS-01/cross-site-with-token", form: url.Values{"csrf": {good}},
			hdr: http.Header{"Sec-Fetch-Site": {"cross-site"}}},
		{name: "CS-01/foreign-origin-with-token", form: url.Values{"csrf": {good}},
			hdr: http.Header{"Origin": {"https://evil.example"}}},
	}
	for _, path := range []string{"/refresh", "/userinfo", "/logout"} {
		for _, tt := range tests {
			t.Run(tt.name+path, func(t *testing.T) {
				if p := h.post(path, tt.form, tt.hdr); p.status != http.StatusForbidden {
					t.Errorf("POST %s: got %d, want 403:\n%s", path, p.status, p.body)
				}
				if p := h.get("/"); !strings.Contains(p.body, `id="claim-sub"`) ||
					strings.Contains(p.body, `id="refreshed"`) || strings.Contains(p.body, `id="userinfo"`) {
					t.Errorf("a rejected POST changed the session:\n%s", p.body)
				}
			})
		}
	}
	t.Run("CS-01/no-state-change-via-GET", func(t *testing.T) {
		if p := h.get("/logout?csrf=" + url.QueryEscape(good)); p.status != http.StatusMethodNotAllowed {
			t.Errorf("GET /logout: %d", p.status)
		}
	})
	t.Run("CS-01/not-signed-in", func(t *testing.T) {
		anon := newHarness(t)
		if p := anon.post("/logout", url.Values{"csrf": {good}}, nil); p.status != http.StatusForbidden {
			t.Errorf("anonymous POST /logout: %d", p.status)
		}
	})
}

// TestIdPUnavailable: the demo may start before the IdP; it answers a clear
// 503 and recovers by itself (RL-01).
func TestIdPUnavailable(t *testing.T) {
	h := newHarness(t)
	h.idp.set(func(f *fakeIdP) { f.down = true })
	if p := h.get("/"); p.status != http.StatusOK || !strings.Contains(p.body, `id="signin"`) {
		t.Errorf("home page needs no IdP: %d", p.status)
	}
	p := h.get("/login")
	if p.status != http.StatusServiceUnavailable || !strings.Contains(p.body, "not reachable yet") ||
		p.header.Get("Retry-After") == "" {
		t.Fatalf("login with the IdP down: %d\n%s", p.status, p.body)
	}
	h.idp.set(func(f *fakeIdP) { f.down = false })
	h.signIn()
}

// TestHeadersAndCookies: security headers on every response (OA-H) and
// cookie attributes (SE-02, minus __Host-/Secure on plain-http loopback).
func TestHeadersAndCookies(t *testing.T) {
	h := newHarness(t)
	h.c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	want := map[string]string{
		"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
		"X-Frame-Options":         "DENY",
		"Referrer-Policy":         "no-referrer",
		"Cache-Control":           "no-store",
	}
	pages := []page{h.get("/"), h.get("/nope"), h.get("/callback?state=x")}
	login := h.get("/login")
	for _, p := range append(pages, login) {
		for k, v := range want {
			if got := p.header.Get(k); got != v {
				t.Errorf("%s: %s = %q, want %q", p.url.Path, k, got, v)
			}
		}
	}
	if login.status != http.StatusFound {
		t.Fatalf("login: %d", login.status)
	}
	loc, err := url.Parse(login.header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	q := loc.Query()
	if q.Get("code_challenge_method") != "S256" || len(q.Get("code_challenge")) != 43 ||
		len(q.Get("state")) != 43 || len(q.Get("nonce")) < 22 || q.Get("scope") != "openid profile email offline_access" {
		t.Errorf("authorization request: %v", q)
	}
	checkCookie := func(t *testing.T, hdr http.Header, name string) {
		t.Helper()
		for _, c := range (&http.Response{Header: hdr}).Cookies() {
			if c.Name == name {
				if !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.Domain != "" || len(c.Value) < 22 {
					t.Errorf("cookie %s: %+v", name, c)
				}
				return
			}
		}
		t.Errorf("no cookie %s", name)
	}
	checkCookie(t, login.header, flowCookie)

	// Finish the flow by hand to see the session cookie.
	resp, err := h.c.Get(loc.String())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cb := h.get(strings.TrimPrefix(resp.Header.Get("Location"), h.app.URL))
	if cb.status != http.StatusSeeOther || cb.header.Get("Location") != "/" {
		t.Fatalf("callback: %d %s", cb.status, cb.header.Get("Location"))
	}
	checkCookie(t, cb.header, sessionCookie)
}

func TestTruncate(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"", "(none)"},
		{"abcd", "ab…"},
		{"0123456789abcdef", "01234567…"},
		{"0123456789abcdefXYZ", "0123456789abcdef…"},
	} {
		if got := truncate(tt.in); got != tt.want {
			t.Errorf("truncate(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestDescribeTokenErrHidesBody(t *testing.T) {
	err := fmt.Errorf("exchange: %w", &oauth2.RetrieveError{
		Response: &http.Response{StatusCode: 400}, Body: []byte(`{"error":"invalid_grant","secret-body":1}`), ErrorCode: "invalid_grant",
	})
	if got := describeTokenErr(err); strings.Contains(got, "secret-body") || !strings.Contains(got, "invalid_grant") {
		t.Errorf("describeTokenErr = %q", got)
	}
	if got := describeTokenErr(errors.New("dial tcp: refused")); got == "" {
		t.Errorf("empty description")
	}
}

func TestClip(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"short", "short"},
		{strings.Repeat("a", 12), "aaaaaaaaaa…"},
		{"ab\xffcd", "ab\uFFFDcd"},
		{"aaaaaaaaa€", "aaaaaaaaa\uFFFD…"}, // a cut inside a rune is repaired
	} {
		if got := clip(tt.in, 10); got != tt.want {
			t.Errorf("clip(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestSessionFixation: a session id planted before sign-in is never adopted
// (SE-01).
func TestSessionFixation(t *testing.T) {
	h := newHarness(t)
	const planted = "attacker-chosen-session-id-0123456789"
	u, err := url.Parse(h.app.URL)
	if err != nil {
		t.Fatal(err)
	}
	h.c.Jar.SetCookies(u, []*http.Cookie{{Name: sessionCookie, Value: planted, Path: "/"}})
	h.signIn()
	for _, c := range h.c.Jar.Cookies(u) {
		if c.Name == sessionCookie && c.Value == planted {
			t.Fatal("planted session id kept")
		}
	}
	attacker := *h
	attacker.c = newBrowser(t)
	attacker.c.Jar.SetCookies(u, []*http.Cookie{{Name: sessionCookie, Value: planted, Path: "/"}})
	assertSignedOut(t, &attacker)
}
