package devdemo

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// FuzzCallbackQuery feeds arbitrary query strings to /callback in a browser
// that has a login in progress: none may sign it in, crash the handler or
// reflect markup unescaped.
func FuzzCallbackQuery(f *testing.F) {
	for _, s := range []string{
		"", "code=x&state=y&iss=z", "error=%3Cscript%3E&error_description=%22%3E%3Cimg%3E",
		"state=&iss=&code=", "%zz", ";;;&&==", "iss=a&iss=b&state=c&state=d",
		"code=" + strings.Repeat("A", 4096),
	} {
		f.Add(s)
	}
	h := newHarness(f)
	f.Fuzz(func(t *testing.T, rawQuery string) {
		c := newBrowser(t)
		c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		resp, err := c.Get(h.app.URL + "/login")
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body) // so the connection is reused
		resp.Body.Close()
		if resp.StatusCode != http.StatusFound {
			t.Fatalf("login: %d", resp.StatusCode)
		}
		req, err := http.NewRequest(http.MethodGet, h.app.URL+"/callback", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.URL.RawQuery = rawQuery
		resp, err = c.Do(req)
		if err != nil {
			return // the query made an invalid request line; nothing reached the app
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode < 400 {
			t.Fatalf("callback?%s answered %d", rawQuery, resp.StatusCode)
		}
		for _, ck := range resp.Cookies() {
			if ck.Name == sessionCookie && ck.Value != "" {
				t.Fatalf("callback?%s set a session", rawQuery)
			}
		}
		if strings.Contains(string(body), "<script") || strings.Contains(string(body), "<img") {
			t.Fatalf("callback?%s reflected markup", rawQuery)
		}
	})
}
