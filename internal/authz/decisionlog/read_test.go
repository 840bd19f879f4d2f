package decisionlog

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/testutil/syncbuf"
)

const goodLine = `{"decision_id":"dec_1","time":"2026-11-27T12:00:00Z","principal":{"type":"user","id":"usr_alice"},"action":"read","resource":{"type":"order","id":"o-1"},"allow":true,"latency_us":12}`

func TestReadStrict(t *testing.T) {
	cases := []struct {
		name    string
		in      string
		wantErr string // "" means success
		n       int
	}{
		{"one", goodLine + "\n", "", 1},
		{"no trailing newline", goodLine, "", 1},
		{"blank lines and CRLF", "\n" + goodLine + "\r\n\n  \n" + goodLine + "\n", "", 2},
		{"empty", "", "", 0},
		{"unknown member", goodLine + "\n" + strings.Replace(goodLine, `"allow"`, `"admin":true,"allow"`, 1), "line 2", 0},
		{"unknown nested member", strings.Replace(goodLine, `"id":"usr_alice"`, `"id":"usr_alice","email":"a@x"`, 1), "line 1", 0},
		{"unknown shadow member", strings.Replace(goodLine, `"allow":true`, `"allow":true,"shadow":{"allow":false,"extra":1}`, 1), "line 1", 0},
		{"context members are free", strings.Replace(goodLine, `"allow":true`, `"allow":true,"context":{"anything":{"goes":[1]}}`, 1), "", 1},
		{"bad JSON", goodLine + "\n" + goodLine + "\n{\"decision_id\":", "line 3", 0},
		{"not an object", "[1,2]", "line 1", 0},
		{"null", "null", "line 1", 0},
		{"trailing data", goodLine + " {}", "line 1", 0},
		{"two objects", goodLine + goodLine, "line 1", 0},
		{"wrong type", strings.Replace(goodLine, `"allow":true`, `"allow":"yes"`, 1), "line 1", 0},
		{"bad time", strings.Replace(goodLine, `2026-11-27T12:00:00Z`, `yesterday`, 1), "line 1", 0},
		{"line too long", goodLine + "\n" + strings.Repeat(" ", MaxLine+1) + "\n", "line 2", 0},
		{"line too long without newline", strings.Repeat("x", MaxLine+10), "line 1", 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			es, err := Read(strings.NewReader(c.in), Filter{})
			if c.wantErr == "" {
				if err != nil || len(es) != c.n {
					t.Fatalf("Read = %d entries, %v; want %d", len(es), err, c.n)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Fatalf("Read err = %v, want it to name %q", err, c.wantErr)
			}
			if es != nil {
				t.Fatal("entries returned with an error")
			}
		})
	}
}

func TestReadLongestLineAccepted(t *testing.T) {
	pad := MaxLine - len(goodLine) - len(`"context":{"p":""},`)
	line := strings.Replace(goodLine, `"allow"`, `"context":{"p":"`+strings.Repeat("a", pad)+`"},"allow"`, 1)
	if len(line) != MaxLine {
		t.Fatalf("test line is %d bytes", len(line))
	}
	if es, err := Read(strings.NewReader(line+"\n"), Filter{}); err != nil || len(es) != 1 {
		t.Fatalf("Read = %d, %v", len(es), err)
	}
}

func TestReadOrderAndFilter(t *testing.T) {
	var buf bytes.Buffer
	// Written out of time order, with a tie: newest first by time, the
	// later line first among equal times.
	for _, e := range []*Entry{entry(2, true), entry(1, false), entry(3, false), {ID: "dec_tie", Time: entry(3, false).Time, Action: "read", Principal: Principal{Type: "user", ID: "usr_bob"}}} {
		b, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		buf.Write(append(b, '\n'))
	}
	ids := func(es []Entry) string {
		var s []string
		for _, e := range es {
			s = append(s, e.ID)
		}
		return strings.Join(s, ",")
	}
	no := false
	cases := []struct {
		name string
		f    Filter
		want string
	}{
		{"all", Filter{}, "dec_tie,dec_003,dec_002,dec_001"},
		{"deny", Filter{Allow: &no}, "dec_tie,dec_003,dec_001"},
		{"principal", Filter{Principal: "user:usr_alice"}, "dec_003,dec_002,dec_001"},
		{"since", Filter{Since: t0.Add(2 * time.Second)}, "dec_tie,dec_003,dec_002"},
		{"limit", Filter{Principal: "usr_alice", Limit: 1}, "dec_003"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			es, err := Read(bytes.NewReader(buf.Bytes()), c.f)
			if err != nil {
				t.Fatal(err)
			}
			if got := ids(es); got != c.want {
				t.Fatalf("Read = %s, want %s", got, c.want)
			}
		})
	}
}

// TestRoundTrip: what the Logger writes, Read reads back identically.
func TestRoundTrip(t *testing.T) {
	var out syncbuf.Buffer
	l := newLogger(t, Config{Writer: &out, Sample: 1})
	e := entry(1, true)
	e.Caller = "svc_orders"
	e.Principal.TokenHash = "abcd"
	e.Principal.Attrs = map[string]any{"roles": []any{"admin"}, "n": json.Number("3")}
	e.Context = map[string]any{"relations": map[string]any{"view": true}}
	e.Policies, e.Errors = []string{"p"}, []string{"e"}
	e.Relations = []RelationCheck{{Check: "order:o-1#view@user:usr_alice", Allowed: true, Path: []string{"a", "b"}}}
	e.PolicyVersion, e.Revision, e.LatencyMicros = "3f2a9c0d5e6b7a81", "57", 420
	e.Shadow = &Shadow{Allow: false, Reason: "no permit", Version: "v2", Disagree: true}
	l.Log(e)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	es := readAll(t, out.String())
	want, _ := json.Marshal(e)
	got, _ := json.Marshal(es[0])
	if len(es) != 1 || string(got) != string(want) {
		t.Fatalf("round trip:\n got %s\nwant %s", got, want)
	}
	for _, k := range []string{`"decision_id"`, `"time"`, `"caller"`, `"principal"`, `"action"`, `"resource"`, `"context"`, `"allow"`, `"reason"`, `"policies"`, `"relations"`, `"errors"`, `"policy_version"`, `"revision"`, `"latency_us"`, `"shadow"`, `"token_hash"`, `"disagree"`} {
		if !strings.Contains(out.String(), k) {
			t.Errorf("line lacks %s", k)
		}
	}
}
