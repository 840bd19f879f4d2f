package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/testutil/syncbuf"
)

func TestParseFlags(t *testing.T) {
	const u = "https://127.0.0.1:8443"
	tests := []struct {
		name string
		cmd  string
		args []string
		ok   bool
	}{
		{"ca", "ca", []string{"-dir", "d"}, true},
		{"ca needs a dir", "ca", nil, false},
		{"ca ipv6 loopback", "ca", []string{"-dir", "d", "-host", "::1"}, true},
		{"ca name", "ca", []string{"-dir", "d", "-host", "localhost"}, false},
		{"ca unspecified", "ca", []string{"-dir", "d", "-host", "0.0.0.0"}, false},
		{"ca remote", "ca", []string{"-dir", "d", "-host", "192.0.2.1"}, false},
		{"ca no tokens", "ca", []string{"-dir", "d", "-tokens", "0"}, false},
		{"ca short ttl", "ca", []string{"-dir", "d", "-svid-ttl", "1s"}, false},
		{"ca stray argument", "ca", []string{"-dir", "d", "x"}, false},
		{"issue", "issue", []string{"-url", u, "-dir", "d"}, true},
		{"issue trailing slash", "issue", []string{"-url", u + "/", "-dir", "d"}, true},
		{"issue needs a dir", "issue", []string{"-url", u}, false},
		{"issue http", "issue", []string{"-url", "http://127.0.0.1:1", "-dir", "d"}, false},
		{"issue remote", "issue", []string{"-url", "https://192.0.2.1:1", "-dir", "d"}, false},
		{"issue name", "issue", []string{"-url", "https://localhost:1", "-dir", "d"}, false},
		{"issue path", "issue", []string{"-url", u + "/v1", "-dir", "d"}, false},
		{"issue query", "issue", []string{"-url", u + "?a=b", "-dir", "d"}, false},
		{"issue user", "issue", []string{"-url", "https://u:p@127.0.0.1:1", "-dir", "d"}, false},
		{"issue zero workers", "issue", []string{"-url", u, "-dir", "d", "-c", "0"}, false},
		{"issue negative skip", "issue", []string{"-url", u, "-dir", "d", "-skip", "-1"}, false},
		{"issue no pool", "issue", []string{"-url", u, "-dir", "d", "-pool", "0"}, false},
		{"issue zero duration", "issue", []string{"-url", u, "-dir", "d", "-d", "0s"}, false},
		{"issue negative warmup", "issue", []string{"-url", u, "-dir", "d", "-warmup", "-1s"}, false},
		{"baseline", "baseline", nil, true},
		{"baseline no calls", "baseline", []string{"-n", "0"}, false},
		{"baseline no pool", "baseline", []string{"-pool", "0"}, false},
		{"handshake", "handshake", nil, true},
		{"handshake subset", "handshake", []string{"-targets", "tls-full, mtls-resumed"}, true},
		{"handshake unknown target", "handshake", []string{"-targets", "tls-fast"}, false},
		{"handshake target twice", "handshake", []string{"-targets", "tls-full,tls-full"}, false},
		{"handshake no rounds", "handshake", []string{"-rounds", "0"}, false},
		{"serve", "serve", []string{"-dir", "d"}, true},
		{"serve needs a dir", "serve", nil, false},
		{"serve remote", "serve", []string{"-dir", "d", "-host", "10.0.0.1"}, false},
		{"get tls", "get", []string{"-url", u, "-dir", "d", "-target", "tls"}, true},
		{"get mtls h2", "get", []string{"-url", u, "-dir", "d", "-target", "mtls", "-h2"}, true},
		{"get needs a target", "get", []string{"-url", u, "-dir", "d"}, false},
		{"get bad target", "get", []string{"-url", u, "-dir", "d", "-target", "ssl"}, false},
		{"get relative path", "get", []string{"-url", u, "-dir", "d", "-target", "tls", "-path", "api"}, false},
		{"get path with query", "get", []string{"-url", u, "-dir", "d", "-target", "tls", "-path", "/a?b"}, false},
		{"get bad server id", "get", []string{"-url", u, "-dir", "d", "-target", "mtls", "-server-id", "https://x"}, false},
		{"get remote", "get", []string{"-url", "https://[2001:db8::1]:1", "-dir", "d", "-target", "tls"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			switch tt.cmd {
			case "ca":
				_, err = parseCA(tt.args, io.Discard)
			case "issue":
				_, err = parseIssue(tt.args, io.Discard)
			case "baseline":
				_, err = parseBaseline(tt.args, io.Discard)
			case "handshake":
				_, err = parseHandshake(tt.args, io.Discard)
			case "serve":
				_, err = parseServe(tt.args, io.Discard)
			case "get":
				_, err = parseGet(tt.args, io.Discard)
			}
			if (err == nil) != tt.ok {
				t.Fatalf("err = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

func TestRunUnknownSubcommand(t *testing.T) {
	for _, args := range [][]string{nil, {"bogus"}} {
		if err := run(t.Context(), args, io.Discard, io.Discard); err == nil {
			t.Fatalf("run(%q) succeeded", args)
		}
	}
}

func decodeLines[T any](t *testing.T, b []byte) []T {
	t.Helper()
	var out []T
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		var v T
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&v); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		out = append(out, v)
	}
	return out
}

func runLines[T any](t *testing.T, args ...string) []T {
	t.Helper()
	var out, errb bytes.Buffer
	if err := run(t.Context(), args, &out, &errb); err != nil {
		t.Fatalf("%v (stderr %s)", err, errb.String())
	}
	return decodeLines[T](t, out.Bytes())
}

// TestHandshake: one line per target, every handshake TLS 1.3, resumed
// exactly when the target says so.
func TestHandshake(t *testing.T) {
	lines := runLines[HandshakeResult](t, "handshake", "-n", "5", "-warmup", "1", "-rounds", "2")
	if len(lines) != 2*len(allHandshakeTargets) {
		t.Fatalf("%d lines: %+v", len(lines), lines)
	}
	for i, l := range lines {
		want := allHandshakeTargets[i%len(allHandshakeTargets)]
		wantResumed := 0
		if strings.HasSuffix(want, "-resumed") {
			wantResumed = 5
		}
		if l.Bench != "handshake" || l.Target != want || l.Round != i/len(allHandshakeTargets)+1 || l.Handshakes != 5 ||
			l.Errors != 0 || l.Resumed != wantResumed || l.Version != "TLS 1.3" || l.KeyExchange == "" || l.P99Us < l.P50Us || l.CPUUs < 0 {
			t.Fatalf("line %d: %+v", i, l)
		}
	}
}

// TestBaseline: the in-process issuance loop over a real CA.
func TestBaseline(t *testing.T) {
	lines := runLines[IssueBaseline](t, "baseline", "-n", "20", "-warmup", "2", "-pool", "4")
	if len(lines) != 1 {
		t.Fatalf("%d lines", len(lines))
	}
	if l := lines[0]; l.Bench != "baseline" || l.Target != "IssueCSR" || l.Calls != 20 || l.Errors != 0 || l.PerS <= 0 || l.P99Us < l.P50Us {
		t.Fatalf("line %+v", l)
	}
}

// server is a serving subcommand running in a goroutine.
type server struct {
	cancel context.CancelFunc
	done   chan error
}

// startSub runs a serving subcommand until the test ends and decodes the
// JSON line it prints once it serves.
func startSub[T any](t *testing.T, args ...string) T {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	pr, pw := io.Pipe()
	s := &server{cancel: cancel, done: make(chan error, 1)}
	var errb syncbuf.Buffer
	go func() {
		err := run(ctx, args, pw, &errb)
		_ = pw.CloseWithError(io.EOF)
		s.done <- err
	}()
	t.Cleanup(func() {
		s.cancel()
		select {
		case err := <-s.done:
			if err != nil {
				t.Errorf("%s: %v (stderr %s)", args[0], err, errb.String())
			}
		case <-time.After(30 * time.Second):
			t.Errorf("%s did not stop", args[0])
		}
	})
	line, err := bufio.NewReader(pr).ReadBytes('\n')
	if err != nil {
		t.Fatalf("%s: no address line: %v (stderr %s)", args[0], err, errb.String())
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	var v T
	if err := json.Unmarshal(line, &v); err != nil {
		t.Fatalf("%s: address line %q: %v", args[0], line, err)
	}
	return v
}

// checkLoadLine: one line, every request answered (the warm-up is 0, so
// the first request of each worker is measured).
func checkLoadLine(t *testing.T, lines []LoadResult, bench, target string, workers int) {
	t.Helper()
	if len(lines) != 1 {
		t.Fatalf("%d lines", len(lines))
	}
	l := lines[0]
	if l.Bench != bench || l.Target != target || l.Concurrency != workers || l.Errors != 0 || l.FirstError != "" ||
		l.Requests < workers || l.Sent < l.Requests || l.RPS <= 0 || l.P99Ms < l.P50Ms {
		t.Fatalf("line %+v", l)
	}
}

// TestCAAndIssue: the real CA API, workers bootstrapped with join tokens,
// renewals over mTLS; a spent join token cannot bootstrap again.
func TestCAAndIssue(t *testing.T) {
	dir := t.TempDir()
	addr := startSub[CAAddress](t, "ca", "-dir", dir, "-tokens", "4")
	if addr.TrustDomain != benchTD || addr.CAID != "spiffe://bench.test/gatehouse/ca" || addr.Tokens != 4 || addr.PID <= 0 {
		t.Fatalf("address %+v", addr)
	}
	load := []string{"issue", "-url", addr.URL, "-dir", dir, "-c", "2", "-d", "1s", "-warmup", "0s", "-pool", "4"}
	lines := runLines[LoadResult](t, load...)
	checkLoadLine(t, lines, "issue", "renewal", 2)
	if lines[0].Bootstrap != 2 {
		t.Fatalf("bootstrap = %d", lines[0].Bootstrap)
	}
	var errb bytes.Buffer
	if err := run(t.Context(), load, io.Discard, &errb); err == nil || !strings.Contains(err.Error(), "HTTP 401") {
		t.Fatalf("spent join tokens: err = %v", err)
	}
	if err := run(t.Context(), append(load, "-skip", "3"), io.Discard, &errb); err == nil || !strings.Contains(err.Error(), "raise ca -tokens") {
		t.Fatalf("too few join tokens: err = %v", err)
	}
}

// TestServeAndGet: both servers answer their own clients; the mTLS client
// is refused by the plain TLS server (no SVID) and by the policy on a path
// no rule allows.
func TestServeAndGet(t *testing.T) {
	dir := t.TempDir()
	addr := startSub[ServeAddress](t, "serve", "-dir", dir)
	if addr.Path != benchPath || addr.ServerID != "spiffe://bench.test/bench/server" {
		t.Fatalf("address %+v", addr)
	}
	short := []string{"-dir", dir, "-c", "2", "-d", "300ms", "-warmup", "0s"}
	for _, tc := range []struct {
		url, target string
		h2          bool
	}{{addr.TLS, "tls", false}, {addr.MTLS, "mtls", false}, {addr.TLS, "tls", true}, {addr.MTLS, "mtls", true}} {
		args := append([]string{"get", "-url", tc.url, "-target", tc.target}, short...)
		want := tc.target
		if tc.h2 {
			args, want = append(args, "-h2"), want+"-h2"
		}
		t.Run(want, func(t *testing.T) {
			checkLoadLine(t, runLines[LoadResult](t, args...), "get", want, 2)
		})
	}
	refused := []struct {
		name, want string
		args       []string
	}{
		{"mtls client, plain TLS server", "no URI SAN", []string{"-url", addr.TLS, "-target", "mtls"}},
		{"tls client, mTLS server", "certificate", []string{"-url", addr.MTLS, "-target", "tls"}},
		{"path no rule allows", "HTTP 403", []string{"-url", addr.MTLS, "-target", "mtls", "-path", "/admin"}},
		{"wrong server ID", "peer", []string{"-url", addr.MTLS, "-target", "mtls", "-server-id", "spiffe://bench.test/other"}},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			lines := runLines[LoadResult](t, append(append([]string{"get"}, tc.args...), short...)...)
			if len(lines) != 1 || lines[0].Errors == 0 || lines[0].Requests != 0 || !strings.Contains(lines[0].FirstError, tc.want) {
				t.Fatalf("lines %+v, want every request refused with %q", lines, tc.want)
			}
		})
	}
}

// FuzzCheckURL: an accepted -url is https on a loopback IP, and accepting
// is idempotent.
func FuzzCheckURL(f *testing.F) {
	for _, s := range []string{"https://127.0.0.1:8443", "https://[::1]:1/", "http://127.0.0.1", "https://localhost:1",
		"https://127.0.0.1:1/a", "https://u@127.0.0.1", "https://127.0.0.1#x", "https://0x7f.1:1", "https://127.1:1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		got, err := checkURL(raw)
		if err != nil {
			return
		}
		u, perr := url.Parse(got)
		if perr != nil || u.Scheme != "https" || u.User != nil || u.Path != "" || u.RawQuery != "" {
			t.Fatalf("checkURL(%q) = %q", raw, got)
		}
		if err := checkHost(u.Hostname()); err != nil {
			t.Fatalf("checkURL(%q) = %q: %v", raw, got, err)
		}
		if again, err := checkURL(got); err != nil || again != got {
			t.Fatalf("checkURL(%q) = %q, %v; want %q", got, again, err, got)
		}
	})
}
