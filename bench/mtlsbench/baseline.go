package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// IssueBaseline is the in-process issuance loop's summary, one JSON line.
type IssueBaseline struct {
	Bench      string `json:"bench"`  // baseline
	Target     string `json:"target"` // IssueCSR
	Calls      int    `json:"calls"`
	Errors     int    `json:"errors"`
	FirstError string `json:"first_error,omitempty"`
	// PerS is calls per wall-clock second on one goroutine.
	PerS float64 `json:"per_s"`
	// CPUUs is this process's CPU time per call (GC included): 1e6 / CPUUs
	// is the per-core ceiling of issuance.
	CPUUs float64 `json:"cpu_us_per_issue"`
	P50Us float64 `json:"p50_us"`
	P99Us float64 `json:"p99_us"`
}

type baselineOptions struct{ n, warmup, pool int }

func parseBaseline(args []string, stderr io.Writer) (baselineOptions, error) {
	var o baselineOptions
	fs := flag.NewFlagSet("mtlsbench baseline", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&o.n, "n", 5000, "timed IssueCSR calls")
	fs.IntVar(&o.warmup, "warmup", 500, "untimed calls before")
	fs.IntVar(&o.pool, "pool", 1024, "keys and CSRs generated before the clock starts, used in turn")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	var p []string
	if fs.NArg() > 0 {
		p = append(p, "unexpected arguments: "+strings.Join(fs.Args(), " "))
	}
	if o.n < 1 || o.n > 10_000_000 {
		p = append(p, "-n: must be 1..10000000")
	}
	if o.warmup < 0 || o.warmup > 10_000_000 {
		p = append(p, "-warmup: must be 0..10000000")
	}
	if o.pool < 1 || o.pool > 1_000_000 {
		p = append(p, "-pool: must be 1..1000000")
	}
	if len(p) > 0 {
		return o, errors.New(strings.Join(p, "; "))
	}
	return o, nil
}

// runBaseline times ca.CA.IssueCSR on one goroutine, over a CA like the ca
// subcommand's (fresh SQLite store in a temporary directory).
func runBaseline(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseBaseline(args, stderr)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "mtlsbench-baseline-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bc, err := startCA(ctx, dir, time.Hour, slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		return err
	}
	defer bc.close()
	pool, err := newCSRPool(o.pool)
	if err != nil {
		return err
	}
	id := spiffeid.RequireFromPath(spiffeid.RequireTrustDomainFromString(benchTD), "/bench/baseline")
	res := IssueBaseline{Bench: "baseline", Target: "IssueCSR", Calls: o.n}
	issue := func(i int) error {
		sv, err := bc.ca.IssueCSR(ctx, id, pool.ders[i%len(pool.ders)], time.Hour)
		if err == nil && (sv == nil || len(sv.Certificates) == 0) {
			err = errors.New("IssueCSR returned no certificate")
		}
		return err
	}
	for i := range o.warmup {
		_ = issue(i)
	}
	lat := make([]time.Duration, 0, o.n)
	cpu0 := processCPU()
	start := time.Now()
	for i := range o.n {
		t0 := time.Now()
		err := issue(i)
		lat = append(lat, time.Since(t0))
		if err != nil {
			res.Errors++
			if res.FirstError == "" {
				res.FirstError = fmt.Sprint(err)
			}
		}
	}
	wall := time.Since(start)
	cpu := processCPU() - cpu0
	slices.Sort(lat)
	res.PerS = round(float64(o.n)/wall.Seconds(), 1)
	res.CPUUs = round(float64(cpu.Microseconds())/float64(o.n), 1)
	res.P50Us, res.P99Us = usOf(percentile(lat, 0.5)), usOf(percentile(lat, 0.99))
	return json.NewEncoder(stdout).Encode(res)
}
