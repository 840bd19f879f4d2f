package authz

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/authz/policy"
)

// TestFetchIDCannotEscapeTheTemplate: the resource id is attacker-chosen
// (e.g. a path segment at the gateway); it must stay one opaque value in the
// fetch URL: no "..", no extra query parameters, no path separators.
func TestFetchIDCannotEscapeTheTemplate(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.URL.EscapedPath()+"?"+r.URL.RawQuery)
		mu.Unlock()
		q := r.URL.Query()
		// What a naive upstream would answer for a traversal or an
		// injected parameter: an object that allows.
		traversal := false
		for _, seg := range strings.Split(r.URL.EscapedPath(), "/") {
			traversal = traversal || seg == "." || seg == ".."
		}
		if traversal || len(q["kind"]) > 1 || len(q["id"]) > 1 {
			_, _ = w.Write([]byte(`{"status": "open", "tenant": "acme"}`))
			return
		}
		http.Error(w, "no such order", http.StatusNotFound)
	}))
	t.Cleanup(srv.Close)
	for _, tc := range []struct{ name, tmpl, id string }{
		{"SSRF/dot-dot-path", srv.URL + "/orders/{id}/attrs", ".."},
		{"SSRF/dot-path", srv.URL + "/orders/{id}/attrs", "."},
		{"SSRF/query-injection", srv.URL + "/attrs?id={id}&kind=order", "o-1&kind=admin"},
		{"SSRF/query-equals", srv.URL + "/attrs?id={id}&kind=order", "x&id=o-1"},
		{"SSRF/slash", srv.URL + "/orders/{id}", "a/../../admin"},
		{"SSRF/encoded-slash", srv.URL + "/orders/{id}", "a%2F..%2F..%2Fadmin"},
		{"SSRF/question", srv.URL + "/orders/{id}", "x?kind=admin"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnvWith(t, nil, func(o *Options) {
				o.Fetch = map[string]FetchConfig{"order": {URL: tc.tmpl, Timeout: 5 * time.Second}}
			})
			res := e.svc.Decide(context.Background(), Input{Principal: entity("user", "usr_alice"), Action: "read",
				Resource: policy.Entity{Type: "order", ID: tc.id}})
			if res.Reason != "resource attributes unavailable" {
				mu.Lock()
				defer mu.Unlock()
				t.Fatalf("id %q: %+v (upstream saw %q)", tc.id, res, seen)
			}
		})
	}
}

// TestFetchErrorsDoNotLogTheURL: a fetch URL may carry a credential in its
// query; a failed fetch must not write it to the log.
func TestFetchErrorsDoNotLogTheURL(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	url := srv.URL
	srv.Close() // connection refused
	var buf bytes.Buffer
	var mu sync.Mutex
	e := newEnvWith(t, nil, func(o *Options) {
		o.Logger = slog.New(slog.NewTextHandler(&lockedWriter{mu: &mu, w: &buf}, nil))
		o.Fetch = map[string]FetchConfig{"order": {URL: url + "/orders/{id}?api_key=s3cr3t-key", Timeout: 5 * time.Second}}
	})
	res := e.svc.Decide(context.Background(), Input{Principal: entity("user", "usr_alice"), Action: "read",
		Resource: policy.Entity{Type: "order", ID: "o-1"}})
	if res.Allow || res.Reason != "resource attributes unavailable" {
		t.Fatalf("%+v", res)
	}
	mu.Lock()
	defer mu.Unlock()
	if out := buf.String(); strings.Contains(out, "s3cr3t-key") || !strings.Contains(out, "attribute fetch failed") {
		t.Fatalf("log: %s", out)
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// TestFetchCacheBoundedInBytes: fetched answers are up to 64 KiB each; the
// cache must bound its memory, not only its entry count.
func TestFetchCacheBoundedInBytes(t *testing.T) {
	c := fetchCache{entries: map[string]fetchEntry{}}
	now := time.Now()
	big := bytes.Repeat([]byte("x"), maxFetchBody)
	for i := range 2 * maxFetchCacheBytes / maxFetchBody {
		c.put("order\x00o-"+strconv.Itoa(i), big, now.Add(time.Hour), now)
	}
	if c.bytes > maxFetchCacheBytes {
		t.Fatalf("cache holds %d bytes, bound %d", c.bytes, maxFetchCacheBytes)
	}
	total := 0
	for _, e := range c.entries {
		total += len(e.raw)
	}
	if total != c.bytes {
		t.Fatalf("accounted %d bytes, holds %d", c.bytes, total)
	}
}

// FuzzFetchURL: whatever the id, the filled template keeps its shape: the
// id is exactly one path segment and exactly one query value.
func FuzzFetchURL(f *testing.F) {
	for _, s := range []string{"o-1", "..", ".", "a/b", "a?b", "a&k=v", "%2F", "a#b", "a b", "é", "+", ";x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		u, err := fetchURL("https://attrs.test/orders/{id}/attrs?id={id}&k=v", id)
		if id == "." || id == ".." {
			if err == nil {
				t.Fatalf("dot segment %q accepted", id)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		p, err := url.Parse(u)
		if err != nil {
			t.Fatalf("%q: %v", u, err)
		}
		segs := strings.Split(p.EscapedPath(), "/")
		if len(segs) != 4 || segs[1] != "orders" || segs[3] != "attrs" || p.Host != "attrs.test" || p.Fragment != "" {
			t.Fatalf("id %q changed the URL's shape: %q", id, u)
		}
		if got, err := url.PathUnescape(segs[2]); err != nil || got != id {
			t.Fatalf("segment %q unescapes to %q, %v; want %q", segs[2], got, err, id)
		}
		q, err := url.ParseQuery(p.RawQuery)
		if err != nil || len(q) != 2 || len(q["id"]) != 1 || q.Get("id") != id || q.Get("k") != "v" {
			t.Fatalf("id %q changed the query: %q", id, p.RawQuery)
		}
	})
}

// TestFetchTemplateIDOutsideTheAuthority: a template that lets the id
// choose the host (or user info) is refused at New.
func TestFetchTemplateIDOutsideTheAuthority(t *testing.T) {
	for _, tc := range []struct {
		tmpl string
		ok   bool
	}{
		{"https://attrs.test/orders/{id}", true},
		{"https://attrs.test/attrs?id={id}", true},
		{"https://{id}.attrs.test/orders", false},
		{"https://attrs{id}/orders", false},
		{"https://{id}@attrs.test/orders", false},
		{"https://attrs.test:8{id}/orders", false},
		{"https://attrs.test/orders#{id}", false},
	} {
		t.Run("SSRF/"+tc.tmpl, func(t *testing.T) {
			if err := checkFetchURL(tc.tmpl); (err == nil) != tc.ok {
				t.Fatalf("checkFetchURL(%q) = %v", tc.tmpl, err)
			}
		})
	}
}
