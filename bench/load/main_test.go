package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestCheckURL(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"http://127.0.0.1:8080", "http://127.0.0.1:8080", true},
		{"http://127.0.0.1:8080/", "http://127.0.0.1:8080", true},
		{"https://localhost:8443/base", "https://localhost:8443/base", true},
		{"http://[::1]:8080", "http://[::1]:8080", true},
		{"http://127.8.9.10:1", "http://127.8.9.10:1", true},
		// Refused: anything that may leave the machine or is ambiguous.
		{"http://10.0.0.1:8080", "", false},
		{"http://example.com", "", false},
		{"http://localhost.example.com", "", false},
		{"http://127.0.0.1.nip.io", "", false},
		{"http://0.0.0.0:8080", "", false},
		{"ftp://127.0.0.1", "", false},
		{"http://user:pw@127.0.0.1", "", false},
		{"http://127.0.0.1/?x=1", "", false},
		{"127.0.0.1:8080", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		got, err := checkURL(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("checkURL(%q) = %q, %v; want %q ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestPercentile(t *testing.T) {
	seq := func(n int) []time.Duration {
		s := make([]time.Duration, n)
		for i := range s {
			s[i] = time.Duration(i + 1)
		}
		return s
	}
	tests := []struct {
		n    int
		q    float64
		want time.Duration
	}{
		{0, 0.5, 0},
		{1, 0.5, 1},
		{1, 0.99, 1},
		{2, 0.5, 1},
		{100, 0.5, 50},
		{100, 0.99, 99},
		{1000, 0.99, 990},
		{101, 0.99, 100},
	}
	for _, tt := range tests {
		if got := percentile(seq(tt.n), tt.q); got != tt.want {
			t.Errorf("percentile(1..%d, %v) = %v, want %v", tt.n, tt.q, got, tt.want)
		}
	}
}

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		ok   bool
	}{
		{"cc", []string{"-client-id", "a", "-client-secret", "s"}, true},
		{"introspect with token", []string{"-mode", "introspect", "-client-id", "a", "-client-secret", "s", "-token", "t"}, true},
		{"introspect with cc creds", []string{"-mode", "introspect", "-client-id", "a", "-client-secret", "s", "-cc-id", "b", "-cc-secret", "x"}, true},
		{"introspect without token source", []string{"-mode", "introspect", "-client-id", "a", "-client-secret", "s"}, false},
		{"no credentials", []string{}, false},
		{"unknown mode", []string{"-mode", "x", "-client-id", "a", "-client-secret", "s"}, false},
		{"zero concurrency", []string{"-c", "0", "-client-id", "a", "-client-secret", "s"}, false},
		{"unbounded duration", []string{"-d", "0s", "-client-id", "a", "-client-secret", "s"}, false},
		{"stray argument", []string{"-client-id", "a", "-client-secret", "s", "extra"}, false},
		{"get needs no credentials", []string{"-mode", "get"}, true},
		{"get with token and rate", []string{"-mode", "get", "-token", "eyJ.a-b_c.d~+/=", "-rate", "500"}, true},
		{"get token with a space", []string{"-mode", "get", "-token", "a b"}, false},
		{"get token with CRLF", []string{"-mode", "get", "-token", "a\r\nX-Evil: 1"}, false},
		{"negative rate", []string{"-mode", "get", "-rate", "-1"}, false},
		{"NaN rate", []string{"-mode", "get", "-rate", "NaN"}, false},
		{"huge rate", []string{"-mode", "get", "-rate", "1e9"}, false},
		{"post with body", []string{"-mode", "post", "-body-file", "b.json", "-token", "t", "-expect-substring", `"allow":true`}, true},
		{"post without body", []string{"-mode", "post"}, false},
		{"post token with CRLF", []string{"-mode", "post", "-body-file", "b.json", "-token", "a\r\nX: 1"}, false},
		{"body file outside post", []string{"-mode", "get", "-body-file", "b.json"}, false},
		{"expect outside post", []string{"-mode", "get", "-expect-substring", "x"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseFlags(tt.args, io.Discard)
			if (err == nil) != tt.ok {
				t.Fatalf("err = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

// TestRun drives a fake server in both modes and checks the counting: every
// answer is 2xx except every 10th token request, and introspection answers
// say inactive for a wrong token.
func TestRun(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// RFC 6749 §2.3.1: both parts are form-encoded (as zitadel/oidc decodes them).
		id, secret, _ := r.BasicAuth()
		id, _ = url.QueryUnescape(id)
		secret, _ = url.QueryUnescape(secret)
		if err := r.ParseForm(); err != nil || r.Method != http.MethodPost {
			http.Error(w, "bad", http.StatusBadRequest)
			return
		}
		switch r.URL.Path {
		case tokenPath:
			if id != "svc" || secret != "s/+=" || r.PostForm.Get("grant_type") != "client_credentials" {
				http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
				return
			}
			if n.Add(1)%10 == 0 {
				http.Error(w, `{"error":"server_error"}`, http.StatusInternalServerError)
				return
			}
			_, _ = io.WriteString(w, `{"access_token":"tok","token_type":"Bearer"}`)
		case introspectPath:
			if id != "api" {
				http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
				return
			}
			_, _ = io.WriteString(w, `{"active":`+map[bool]string{true: "true", false: "false"}[r.PostForm.Get("token") == "tok"]+`}`)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()

	run1 := func(t *testing.T, args ...string) (Result, string) {
		t.Helper()
		var out, errb bytes.Buffer
		args = append([]string{"-url", srv.URL, "-c", "4", "-d", "300ms", "-warmup", "50ms"}, args...)
		if err := run(args, &out, &errb); err != nil {
			t.Fatalf("run: %v (stderr %s)", err, errb.String())
		}
		var res Result
		if err := json.Unmarshal(out.Bytes(), &res); err != nil {
			t.Fatalf("output %q: %v", out.String(), err)
		}
		return res, errb.String()
	}

	t.Run("cc counts non-2xx as errors", func(t *testing.T) {
		res, stderr := run1(t, "-mode", "cc", "-client-id", "svc", "-client-secret", "s/+=")
		if res.Requests == 0 || res.Errors == 0 || res.Mode != "cc" || res.Concurrency != 4 {
			t.Fatalf("result %+v", res)
		}
		if ratio := float64(res.Errors) / float64(res.Requests+res.Errors); ratio < 0.05 || ratio > 0.15 {
			t.Fatalf("error ratio %v, want about 0.1", ratio)
		}
		if strings.Count(stderr, "first error") != 1 || !strings.Contains(stderr, "HTTP 500") {
			t.Fatalf("stderr %q: want the first error exactly once", stderr)
		}
		if res.Sent < res.Requests+res.Errors {
			t.Fatalf("sent %d < requests %d + errors %d", res.Sent, res.Requests, res.Errors)
		}
		if res.P50Ms <= 0 || res.P99Ms < res.P50Ms || res.RPS <= 0 {
			t.Fatalf("result %+v", res)
		}
	})
	t.Run("introspect fetches a token first", func(t *testing.T) {
		n.Store(0) // the fetch is request 1: not an error
		res, _ := run1(t, "-mode", "introspect", "-client-id", "api", "-client-secret", "x", "-cc-id", "svc", "-cc-secret", "s/+=")
		if res.Requests == 0 || res.Errors != 0 {
			t.Fatalf("result %+v", res)
		}
	})
	t.Run("inactive answers are errors", func(t *testing.T) {
		res, _ := run1(t, "-mode", "introspect", "-client-id", "api", "-client-secret", "x", "-token", "wrong")
		if res.Requests != 0 || res.Errors == 0 {
			t.Fatalf("result %+v", res)
		}
	})
	t.Run("refuses a remote host", func(t *testing.T) {
		err := run([]string{"-url", "http://192.0.2.1", "-client-id", "a", "-client-secret", "s"}, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "not loopback") {
			t.Fatalf("err = %v", err)
		}
	})
}

// TestRunGet drives a fake upstream in get mode: only 200 with the right
// bearer token is a success, and -rate paces requests on a schedule whose
// latency counts from when each request was due.
func TestRunGet(t *testing.T) {
	var slow atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || r.URL.Path != "/api/hello" {
			http.NotFound(w, r)
			return
		}
		if slow.Load() {
			time.Sleep(20 * time.Millisecond)
		}
		switch r.Header.Get("Authorization") {
		case "", "Bearer good":
			_, _ = io.WriteString(w, `{"ok":true}`)
		case "Bearer created":
			w.WriteHeader(http.StatusCreated) // 2xx but not 200: an error in get mode
		default:
			http.Error(w, "unauthorized", http.StatusUnauthorized)
		}
	}))
	defer srv.Close()
	run1 := func(t *testing.T, args ...string) Result {
		t.Helper()
		var out, errb bytes.Buffer
		args = append([]string{"-mode", "get", "-url", srv.URL + "/api/hello", "-c", "4", "-d", "300ms", "-warmup", "50ms"}, args...)
		if err := run(args, &out, &errb); err != nil {
			t.Fatalf("run: %v (stderr %s)", err, errb.String())
		}
		var res Result
		if err := json.Unmarshal(out.Bytes(), &res); err != nil {
			t.Fatalf("output %q: %v", out.String(), err)
		}
		return res
	}
	tests := []struct {
		name     string
		token    string
		wantErrs bool
	}{
		{"no token", "", false},
		{"good token", "good", false},
		{"refused token", "bad", true},
		{"201 is not 200", "created", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := run1(t, "-token", tt.token)
			failed := res.Errors > 0 && res.Requests == 0
			succeeded := res.Errors == 0 && res.Requests > 0
			if (tt.wantErrs && !failed) || (!tt.wantErrs && !succeeded) {
				t.Fatalf("result %+v, want errors=%v", res, tt.wantErrs)
			}
			if res.Mode != "get" || res.Rate != 0 || res.LagP99Ms != 0 {
				t.Fatalf("closed loop result %+v", res)
			}
		})
	}
	t.Run("paced at a fixed rate", func(t *testing.T) {
		res := run1(t, "-token", "good", "-rate", "200")
		// 200/s over a 300 ms window: 60 requests due.
		if res.Errors != 0 || res.Requests < 50 || res.Requests > 61 || res.Rate != 200 {
			t.Fatalf("result %+v, want about 60 requests", res)
		}
	})
	t.Run("paced latency counts from when a request was due", func(t *testing.T) {
		slow.Store(true)
		defer slow.Store(false)
		// One worker, 20 ms per answer, one request due every 5 ms: the
		// backlog grows, and so does the latency measured from the schedule.
		res := run1(t, "-token", "good", "-rate", "200", "-c", "1")
		if res.Requests == 0 || res.P99Ms < 100 || res.LagP99Ms < 80 {
			t.Fatalf("result %+v, want p99 and lag that include the queueing", res)
		}
	})
}

// TestRunPost drives a fake decision endpoint in post mode: the body file is
// sent as JSON with the bearer token, and only a 200 whose answer contains
// -expect-substring counts as a success.
func TestRunPost(t *testing.T) {
	const want = `{"principal":{"id":"u1"},"action":"read"}`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		switch {
		case r.Method != http.MethodPost || r.URL.Path != "/authorize":
			http.NotFound(w, r)
		case r.Header.Get("Content-Type") != "application/json":
			http.Error(w, `{"allow":false}`, http.StatusUnsupportedMediaType)
		case r.Header.Get("Authorization") != "Bearer good":
			http.Error(w, `{"allow":false}`, http.StatusUnauthorized)
		case string(body) != want:
			http.Error(w, `{"allow":false}`, http.StatusBadRequest)
		default:
			_, _ = io.WriteString(w, `{"allow":true,"reason":"permitted"}`)
		}
	}))
	defer srv.Close()
	dir := t.TempDir()
	good := filepath.Join(dir, "good.json")
	if err := os.WriteFile(good, []byte(want), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`{"x":`), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		args     []string
		wantErrs bool
	}{
		{"allowed", []string{"-token", "good", "-expect-substring", `"allow":true`}, false},
		{"any 200 without expectation", []string{"-token", "good"}, false},
		{"expected substring absent", []string{"-token", "good", "-expect-substring", `"allow":false`}, true},
		{"refused token", []string{"-token", "bad"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			args := append([]string{"-mode", "post", "-url", srv.URL + "/authorize", "-body-file", good,
				"-c", "2", "-d", "200ms", "-warmup", "20ms"}, tt.args...)
			if err := run(args, &out, &errb); err != nil {
				t.Fatalf("run: %v (stderr %s)", err, errb.String())
			}
			var res Result
			if err := json.Unmarshal(out.Bytes(), &res); err != nil {
				t.Fatalf("output %q: %v", out.String(), err)
			}
			failed := res.Errors > 0 && res.Requests == 0
			succeeded := res.Errors == 0 && res.Requests > 0
			if (tt.wantErrs && !failed) || (!tt.wantErrs && !succeeded) || res.Mode != "post" {
				t.Fatalf("result %+v, want errors=%v", res, tt.wantErrs)
			}
		})
	}
	t.Run("refuses a body that is not JSON", func(t *testing.T) {
		err := run([]string{"-mode", "post", "-url", srv.URL, "-body-file", bad}, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "not valid JSON") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("refuses a missing body file", func(t *testing.T) {
		err := run([]string{"-mode", "post", "-url", srv.URL, "-body-file", filepath.Join(dir, "none")}, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "-body-file") {
			t.Fatalf("err = %v", err)
		}
	})
}
