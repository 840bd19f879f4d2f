package workload_test

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/gatehouse/gatehouse/sdk/workload"
)

func FuzzDecodePolicy(f *testing.F) {
	seed := func(rules ...workload.Rule) {
		p, err := workload.NewPolicy(rules)
		if err != nil {
			f.Fatal(err)
		}
		b, _ := json.Marshal(p)
		f.Add(b)
	}
	seed()
	seed(workload.Rule{Name: "a", Effect: "allow", From: []string{"spiffe://td/a"}, To: []string{"spiffe://td/*"},
		Paths: []string{"/x", "/y/*"}, Methods: []string{"GET"}})
	seed(workload.Rule{Name: "d", Effect: "deny", From: []string{"spiffe://td/ns/*"}, To: []string{"spiffe://td/b"}})
	f.Add([]byte(`{"version":"","rules":[{"name":"a","Name":"b"}]}`))
	f.Add([]byte(`{"version":1,"rules":[null]}`))
	f.Add([]byte(`{"rules":[],"version":"x","rules":[]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := workload.DecodePolicy(b)
		if err != nil {
			if p != nil {
				t.Fatal("policy with an error")
			}
			return
		}
		// A decoded policy re-encodes to an equivalent document.
		out, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		q, err := workload.DecodePolicy(out)
		if err != nil {
			t.Fatalf("re-decode: %v\n%s", err, out)
		}
		if q.Version() != p.Version() {
			t.Fatal("version changed on round trip")
		}
	})
}

// canonicalForTest is an independent statement of what a canonical
// escaped request path is.
func canonicalForTest(p string) bool {
	if p == "" || p[0] != '/' || strings.Contains(p, "\\") {
		return false
	}
	lower := strings.ToLower(p)
	for _, bad := range []string{"%2f", "%5c", "%2e"} {
		if strings.Contains(lower, bad) {
			return false
		}
	}
	if _, err := url.PathUnescape(p); err != nil {
		return false
	}
	segs := strings.Split(p[1:], "/")
	for i, s := range segs {
		if s == "." || s == ".." || (s == "" && i != len(segs)-1) {
			return false
		}
	}
	return true
}

func FuzzDecide(f *testing.F) {
	p, err := workload.NewPolicy([]workload.Rule{
		{Name: "any", Effect: "allow", From: []string{"spiffe://td/*"}, To: []string{"spiffe://td/*"}, Paths: []string{"/*", "/"}},
		{Name: "exact", Effect: "allow", From: []string{"spiffe://td/a"}, To: []string{"spiffe://td/b"}, Paths: []string{"/orders"}, Methods: []string{"GET"}},
		{Name: "no-admin", Effect: "deny", From: []string{"spiffe://td/*"}, To: []string{"spiffe://td/b"}, Paths: []string{"/admin", "/admin/*"}},
	})
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{"/orders", "/orders/../admin", "/orders/%2e%2e/admin", "//admin", "/admin%2F", "/%61dmin", "/a/./b", "", "*", "/\\admin", "/adm%69n"} {
		f.Add("GET", s)
	}
	caller := spiffeid.RequireFromString("spiffe://td/a")
	target := spiffeid.RequireFromString("spiffe://td/b")
	f.Fuzz(func(t *testing.T, method, path string) {
		d := p.Decide(caller, target, method, path)
		if !d.Allow {
			if d.Reason == "" {
				t.Fatal("deny without a reason")
			}
			return
		}
		if !canonicalForTest(path) {
			t.Fatalf("non-canonical path %q allowed", path)
		}
		dec, _ := url.PathUnescape(path)
		if dec == "/admin" || strings.HasPrefix(dec, "/admin/") {
			t.Fatalf("%q reaches /admin despite the deny rule", path)
		}
		if method == "" || strings.ToUpper(method) != method {
			t.Fatalf("method %q allowed", method)
		}
	})
}
