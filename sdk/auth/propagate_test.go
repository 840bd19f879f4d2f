package auth

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// propServer is a downstream API that records the Authorization headers it
// receives.
type propServer struct {
	srv   *httptest.Server
	calls atomic.Int64
	mu    sync.Mutex
	auth  []string
}

func newPropServer(t testing.TB, h http.HandlerFunc) *propServer {
	p := &propServer{}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.calls.Add(1)
		p.mu.Lock()
		p.auth = append(p.auth, r.Header.Get("Authorization"))
		p.mu.Unlock()
		if h != nil {
			h(w, r)
			return
		}
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *propServer) headers() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.auth...)
}

func claimsCtx(token string) context.Context {
	return ContextWithClaims(context.Background(), &Claims{Subject: "alice", Token: token})
}

// recordingRT is a fake base transport that records what it is asked to send.
type recordingRT struct {
	mu   sync.Mutex
	reqs []*http.Request
}

func (r *recordingRT) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	r.reqs = append(r.reqs, req)
	r.mu.Unlock()
	return &http.Response{StatusCode: 200, Body: http.NoBody, Request: req, Header: http.Header{}}, nil
}

func (r *recordingRT) sent() []*http.Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*http.Request(nil), r.reqs...)
}

// closeTracker is a request body that records whether it was closed.
type closeTracker struct {
	io.Reader
	closed atomic.Bool
}

func (c *closeTracker) Close() error { c.closed.Store(true); return nil }

func TestPropagatingTransportForwardsToken(t *testing.T) {
	down := newPropServer(t, nil)
	rt, err := NewPropagatingTransport(nil, down.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequestWithContext(claimsCtx("caller.tok-en"), http.MethodGet, down.srv.URL+"/items", nil)
	resp, err := (&http.Client{Transport: rt}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := down.headers(); len(got) != 1 || got[0] != "Bearer caller.tok-en" {
		t.Fatalf("downstream saw %q", got)
	}
	if req.Header.Get("Authorization") != "" {
		t.Fatal("the caller's request was modified")
	}
}

func TestPropagatingTransportRefuses(t *testing.T) {
	down := newPropServer(t, nil)
	other := newPropServer(t, nil)
	rt, err := NewPropagatingTransport(nil, down.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	httpsSame := strings.Replace(down.srv.URL, "http://", "https://", 1)
	cases := []struct {
		name string
		ctx  context.Context
		url  string
		hdr  string
		want error
	}{
		{"other-origin", claimsCtx("s3cretTok"), other.srv.URL + "/x", "", ErrOriginNotAllowed},
		{"scheme-mismatch", claimsCtx("s3cretTok"), httpsSame + "/x", "", ErrOriginNotAllowed},
		{"no-claims", context.Background(), down.srv.URL + "/x", "", ErrNoToken},
		{"claims-without-token", ContextWithClaims(context.Background(), &Claims{Subject: "a"}), down.srv.URL + "/x", "", ErrNoToken},
		{"nil-claims", ContextWithClaims(context.Background(), nil), down.srv.URL + "/x", "", ErrNoToken},
		{"existing-authorization", claimsCtx("s3cretTok"), down.srv.URL + "/x", "Basic Zm9vOmJhcg==", ErrInvalidRequest},
		{"header-injection-in-token", claimsCtx("s3cretTok\r\nX-Admin: 1"), down.srv.URL + "/x", "", ErrInvalidToken},
		{"space-in-token", claimsCtx("s3cretTok en"), down.srv.URL + "/x", "", ErrInvalidToken},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			body := &closeTracker{Reader: strings.NewReader("payload")}
			req, _ := http.NewRequestWithContext(tc.ctx, http.MethodPost, tc.url, body)
			if tc.hdr != "" {
				req.Header.Set("Authorization", tc.hdr)
			}
			resp, err := rt.RoundTrip(req)
			if !errors.Is(err, tc.want) || resp != nil {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if !body.closed.Load() {
				t.Fatal("request body not closed")
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Fatalf("error mentions the token: %v", err)
			}
		})
	}
	if n, m := down.calls.Load(), other.calls.Load(); n != 0 || m != 0 {
		t.Fatalf("refused requests were sent: %d, %d", n, m)
	}
}

func TestPropagatingTransportOriginMatching(t *testing.T) {
	cases := []struct {
		allowed string
		url     string
		ok      bool
	}{
		{"https://api.example", "https://api.example/x", true},
		{"https://api.example", "https://api.example:443/x", true},
		{"https://api.example:443", "https://api.example/x", true},
		{"https://API.Example/", "https://api.EXAMPLE/x", true},
		{"http://api.example", "http://api.example:80/x", true},
		{"http://api.example:8080", "http://api.example:8080/x?y=1", true},
		{"https://[::1]:8443", "https://[::1]:8443/x", true},
		{"https://api.example", "http://api.example/x", false},
		{"https://api.example", "https://api.example:8443/x", false},
		{"https://api.example", "https://api.example:80/x", false},
		{"http://api.example", "http://api.example:443/x", false},
		{"https://api.example", "https://api.example.evil.com/x", false},
		{"https://api.example", "https://api.example@evil.com/x", false},
		{"https://api.example", "https://evil.com/https://api.example", false},
		{"https://api.example", "https://sub.api.example/x", false},
		{"https://api.example:8443", "https://api.example:08443/x", false},
		{"https://api.example", "ws://api.example/x", false},
	}
	for _, tc := range cases {
		t.Run(tc.allowed+" "+tc.url, func(t *testing.T) {
			base := &recordingRT{}
			rt, err := NewPropagatingTransport(base, tc.allowed)
			if err != nil {
				t.Fatal(err)
			}
			req, err := http.NewRequestWithContext(claimsCtx("tok"), http.MethodGet, tc.url, nil)
			if err != nil {
				t.Fatal(err)
			}
			_, err = rt.RoundTrip(req)
			sent := base.sent()
			if tc.ok {
				if err != nil || len(sent) != 1 || sent[0].Header.Get("Authorization") != "Bearer tok" {
					t.Fatalf("want sent with token: err=%v sent=%d", err, len(sent))
				}
				return
			}
			if !errors.Is(err, ErrOriginNotAllowed) || len(sent) != 0 {
				t.Fatalf("want refused unsent: err=%v sent=%d", err, len(sent))
			}
		})
	}
}

func TestPropagatingTransportConfig(t *testing.T) {
	bad := [][]string{
		nil,
		{""},
		{"api.example"},
		{"//api.example"},
		{"https://"},
		{"ftp://api.example"},
		{"https://api.example/path"},
		{"https://api.example?q=1"},
		{"https://api.example?"},
		{"https://api.example#f"},
		{"https://user@api.example"},
		{"https://api.example", "http:/oops"},
	}
	for _, origins := range bad {
		if _, err := NewPropagatingTransport(nil, origins...); err == nil {
			t.Errorf("origins %q accepted", origins)
		}
	}
}

func TestPropagatingTransportRedirects(t *testing.T) {
	other := newPropServer(t, nil)
	var down *propServer
	down = newPropServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/away":
			http.Redirect(w, r, other.srv.URL+"/stolen", http.StatusFound)
		case "/away-307":
			http.Redirect(w, r, other.srv.URL+"/stolen", http.StatusTemporaryRedirect)
		case "/here":
			http.Redirect(w, r, down.srv.URL+"/final", http.StatusFound)
		default:
			_, _ = io.WriteString(w, "ok")
		}
	})
	rt, err := NewPropagatingTransport(nil, down.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: rt}
	for _, path := range []string{"/away", "/away-307"} {
		req, _ := http.NewRequestWithContext(claimsCtx("tok"), http.MethodGet, down.srv.URL+path, nil)
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			t.Fatalf("%s: redirect to another origin followed", path)
		}
		if !errors.Is(err, ErrOriginNotAllowed) {
			t.Fatalf("%s: got %v", path, err)
		}
	}
	if n := other.calls.Load(); n != 0 {
		t.Fatalf("the other origin received %d requests", n)
	}
	// A redirect within the allowed origin keeps working, with the token.
	req, _ := http.NewRequestWithContext(claimsCtx("tok"), http.MethodGet, down.srv.URL+"/here", nil)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	got := down.headers()
	if len(got) != 4 || got[2] != "Bearer tok" || got[3] != "Bearer tok" {
		t.Fatalf("headers seen by the allowed origin: %q", got)
	}
}

// FuzzOriginCheck checks that whatever URL a request has, the transport
// sends it only when its normalised origin is the allowed one, and then
// with a well-formed Authorization header.
func FuzzOriginCheck(f *testing.F) {
	for _, s := range []string{"https://api.example/x", "https://API.example:443", "http://api.example", "https://api.example:8443",
		"https://api.example@evil", "https://[::1]:443/", "https://api.example./", "https://api.example%2f.evil/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := url.Parse(raw)
		if err != nil {
			return
		}
		base := &recordingRT{}
		rt, err := NewPropagatingTransport(base, "https://api.example")
		if err != nil {
			t.Fatal(err)
		}
		req := &http.Request{Method: http.MethodGet, URL: u, Header: http.Header{}}
		req = req.WithContext(claimsCtx("tok"))
		_, err = rt.RoundTrip(req)
		sent := base.sent()
		if err != nil {
			if len(sent) != 0 {
				t.Fatalf("refused but sent: %q", raw)
			}
			return
		}
		if len(sent) != 1 || !strings.EqualFold(u.Scheme, "https") || !strings.EqualFold(u.Hostname(), "api.example") ||
			(u.Port() != "" && u.Port() != "443") || sent[0].Header.Get("Authorization") != "Bearer tok" {
			t.Fatalf("sent to %q", raw)
		}
		if n, err := parseOrigin(raw); err == nil {
			if m, _ := normalOrigin(u); n != m {
				t.Fatalf("parseOrigin(%q) = %q, normalOrigin = %q", raw, n, m)
			}
		}
	})
}
