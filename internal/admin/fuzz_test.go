package admin

import (
	"crypto/sha256"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

func FuzzDecodeStrict(f *testing.F) {
	for _, s := range []string{
		`{"name":"a","redirect_uris":["https://a.example/cb"]}`,
		`{"name":"a","name":"b"}`,
		`{"NAME":"a"}`,
		`{"scopes":[[[[]]]]}`,
		`{"x":{"y":{"y":1}}}`,
		`{}{}`,
		`[1]`,
		``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var req ClientRequest
		if err := decodeStrict(body, &req); err != nil {
			return
		}
		keys, err := checkJSON(body)
		if err != nil {
			t.Fatalf("decoded but checkJSON fails: %v", err)
		}
		allowed := jsonFields(&req)
		seen := map[string]bool{}
		for _, k := range keys {
			if _, ok := allowed[k]; !ok {
				t.Fatalf("accepted unknown member %q", k)
			}
			if seen[strings.ToLower(k)] {
				t.Fatalf("accepted duplicate member %q", k)
			}
			seen[strings.ToLower(k)] = true
		}
	})
}

func FuzzRedirectURI(f *testing.F) {
	for _, s := range []string{
		"https://app.example.com/cb", "http://127.0.0.1:8080/cb", "com.example.app:/cb",
		"https://a.example/#", "https://*.example/", "javascript:alert(1)", "http://[::1]/",
		"https://a.example/%2e%2e/x", "https://u@a.example/", "HTTP://localhost/",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		var p problems
		checkRedirectURI("redirect_uris", raw, &p)
		if len(p) > 0 {
			return
		}
		if strings.ContainsAny(raw, "#* \\") {
			t.Fatalf("accepted %q", raw)
		}
		u, err := url.Parse(raw)
		if err != nil || u.Scheme == "" || u.User != nil || u.Fragment != "" {
			t.Fatalf("accepted %q", raw)
		}
		switch u.Scheme {
		case "https":
			if u.Host == "" {
				t.Fatalf("accepted https without host %q", raw)
			}
		case "http":
			if !isLoopbackHost(u.Hostname()) {
				t.Fatalf("accepted http on non-loopback %q", raw)
			}
		default:
			if !strings.Contains(u.Scheme, ".") || u.Host != "" {
				t.Fatalf("accepted scheme %q", raw)
			}
		}
	})
}

// FuzzAuthenticate checks that only "Bearer <token>" (scheme in any case)
// with the exact token authenticates.
func FuzzAuthenticate(f *testing.F) {
	const tok = "the-admin-token"
	sum := sha256.Sum256([]byte(tok))
	h := &handler{d: Deps{TokenSHA256: sum[:]}}
	for _, s := range []string{"Bearer " + tok, "bearer " + tok, "Bearer  " + tok, "Bearer " + tok + " ", "Basic " + tok, tok, ""} {
		f.Add(s, "")
	}
	f.Add("Bearer "+tok, "access_token=x")
	f.Fuzz(func(t *testing.T, header, query string) {
		r := httptest.NewRequest("GET", "/admin/v1/clients", nil)
		r.URL.RawQuery = query
		r.Header.Set("Authorization", header)
		err := h.authenticate(r)
		if err != nil {
			return
		}
		scheme, got, _ := strings.Cut(header, " ")
		if !strings.EqualFold(scheme, "Bearer") || got != tok {
			t.Fatalf("authenticated with %q", header)
		}
		if query != "" {
			t.Fatalf("accepted query %q", query)
		}
	})
}

// FuzzSPIFFEID checks that an accepted SPIFFE ID parses, is canonical (it
// prints back unchanged), has a path and fits the length cap.
func FuzzSPIFFEID(f *testing.F) {
	for _, s := range []string{
		"spiffe://gatehouse.local/orders", "spiffe://gatehouse.local", "spiffe://gatehouse.local/",
		"spiffe://Gatehouse.local/a", "spiffe://td/a/../b", "spiffe://td/a?b", "spiffe://u@td/a",
		"spiffe://td:1/a", "https://td/a", "spiffe://td/a%2fb", "spiffe://td//a", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		var p problems
		checkSPIFFEID("spiffe_id", raw, &p)
		if len(p) > 0 {
			return
		}
		id, err := spiffeid.FromString(raw)
		if err != nil || id.Path() == "" || len(raw) > maxSPIFFEIDLen || id.String() != raw {
			t.Fatalf("accepted %q (%v)", raw, err)
		}
	})
}
