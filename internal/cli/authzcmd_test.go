package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/authz/decisionlog"
)

// runAuthz runs "gatehouse authz ARGS" on the command newAuthzCmd builds.
func runAuthz(t *testing.T, stdin string, args ...string) (string, string, error) {
	t.Helper()
	cmd := newAuthzCmd()
	var out, errb bytes.Buffer
	cmd.SetArgs(args)
	cmd.SetIn(strings.NewReader(stdin))
	cmd.SetOut(&out)
	cmd.SetErr(&errb)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	err := cmd.Execute()
	return out.String(), errb.String(), err
}

// writeDecisionLog writes a log through the real Logger: alice allowed 2h
// ago, alice denied 30m ago, bob denied 10m ago with a shadow disagreement
// and a crafted reason, and returns its path.
func writeDecisionLog(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "decisions.jsonl")
	l, err := decisionlog.New(decisionlog.Config{Path: p, Sample: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	alice := decisionlog.Principal{Type: "user", ID: "usr_alice", TokenHash: "9f86d081"}
	l.Log(&decisionlog.Entry{ID: "dec_a1", Time: now.Add(-2 * time.Hour), Principal: alice, Action: "read",
		Resource: decisionlog.Resource{Type: "order", ID: "o-1001"}, Allow: true,
		Reason: "permitted by owner-reads", Policies: []string{"owner-reads"}, Context: map[string]any{"ip": "10.0.0.1"}})
	l.Log(&decisionlog.Entry{ID: "dec_a2", Time: now.Add(-30 * time.Minute), Principal: alice, Action: "delete",
		Resource: decisionlog.Resource{Type: "order", ID: "o-1001"}, Allow: false, Reason: "no permit"})
	l.Log(&decisionlog.Entry{ID: "dec_b1", Time: now.Add(-10 * time.Minute), Principal: decisionlog.Principal{Type: "user", ID: "usr_bob"},
		Action: "read", Resource: decisionlog.Resource{Type: "order", ID: "o-2"}, Allow: false,
		Reason: "tenant\x1b[31m mismatch\tx", Shadow: &decisionlog.Shadow{Allow: true, Disagree: true}})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return p
}

func ids(s string) []string {
	var out []string
	for _, f := range strings.Fields(s) {
		if strings.HasPrefix(f, "dec_") {
			out = append(out, f)
		}
	}
	return out
}

func TestAuthzDecisionsFilters(t *testing.T) {
	p := writeDecisionLog(t)
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"all newest first", nil, "dec_b1,dec_a2,dec_a1"},
		{"principal type:id", []string{"--principal", "user:usr_alice"}, "dec_a2,dec_a1"},
		{"principal id", []string{"--principal", "usr_bob"}, "dec_b1"},
		{"deny", []string{"--deny"}, "dec_b1,dec_a2"},
		{"allow", []string{"--allow"}, "dec_a1"},
		{"since duration", []string{"--since", "1h"}, "dec_b1,dec_a2"},
		{"since days", []string{"--since", "1d"}, "dec_b1,dec_a2,dec_a1"},
		{"since RFC 3339", []string{"--since", time.Now().Add(-15 * time.Minute).UTC().Format(time.RFC3339)}, "dec_b1"},
		{"action", []string{"--action", "delete"}, "dec_a2"},
		{"limit", []string{"--limit", "1"}, "dec_b1"},
		{"combined", []string{"--principal", "user:usr_alice", "--deny", "--since", "1h"}, "dec_a2"},
		{"nothing matches", []string{"--principal", "user:usr_carol"}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, _, err := runAuthz(t, "", append([]string{"decisions", "--file", p}, c.args...)...)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(out, "TIME") {
				t.Fatalf("no table header:\n%s", out)
			}
			if got := strings.Join(ids(out), ","); got != c.want {
				t.Fatalf("table ids = %q, want %q\n%s", got, c.want, out)
			}
			jout, _, err := runAuthz(t, "", append([]string{"decisions", "--file", p, "--json"}, c.args...)...)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, line := range strings.Split(strings.TrimSpace(jout), "\n") {
				if line == "" {
					continue
				}
				var e decisionlog.Entry
				dec := json.NewDecoder(strings.NewReader(line))
				dec.DisallowUnknownFields()
				if err := dec.Decode(&e); err != nil {
					t.Fatalf("--json line %q: %v", line, err)
				}
				got = append(got, e.ID)
			}
			if strings.Join(got, ",") != c.want {
				t.Fatalf("--json ids = %v, want %q", got, c.want)
			}
		})
	}
}

func TestAuthzDecisionsTable(t *testing.T) {
	p := writeDecisionLog(t)
	out, _, err := runAuthz(t, "", "decisions", "--file", p)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) != 4 {
		t.Fatalf("want header + 3 rows:\n%s", out)
	}
	for _, want := range []string{"DECISION", "PRINCIPAL", "ACTION", "RESOURCE", "REASON", "POLICIES", "ID"} {
		if !strings.Contains(lines[0], want) {
			t.Errorf("header lacks %s: %s", want, lines[0])
		}
	}
	a1 := lines[3]
	for _, want := range []string{"allow", "user:usr_alice", "read", "order:o-1001", "permitted by owner-reads", "owner-reads"} {
		if !strings.Contains(a1, want) {
			t.Errorf("row lacks %q: %s", want, a1)
		}
	}
	b1 := lines[1]
	if !strings.Contains(b1, "deny (shadow allow)") {
		t.Errorf("shadow disagreement not shown: %s", b1)
	}
	if strings.ContainsAny(out, "\x1b\t") || !strings.Contains(b1, "tenant?[31m mismatch?x") {
		t.Errorf("control characters from the log reached the terminal: %q", b1)
	}
}

func TestAuthzDecisionsStdin(t *testing.T) {
	b, err := os.ReadFile(writeDecisionLog(t))
	if err != nil {
		t.Fatal(err)
	}
	out, _, err := runAuthz(t, string(b), "decisions", "--file", "-", "--deny", "--json")
	if err != nil || len(strings.Split(strings.TrimSpace(out), "\n")) != 2 {
		t.Fatalf("stdin: %v\n%s", err, out)
	}
}

func TestAuthzDecisionsErrors(t *testing.T) {
	p := writeDecisionLog(t)
	bad := filepath.Join(t.TempDir(), "bad.jsonl")
	good, _ := os.ReadFile(p)
	if err := os.WriteFile(bad, append(good, []byte(`{"decision_id":"x","extra":1}`+"\n")...), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(t.TempDir(), "missing.jsonl")
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"missing file", []string{"--file", missing}, "open decision log: open " + missing + ": no such file or directory"},
		{"no --file", nil, `required flag(s) "file" not set`},
		{"bad line", []string{"--file", bad}, "line 4"},
		{"since garbage", []string{"--file", p, "--since", "yesterday"}, `invalid --since "yesterday"`},
		{"since negative", []string{"--file", p, "--since", "-1h"}, "must be positive"},
		{"since zero days", []string{"--file", p, "--since", "0d"}, `invalid --since "0d"`},
		{"deny and allow", []string{"--file", p, "--deny", "--allow"}, "deny"},
		{"negative limit", []string{"--file", p, "--limit", "-1"}, "invalid --limit"},
		{"positional argument", []string{"--file", p, "extra"}, "unknown command"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, _, err := runAuthz(t, "", append([]string{"decisions"}, c.args...)...)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want it to contain %q", err, c.want)
			}
			if out != "" {
				t.Fatalf("printed output on error:\n%s", out)
			}
		})
	}
}

func TestParseSince(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		in   string
		want time.Time
		ok   bool
	}{
		{"1h", now.Add(-time.Hour), true},
		{"90s", now.Add(-90 * time.Second), true},
		{"1h30m", now.Add(-90 * time.Minute), true},
		{"7d", now.Add(-7 * 24 * time.Hour), true},
		{"2026-11-01T00:00:00Z", time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), true},
		{"2026-11-01T01:00:00+01:00", time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), true},
		{"", time.Time{}, false},
		{"0s", time.Time{}, false},
		{"-5m", time.Time{}, false},
		{"d", time.Time{}, false},
		{"1.5d", time.Time{}, false},
		{"99999999d", time.Time{}, false},
		{"2026-11-01", time.Time{}, false},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			got, err := parseSince(c.in, now)
			if (err == nil) != c.ok {
				t.Fatalf("err = %v, want ok=%v", err, c.ok)
			}
			if c.ok && !got.Equal(c.want) {
				t.Fatalf("parseSince(%q) = %v, want %v", c.in, got, c.want)
			}
		})
	}
}
