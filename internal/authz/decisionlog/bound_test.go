package decisionlog

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestEntryAttributesBounded: a batch of 100 checks shares one principal
// whose attributes fill the 1 MiB body; the ring must not keep 100 deep
// copies of them (a caller could pin gigabytes with a few requests).
func TestEntryAttributesBounded(t *testing.T) {
	l := newLogger(t, Config{Ring: 200, Sample: 1})
	big := map[string]any{"blob": strings.Repeat("x", 900<<10), "n": json.Number("1")}
	for i := range 100 {
		e := entry(i, false)
		e.Principal.Attrs = big
		l.Log(e)
	}
	small := entry(100, false)
	small.Context = map[string]any{"ip": "10.0.0.1"}
	l.Log(small)
	es := l.Recent(Filter{})
	if len(es) != 101 {
		t.Fatalf("%d entries", len(es))
	}
	if es[0].Context["ip"] != "10.0.0.1" {
		t.Fatalf("a small entry lost its context: %+v", es[0])
	}
	for _, e := range es[1:] {
		if e.Principal.Attrs != nil || !strings.Contains(strings.Join(e.Errors, ";"), "too large") {
			t.Fatalf("oversized attributes kept in the ring: %d bytes of attrs, errors %v", len(e.Principal.Attrs), e.Errors)
		}
	}
}

func TestAttrsSize(t *testing.T) {
	for _, tc := range []struct {
		v    any
		want int
	}{
		{nil, 4}, {"abc", 5}, {true, 4}, {false, 5}, {json.Number("12"), 2},
		{[]any{"a", "b"}, 9}, {map[string]any{"k": "v"}, 9},
	} {
		if got := jsonSize(tc.v, 1<<20); got != tc.want {
			t.Errorf("jsonSize(%#v) = %d, want %d", tc.v, got, tc.want)
		}
	}
	if got := jsonSize(map[string]any{"k": strings.Repeat("x", 1000)}, 100); got <= 100 {
		t.Errorf("budget exceeded but jsonSize = %d", got)
	}
}
