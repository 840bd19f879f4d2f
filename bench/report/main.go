// Command report turns the raw output of bench/run.sh into the results
// table: it reads the JSON lines of every load run (one per run, tagged with
// backend and algorithm) and the `go test -bench` output of the bare signing
// benchmarks, takes the median of each metric over the repeats, relates
// issuance throughput to the bare signing rate, and checks the targets.
//
//	report -runs runs.jsonl -sign sign-bench.txt
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
)

// Run is one line of runs.jsonl: the load tool's result plus its tags.
type Run struct {
	Backend     string  `json:"backend"`
	Alg         string  `json:"alg"`
	Mode        string  `json:"mode"`
	Concurrency int     `json:"concurrency"`
	DurationS   float64 `json:"duration_s"`
	Requests    int     `json:"requests"`
	Errors      int     `json:"errors"`
	RPS         float64 `json:"rps"`
	P50Ms       float64 `json:"p50_ms"`
	P99Ms       float64 `json:"p99_ms"`
	// ServerCPUUs is the server's user+system CPU time over the run divided
	// by the requests sent (warm-up included), in microseconds; 0 if unknown.
	ServerCPUUs float64 `json:"server_cpu_us_per_req"`
	// ClientCPUUs is the load tool's own CPU time per request (µs).
	ClientCPUUs float64 `json:"client_cpu_us_per_req"`
}

// Targets from the performance issue; they apply to SQLite on the reference
// 2-core machine. PostgreSQL rows are reported without a verdict.
const (
	targetES256RPS       = 5000
	targetES256P99Ms     = 10
	targetRS256Ratio     = 0.25
	targetIntrospectRPS  = 10000
	targetBackend        = "sqlite"
	introspectMode       = "introspect"
	issuanceMode         = "cc"
	benchPrefix          = "BenchmarkSign"
	maxInputBytes        = 16 << 20
	nanosecondsPerSecond = 1e9
	dash                 = "—"
)

func main() {
	runsPath := flag.String("runs", "", "JSON lines of the load runs")
	signPath := flag.String("sign", "", "go test -bench output of BenchmarkSign*")
	flag.Parse()
	if err := run(*runsPath, *signPath, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "report:", err)
		os.Exit(1)
	}
}

func run(runsPath, signPath string, w io.Writer) error {
	if runsPath == "" || signPath == "" {
		return errors.New("-runs and -sign are required")
	}
	rf, err := os.Open(runsPath)
	if err != nil {
		return err
	}
	defer rf.Close()
	runs, err := parseRuns(io.LimitReader(rf, maxInputBytes))
	if err != nil {
		return err
	}
	sf, err := os.Open(signPath)
	if err != nil {
		return err
	}
	defer sf.Close()
	sign, err := parseSignBench(io.LimitReader(sf, maxInputBytes))
	if err != nil {
		return err
	}
	rows := aggregate(runs, sign)
	writeTable(w, rows, sign)
	if failed := countFailures(rows); failed > 0 {
		fmt.Fprintf(w, "\n%d target(s) missed.\n", failed)
	}
	return nil
}

func parseRuns(r io.Reader) ([]Run, error) {
	var runs []Run
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		var rn Run
		if err := json.Unmarshal([]byte(line), &rn); err != nil {
			return nil, fmt.Errorf("runs line %d: %w", n, err)
		}
		if rn.Backend == "" || rn.Alg == "" || rn.Mode == "" {
			return nil, fmt.Errorf("runs line %d: backend, alg and mode are required", n)
		}
		runs = append(runs, rn)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(runs) == 0 {
		return nil, errors.New("no runs")
	}
	return runs, nil
}

// parseSignBench reads lines such as
// "BenchmarkSignES256-2   123456   9876 ns/op   1234 B/op   20 allocs/op"
// and returns ns/op by algorithm ("ES256"), the minimum over repeated lines.
func parseSignBench(r io.Reader) (map[string]float64, error) {
	out := map[string]float64{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], benchPrefix) {
			continue
		}
		alg, _, _ := strings.Cut(strings.TrimPrefix(f[0], benchPrefix), "-")
		for i := 1; i < len(f); i++ {
			if f[i] == "ns/op" {
				v, err := strconv.ParseFloat(f[i-1], 64)
				if err != nil || v <= 0 {
					return nil, fmt.Errorf("sign bench: bad ns/op in %q", sc.Text())
				}
				// With -count > 1 keep the fastest run: on a shared
				// machine noise only ever adds time.
				if prev, ok := out[alg]; !ok || v < prev {
					out[alg] = v
				}
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, errors.New("sign bench: no BenchmarkSign results")
	}
	return out, nil
}

// Row is one (backend, alg, mode) with medians over its repeats.
type Row struct {
	Backend, Alg, Mode string
	Repeats            int
	Errors             int
	RPS, P50Ms, P99Ms  float64
	CPUUs              float64 // median server CPU µs per request, 0 if unknown
	ClientCPUUs        float64 // median load-tool CPU µs per request, 0 if unknown
	BareOps            float64 // bare signing ops/s of Alg, 0 if unknown
	Ratio              float64 // RPS / BareOps for issuance, 0 otherwise
	Target, Verdict    string
}

func aggregate(runs []Run, signNs map[string]float64) []Row {
	type key struct{ b, a, m string }
	groups := map[key][]Run{}
	var order []key
	for _, r := range runs {
		k := key{r.Backend, r.Alg, r.Mode}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], r)
	}
	rows := make([]Row, 0, len(order))
	for _, k := range order {
		g := groups[k]
		row := Row{Backend: k.b, Alg: k.a, Mode: k.m, Repeats: len(g)}
		var rps, p50, p99, cpu, ccpu []float64
		for _, r := range g {
			rps, p50, p99 = append(rps, r.RPS), append(p50, r.P50Ms), append(p99, r.P99Ms)
			if r.ServerCPUUs > 0 {
				cpu = append(cpu, r.ServerCPUUs)
			}
			if r.ClientCPUUs > 0 {
				ccpu = append(ccpu, r.ClientCPUUs)
			}
			row.Errors += r.Errors
		}
		row.RPS, row.P50Ms, row.P99Ms = median(rps), median(p50), median(p99)
		row.CPUUs, row.ClientCPUUs = median(cpu), median(ccpu)
		if ns := signNs[k.a]; ns > 0 {
			row.BareOps = nanosecondsPerSecond / ns
			if k.m == issuanceMode {
				row.Ratio = row.RPS / row.BareOps
			}
		}
		row.Target, row.Verdict = judge(row)
		rows = append(rows, row)
	}
	return rows
}

// judge returns the target that applies to row and whether it was met.
func judge(r Row) (target, verdict string) {
	if r.Backend != targetBackend {
		return "none (reference only)", dash
	}
	var ok bool
	switch {
	case r.Mode == issuanceMode && r.Alg == "ES256":
		target = fmt.Sprintf("≥ %d/s, p99 ≤ %d ms", targetES256RPS, targetES256P99Ms)
		ok = r.RPS >= targetES256RPS && r.P99Ms <= targetES256P99Ms
	case r.Mode == issuanceMode && r.Alg == "RS256":
		target = fmt.Sprintf("ratio ≥ %.2f", targetRS256Ratio)
		ok = r.BareOps > 0 && r.Ratio >= targetRS256Ratio
	case r.Mode == introspectMode:
		target = fmt.Sprintf("≥ %d/s", targetIntrospectRPS)
		ok = r.RPS >= targetIntrospectRPS
	default:
		return "none", dash
	}
	switch {
	case r.Errors > 0:
		return target, "FAIL (errors)"
	case ok:
		return target, "pass"
	default:
		return target, "FAIL"
	}
}

func countFailures(rows []Row) int {
	n := 0
	for _, r := range rows {
		if strings.HasPrefix(r.Verdict, "FAIL") {
			n++
		}
	}
	return n
}

// median of vs (mean of the middle two for an even count), 0 when empty.
func median(vs []float64) float64 {
	if len(vs) == 0 {
		return 0
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	m := len(s) / 2
	if len(s)%2 == 1 {
		return s[m]
	}
	return (s[m-1] + s[m]) / 2
}

func writeTable(w io.Writer, rows []Row, signNs map[string]float64) {
	algs := make([]string, 0, len(signNs))
	for a := range signNs {
		algs = append(algs, a)
	}
	slices.Sort(algs)
	fmt.Fprintln(w, "Bare signing (go test -bench BenchmarkSign*, one goroutine, fastest of -count runs):")
	fmt.Fprintln(w)
	for _, a := range algs {
		fmt.Fprintf(w, "- %s: %.0f ns/op = %.0f signatures/s\n", a, signNs[a], nanosecondsPerSecond/signNs[a])
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| backend | alg | mode | runs | rps (median) | p50 ms | p99 ms | errors | bare sign/s | ratio rps/bare | server CPU µs/req | load CPU µs/req | target | result |")
	fmt.Fprintln(w, "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|")
	for _, r := range rows {
		bare, ratio, cpu, ccpu := dash, dash, dash, dash
		if r.BareOps > 0 {
			bare = fmt.Sprintf("%.0f", r.BareOps)
		}
		if r.Mode == issuanceMode && r.BareOps > 0 {
			ratio = fmt.Sprintf("%.3f", r.Ratio)
		}
		if r.CPUUs > 0 {
			cpu = fmt.Sprintf("%.0f", r.CPUUs)
			if r.Mode == issuanceMode && r.BareOps > 0 {
				// The same cost in bare signatures: noise-robust, since a
				// busy machine stretches wall time far more than CPU time.
				cpu += fmt.Sprintf(" (%.1f× sign)", r.CPUUs*r.BareOps/1e6)
			}
		}
		if r.ClientCPUUs > 0 {
			ccpu = fmt.Sprintf("%.0f", r.ClientCPUUs)
		}
		fmt.Fprintf(w, "| %s | %s | %s | %d | %.0f | %.2f | %.2f | %d | %s | %s | %s | %s | %s | %s |\n",
			r.Backend, r.Alg, r.Mode, r.Repeats, r.RPS, r.P50Ms, r.P99Ms, r.Errors, bare, ratio, cpu, ccpu, r.Target, r.Verdict)
	}
}
