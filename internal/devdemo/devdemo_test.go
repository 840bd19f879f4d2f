package devdemo

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
)

// lockedBuffer collects log output written from server goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// harness is the demo app served next to a fake IdP, and a browser-like
// client with a cookie jar that follows redirects.
type harness struct {
	t    testing.TB
	idp  *fakeIdP
	app  *httptest.Server
	logs *lockedBuffer
	c    *http.Client
}

func newHarness(t testing.TB) *harness {
	t.Helper()
	idp := newFakeIdP(t)
	logs := &lockedBuffer{}
	var h http.Handler
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	t.Cleanup(app.Close)
	idp.set(func(f *fakeIdP) { f.redirectURI = app.URL + "/callback" })
	h = New(Config{
		Issuer:       idp.issuer(),
		ClientID:     idp.clientID,
		ClientSecret: idp.secret,
		RedirectURL:  app.URL + "/callback",
		HTTPClient:   idp.srv.Client(),
	}, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))).Handler()
	return &harness{t: t, idp: idp, app: app, logs: logs, c: newBrowser(t)}
}

func newBrowser(t testing.TB) *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar}
}

type page struct {
	status int
	url    *url.URL
	header http.Header
	body   string
}

func (h *harness) do(req *http.Request) page {
	h.t.Helper()
	resp, err := h.c.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	return page{status: resp.StatusCode, url: resp.Request.URL, header: resp.Header, body: string(b)}
}

func (h *harness) get(path string) page {
	h.t.Helper()
	req, err := http.NewRequest(http.MethodGet, h.app.URL+path, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	return h.do(req)
}

func (h *harness) post(path string, form url.Values, hdr http.Header) page {
	h.t.Helper()
	req, err := http.NewRequest(http.MethodPost, h.app.URL+path, strings.NewReader(form.Encode()))
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range hdr {
		req.Header[k] = v
	}
	return h.do(req)
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (p page) csrf(t *testing.T) string {
	t.Helper()
	m := csrfRE.FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("no CSRF token in page:\n%s", p.body)
	}
	return m[1]
}

// signIn runs the whole browser flow and returns the signed-in home page.
func (h *harness) signIn() page {
	h.t.Helper()
	home := h.get("/")
	if !strings.Contains(home.body, `id="signin"`) || !strings.Contains(home.body, `href="/login"`) {
		h.t.Fatalf("signed-out home page has no sign-in link:\n%s", home.body)
	}
	p := h.get("/login")
	if p.status != http.StatusOK || p.url.Path != "/" {
		h.t.Fatalf("sign-in ended at %s with %d:\n%s", p.url, p.status, p.body)
	}
	return p
}

func assertSignedOut(t *testing.T, h *harness) {
	t.Helper()
	p := h.get("/")
	if !strings.Contains(p.body, `id="signin"`) || strings.Contains(p.body, `id="claim-sub"`) {
		t.Fatalf("expected the signed-out page:\n%s", p.body)
	}
}

func assertNoTokenLeak(t *testing.T, h *harness, pages ...page) {
	t.Helper()
	h.idp.mu.Lock()
	issued := append([]string(nil), h.idp.issued...)
	h.idp.mu.Unlock()
	logs := h.logs.String()
	for _, tok := range issued {
		if strings.Contains(logs, tok) || strings.Contains(logs, tok[:20]) {
			t.Errorf("a token appears in the logs:\n%s", logs)
		}
		for _, p := range pages {
			if strings.Contains(p.body, tok[:17]) {
				t.Errorf("more than 16 characters of a token appear in a page")
			}
		}
	}
}

func TestHappyPath(t *testing.T) {
	h := newHarness(t)
	home := h.signIn()
	for _, want := range []string{
		`<dd id="claim-sub">` + testSub + `</dd>`,
		`<dd id="claim-preferred_username">` + testUsername + `</dd>`,
		`<dd id="claim-email">` + testEmail + `</dd>`,
		`<dd id="scope">openid profile email offline_access</dd>`,
		`id="expiry"`,
	} {
		if !strings.Contains(home.body, want) {
			t.Errorf("home page lacks %q:\n%s", want, home.body)
		}
	}
	h.idp.mu.Lock()
	at := h.idp.issued[0]
	h.idp.mu.Unlock()
	if !strings.Contains(home.body, at[:16]+"…") {
		t.Errorf("access token not shown truncated to 16 chars")
	}

	t.Run("refresh", func(t *testing.T) {
		p := h.post("/refresh", url.Values{"csrf": {home.csrf(t)}}, nil)
		if p.status != http.StatusOK || !strings.Contains(p.body, `id="refreshed"`) {
			t.Fatalf("refresh: %d\n%s", p.status, p.body)
		}
		if strings.Contains(p.body, at[:16]) {
			t.Errorf("page still shows the old access token")
		}
		// The message is shown once.
		if p := h.get("/"); strings.Contains(p.body, `id="refreshed"`) {
			t.Errorf("refreshed message shown twice")
		}
	})
	t.Run("userinfo", func(t *testing.T) {
		p := h.post("/userinfo", url.Values{"csrf": {home.csrf(t)}}, nil)
		if p.status != http.StatusOK || !strings.Contains(p.body, `id="userinfo"`) ||
			!strings.Contains(p.body, `&#34;preferred_username&#34;: &#34;alice&#34;`) {
			t.Fatalf("userinfo: %d\n%s", p.status, p.body)
		}
		assertNoTokenLeak(t, h, home, p)
	})
	t.Run("logout", func(t *testing.T) {
		h.idp.mu.Lock()
		idt := h.idp.lastIDToken
		h.idp.mu.Unlock()
		p := h.post("/logout", url.Values{"csrf": {home.csrf(t)}}, nil)
		if p.status != http.StatusOK || p.url.Path != "/end_session" {
			t.Fatalf("logout ended at %s with %d", p.url, p.status)
		}
		h.idp.mu.Lock()
		q := h.idp.lastLogout
		h.idp.mu.Unlock()
		if q.Get("id_token_hint") != idt || q.Get("client_id") != h.idp.clientID ||
			q.Get("post_logout_redirect_uri") != h.app.URL+"/" || len(q.Get("state")) < 22 {
			t.Errorf("end_session parameters: %v", q)
		}
		assertSignedOut(t, h)
		// SE-03: the old session's CSRF token and cookie no longer work.
		if p := h.post("/refresh", url.Values{"csrf": {home.csrf(t)}}, nil); p.status != http.StatusForbidden {
			t.Errorf("refresh after logout: %d", p.status)
		}
	})
	assertNoTokenLeak(t, h)
}
