package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/testutil/pgtest"
)

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name string
		cmd  string
		args []string
		ok   bool
	}{
		{"decide defaults", "decide", nil, true},
		{"decide sizes", "decide", []string{"-policies", "10, 100,1000", "-calls", "10"}, true},
		{"decide size below the open policies", "decide", []string{"-policies", "2"}, false},
		{"decide duplicate size", "decide", []string{"-policies", "10,10"}, false},
		{"decide no calls", "decide", []string{"-calls", "0"}, false},
		{"decide stray argument", "decide", []string{"x"}, false},
		{"rebac defaults", "rebac", nil, true},
		{"rebac tiny", "rebac", []string{"-users", "10", "-top", "2", "-docs", "5", "-per-user", "1"}, true},
		{"rebac more viewers than groups", "rebac", []string{"-top", "1", "-viewers", "2"}, false},
		{"rebac zero users", "rebac", []string{"-users", "0"}, false},
		{"rebac huge graph", "rebac", []string{"-users", "100000000"}, false},
		{"serve needs a dir", "serve", nil, false},
		{"serve", "serve", []string{"-dir", "d"}, true},
		{"serve ipv6 loopback", "serve", []string{"-dir", "d", "-host", "::1"}, true},
		// Refused: anything that may listen beyond this machine.
		{"serve name", "serve", []string{"-dir", "d", "-host", "localhost"}, false},
		{"serve unspecified", "serve", []string{"-dir", "d", "-host", "0.0.0.0"}, false},
		{"serve remote", "serve", []string{"-dir", "d", "-host", "192.0.2.1"}, false},
		{"serve long token", "serve", []string{"-dir", "d", "-token-ttl", "48h"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			switch tt.cmd {
			case "decide":
				_, err = parseDecide(tt.args, io.Discard)
			case "rebac":
				_, err = parseRebac(tt.args, io.Discard)
			case "serve":
				_, err = parseServe(tt.args, io.Discard)
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

// TestOpenGraphDBRefusesNames: the database name is spliced into SQL, so
// only plain identifiers pass.
func TestOpenGraphDBRefusesNames(t *testing.T) {
	for _, name := range []string{"", "Bench", "x;DROP DATABASE test", "a b", "a\"b", strings.Repeat("a", 64), "1abc"} {
		t.Run(name, func(t *testing.T) {
			if _, err := openGraphDB(t.Context(), "postgres", DefaultPostgresDSN, name); err == nil || !strings.Contains(err.Error(), "-database") {
				t.Fatalf("err = %v", err)
			}
		})
	}
}

func decodeLines[T any](t *testing.T, b []byte) []T {
	t.Helper()
	var out []T
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		var v T
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		out = append(out, v)
	}
	return out
}

// TestDecide runs the in-process timer briefly: one line per target and
// size, every call answered, the same allows for Authorize at both sizes.
func TestDecide(t *testing.T) {
	var out, errb bytes.Buffer
	err := run(t.Context(), []string{"decide", "-policies", "10,100", "-calls", "300", "-warmup", "20", "-dir", t.TempDir()}, &out, &errb)
	if err != nil {
		t.Fatalf("%v (stderr %s)", err, errb.String())
	}
	lines := decodeLines[Timing](t, out.Bytes())
	if len(lines) != 4 {
		t.Fatalf("%d lines: %s", len(lines), out.String())
	}
	allowed := map[string]int{}
	for _, l := range lines {
		if l.Calls != 300 || l.Errors != 0 || l.P50Us <= 0 || l.P99Us < l.P50Us || l.MeanUs <= 0 || l.Round != 1 {
			t.Fatalf("line %+v", l)
		}
		allowed[l.Target+"/"+string(rune('0'+l.Policies/100))] = l.Allowed
	}
	if a10, a100 := allowed["policy.Set.Authorize/0"], allowed["policy.Set.Authorize/1"]; a10 == 0 || a10 != a100 {
		t.Fatalf("allowed %v: want the same non-zero count at both sizes", allowed)
	}
	if allowed["authz.Service.Decide/0"] == 0 {
		t.Fatalf("allowed %v: Decide never allowed", allowed)
	}
}

// tinyGraphArgs are the flags of tinyGraph (seed aside: the same default).
func tinyGraphArgs() []string {
	return []string{"-users", "300", "-per-user", "2", "-levels", "4", "-fanout", "2", "-top", "6", "-docs", "120", "-viewers", "2",
		"-pairs", "10", "-uncached", "10", "-cached", "200", "-check-timeout", "20s"}
}

// runRebacTiny runs the rebac subcommand on a tiny graph and returns the
// load report and the two timings.
func runRebacTiny(t *testing.T, extra ...string) (LoadReport, []Timing) {
	t.Helper()
	var out, errb bytes.Buffer
	if err := run(t.Context(), append(append([]string{"rebac"}, tinyGraphArgs()...), extra...), &out, &errb); err != nil {
		t.Fatalf("%v (stderr %s)", err, errb.String())
	}
	first, rest, _ := bytes.Cut(out.Bytes(), []byte("\n"))
	var rep LoadReport
	if err := json.Unmarshal(first, &rep); err != nil {
		t.Fatalf("load line %q: %v", first, err)
	}
	ts := decodeLines[Timing](t, rest)
	if len(ts) != 2 {
		t.Fatalf("timings %s", rest)
	}
	for _, x := range ts {
		if x.Errors != 0 || x.Allowed != x.Calls/2 || x.P95Us <= 0 {
			t.Fatalf("timing %+v: want no errors and half allowed", x)
		}
	}
	return rep, ts
}

// TestRebacSQLite loads a tiny graph, reuses it, and reloads it on demand.
func TestRebacSQLite(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "graph.db")
	args := []string{"-driver", "sqlite", "-dsn", db}
	rep, _ := runRebacTiny(t, args...)
	if !rep.Loaded || rep.Tuples != tinyGraph().tupleCount() || rep.Batches != 2 || rep.Revision != 2 {
		t.Fatalf("first run %+v: want a load in 2 batches", rep)
	}
	rep, _ = runRebacTiny(t, args...)
	if rep.Loaded || rep.Tuples != tinyGraph().tupleCount() {
		t.Fatalf("second run %+v: want the graph reused", rep)
	}
	rep, _ = runRebacTiny(t, append(args, "-reload")...)
	if !rep.Loaded || rep.Tuples != tinyGraph().tupleCount() {
		t.Fatalf("reload %+v", rep)
	}
}

// TestRebacPostgres loads a tiny graph into its own database, which it
// drops at the end (CI has PostgreSQL; locally the test skips without it).
func TestRebacPostgres(t *testing.T) {
	t.Parallel()
	dsn := pgtest.DSN(t)
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	name := "gatehouse_bench_t" + hex.EncodeToString(b)
	t.Cleanup(func() {
		db, err := sql.Open("pgx", dsn)
		if err != nil {
			t.Error(err)
			return
		}
		defer db.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		// Either a database or, when it could not be created, a schema.
		if _, err := db.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
		if _, err := db.ExecContext(ctx, "DROP SCHEMA IF EXISTS "+name+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", name, err)
		}
	})
	rep, ts := runRebacTiny(t, "-dsn", dsn, "-database", name)
	if !rep.Loaded || rep.Tuples != tinyGraph().tupleCount() || !strings.Contains(rep.Where, "schema "+name) {
		t.Fatalf("load %+v", rep)
	}
	if !strings.Contains(ts[0].Target, "uncached (postgres)") {
		t.Fatalf("timing %+v", ts[0])
	}
	rep, _ = runRebacTiny(t, "-dsn", dsn, "-database", name)
	if rep.Loaded {
		t.Fatalf("second run %+v: want the graph reused", rep)
	}
}

// TestServe brings the HTTP bench up over a tiny SQLite graph and checks
// what each listener answers to the bodies it wrote.
func TestServe(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	graphArgs := append(tinyGraphArgs(), "-driver", "sqlite", "-dsn", filepath.Join(dir, "graph.db"))
	runRebacTiny(t, graphArgs[len(graphArgs)-4:]...)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	// A generous relationship budget: the first, uncached walk under -race
	// on a busy CI machine can exceed the service's 100 ms; this test
	// checks answers, the benchmark measures time.
	serveArgs := []string{"serve", "-dir", dir, "-policies", "100", "-rebac", "-rebac-timeout", "10s"}
	for i := 0; i+1 < len(graphArgs); i += 2 {
		if !slices.Contains([]string{"-pairs", "-uncached", "-cached", "-check-timeout"}, graphArgs[i]) {
			serveArgs = append(serveArgs, graphArgs[i], graphArgs[i+1])
		}
	}
	go func() { done <- run(ctx, serveArgs, pw, io.Discard); _ = pw.Close() }()
	var a Addresses
	if err := json.NewDecoder(pr).Decode(&a); err != nil {
		cancel()
		t.Fatalf("addresses: %v (serve: %v)", err, <-done)
	}
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	}()
	if a.Tuples != tinyGraph().tupleCount() {
		t.Fatalf("addresses %+v", a)
	}
	post := func(t *testing.T, url, bodyFile, token string) (int, string) {
		t.Helper()
		body, err := os.ReadFile(bodyFile)
		if err != nil {
			t.Fatal(err)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	tests := []struct {
		name, url, body, token string
		status                 int
		want                   string
	}{
		{"authorize allows", a.Authz + "/authorize", a.AuthorizeBody, a.Token, http.StatusOK, `"allow":true`},
		{"baseline allows", a.Baseline + "/authorize", a.AuthorizeBody, a.Token, http.StatusOK, `"allow":true`},
		{"check over the graph allows", a.Rebac + "/relationships/check", a.CheckBody, a.Token, http.StatusOK, `"allowed":true`},
		{"authorize without a token", a.Authz + "/authorize", a.AuthorizeBody, "", http.StatusUnauthorized, `"allow":false`},
		{"JWT-A06/altered signature", a.Rebac + "/relationships/check", a.CheckBody, a.Token[:len(a.Token)-4] + "AAAA", http.StatusUnauthorized, ""},
		{"baseline refuses a body of the wrong shape", a.Baseline + "/authorize", a.CheckBody, "", http.StatusBadRequest, `"allow":false`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := post(t, tt.url, tt.body, tt.token)
			if status != tt.status || !strings.Contains(body, tt.want) {
				t.Fatalf("status %d, body %s; want %d with %s", status, body, tt.status, tt.want)
			}
		})
	}
}

func FuzzParseSizes(f *testing.F) {
	for _, s := range []string{"10,1000", "3", " 10 , 20", "", "10,,20", "-1", "99999999999999999999", "10,10"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sizes, err := parseSizes(s)
		if err != nil {
			if sizes != nil {
				t.Fatalf("error %v with sizes %v", err, sizes)
			}
			return
		}
		seen := map[int]bool{}
		for _, n := range sizes {
			if n < nOpen+1 || n > 100000 || seen[n] {
				t.Fatalf("parseSizes(%q) = %v", s, sizes)
			}
			seen[n] = true
		}
	})
}
