package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestMedian(t *testing.T) {
	tests := []struct {
		in   []float64
		want float64
	}{
		{nil, 0},
		{[]float64{7}, 7},
		{[]float64{3, 1, 2}, 2},
		{[]float64{4, 1, 3, 2}, 2.5},
		{[]float64{100, 1, 1}, 1},
	}
	for _, tt := range tests {
		if got := median(tt.in); got != tt.want {
			t.Errorf("median(%v) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestParseSignBench(t *testing.T) {
	out := `goos: linux
goarch: amd64
pkg: github.com/gatehouse/gatehouse/internal/keys
BenchmarkSignES256-2   	   80000	     25000 ns/op	    4000 B/op	      50 allocs/op
BenchmarkSignRS256-2   	    1000	   1000000 ns/op	    9000 B/op	      60 allocs/op
BenchmarkSignES256-2   	   80000	     31000 ns/op	    4000 B/op	      50 allocs/op
BenchmarkSignRS256-2   	    1000	   2000000 ns/op	    9000 B/op	      60 allocs/op
PASS
`
	got, err := parseSignBench(strings.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	if got["ES256"] != 25000 || got["RS256"] != 1e6 || len(got) != 2 {
		t.Fatalf("got %v", got)
	}
	for _, bad := range []string{"", "PASS\n", "BenchmarkSignES256-2 10 x ns/op\n"} {
		if _, err := parseSignBench(strings.NewReader(bad)); err == nil {
			t.Errorf("parseSignBench(%q): no error", bad)
		}
	}
}

func TestJudge(t *testing.T) {
	tests := []struct {
		name string
		row  Row
		want string
	}{
		{"es256 fast", Row{Backend: "sqlite", Alg: "ES256", Mode: "cc", RPS: 6000, P99Ms: 8}, "pass"},
		{"es256 slow tail", Row{Backend: "sqlite", Alg: "ES256", Mode: "cc", RPS: 6000, P99Ms: 11}, "FAIL"},
		{"es256 low rps", Row{Backend: "sqlite", Alg: "ES256", Mode: "cc", RPS: 4999, P99Ms: 1}, "FAIL"},
		{"rs256 ratio met", Row{Backend: "sqlite", Alg: "RS256", Mode: "cc", BareOps: 1000, Ratio: 0.3}, "pass"},
		{"rs256 ratio missed", Row{Backend: "sqlite", Alg: "RS256", Mode: "cc", BareOps: 1000, Ratio: 0.2}, "FAIL"},
		{"rs256 no bare rate", Row{Backend: "sqlite", Alg: "RS256", Mode: "cc", Ratio: 0.3}, "FAIL"},
		{"introspect", Row{Backend: "sqlite", Alg: "RS256", Mode: "introspect", RPS: 12000}, "pass"},
		{"introspect slow", Row{Backend: "sqlite", Alg: "ES256", Mode: "introspect", RPS: 9000}, "FAIL"},
		{"errors fail a fast run", Row{Backend: "sqlite", Alg: "ES256", Mode: "introspect", RPS: 20000, Errors: 1}, "FAIL (errors)"},
		{"postgres has no target", Row{Backend: "postgres", Alg: "ES256", Mode: "cc", RPS: 1}, dash},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, got := judge(tt.row); got != tt.want {
				t.Fatalf("verdict %q, want %q", got, tt.want)
			}
		})
	}
}

func TestRun(t *testing.T) {
	dir := t.TempDir()
	runs := filepath.Join(dir, "runs.jsonl")
	sign := filepath.Join(dir, "sign.txt")
	lines := `{"backend":"sqlite","alg":"RS256","mode":"cc","rps":300,"p50_ms":40,"p99_ms":90,"server_cpu_us_per_req":1500,"client_cpu_us_per_req":40}
{"backend":"sqlite","alg":"RS256","mode":"cc","rps":100,"p50_ms":50,"p99_ms":95,"server_cpu_us_per_req":2000}
{"backend":"sqlite","alg":"RS256","mode":"cc","rps":200,"p50_ms":45,"p99_ms":99}
{"backend":"sqlite","alg":"RS256","mode":"introspect","rps":15000,"p50_ms":1,"p99_ms":3}
`
	if err := os.WriteFile(runs, []byte(lines), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(sign, []byte("BenchmarkSignRS256-2  100  1000000 ns/op\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := run(runs, sign, &out); err != nil {
		t.Fatal(err)
	}
	// Median rps 200 over 1000 signatures/s: ratio 0.2 < 0.25.
	for _, want := range []string{
		// CPU: median of the two known values, 1750 µs = 1.75 signatures of 1 ms.
		"| sqlite | RS256 | cc | 3 | 200 | 45.00 | 95.00 | 0 | 1000 | 0.200 | 1750 (1.8× sign) | 40 | ratio ≥ 0.25 | FAIL |",
		"| sqlite | RS256 | introspect | 1 | 15000 | 1.00 | 3.00 | 0 | 1000 | — | — | — | ≥ 10000/s | pass |",
		"1 target(s) missed.",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if err := os.WriteFile(runs, []byte("{not json\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := run(runs, sign, &out); err == nil {
		t.Fatal("malformed runs accepted")
	}
}
