package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"net"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// LoadResult is the summary of one closed-loop run (issue and get modes),
// printed as one JSON line.
type LoadResult struct {
	Bench       string  `json:"bench"`  // issue | get
	Target      string  `json:"target"` // issue: renewal; get: tls | mtls, "-h2" appended for h2
	Concurrency int     `json:"concurrency"`
	DurationS   float64 `json:"duration_s"`
	// Requests counts the successes sent inside the measured window.
	Requests int `json:"requests"`
	// Errors counts every failed request, warm-up included.
	Errors int `json:"errors"`
	// Sent counts every request, warm-up included: the server's CPU time
	// over the whole run divided by Sent is its CPU cost per request.
	Sent int `json:"sent"`
	// Bootstrap counts the issuances made before the loop (join tokens,
	// issue mode): the CA did that work too.
	Bootstrap  int    `json:"bootstrap,omitempty"`
	FirstError string `json:"first_error,omitempty"`
	// ClientCPUUs is this process's CPU time per sent request (µs).
	ClientCPUUs float64 `json:"client_cpu_us_per_req"`
	RPS         float64 `json:"rps"`
	P50Ms       float64 `json:"p50_ms"`
	P99Ms       float64 `json:"p99_ms"`
}

// doFunc sends one request for worker w (its n-th) and reports whether it
// succeeded.
type doFunc func(ctx context.Context, w, n int) error

// closedLoop runs workers goroutines, each sending its next request as soon
// as the previous one is answered, for warmup (not measured) then duration.
// A request counts in the window when it was sent inside it; errors count
// whenever they happen.
func closedLoop(ctx context.Context, workers int, warmup, duration time.Duration, do doFunc) LoadResult {
	cpu0 := processCPU()
	start := time.Now()
	windowStart := start.Add(warmup)
	end := windowStart.Add(duration)
	per := max(1024, int(duration.Seconds()*20000)/workers)
	lat := make([][]time.Duration, workers)
	errs := make([]int, workers)
	sent := make([]int, workers)
	var firstMu sync.Mutex
	var first string
	var wg sync.WaitGroup
	for w := range workers {
		lat[w] = make([]time.Duration, 0, per)
		wg.Go(func() {
			for n := 0; ctx.Err() == nil; n++ {
				t0 := time.Now()
				if !t0.Before(end) {
					return
				}
				err := do(ctx, w, n)
				d := time.Since(t0)
				sent[w]++
				if err != nil {
					errs[w]++
					firstMu.Lock()
					if first == "" {
						first = err.Error()
					}
					firstMu.Unlock()
					continue
				}
				if !t0.Before(windowStart) {
					lat[w] = append(lat[w], d)
				}
			}
		})
	}
	wg.Wait()
	all := slices.Concat(lat...)
	slices.Sort(all)
	res := LoadResult{Concurrency: workers, DurationS: duration.Seconds(), Requests: len(all), FirstError: first,
		RPS: round(float64(len(all))/duration.Seconds(), 1), P50Ms: msOf(percentile(all, 0.50)), P99Ms: msOf(percentile(all, 0.99))}
	for w := range workers {
		res.Errors += errs[w]
		res.Sent += sent[w]
	}
	if cpu := processCPU() - cpu0; res.Sent > 0 && cpu > 0 {
		res.ClientCPUUs = round(float64(cpu.Microseconds())/float64(res.Sent), 1)
	}
	return res
}

// percentile returns the nearest-rank q-quantile of sorted, 0 when empty.
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(float64(len(sorted))*q)) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func msOf(d time.Duration) float64 { return round(float64(d)/1e6, 3) }
func usOf(d time.Duration) float64 { return round(float64(d)/1e3, 1) }

func round(v float64, digits int) float64 {
	p := math.Pow10(digits)
	return math.Round(v*p) / p
}

// checkHost refuses a listen host that is not a loopback IP.
func checkHost(host string) error {
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("-host %q: must be a loopback IP", host)
	}
	return nil
}

// checkURL accepts only https URLs whose host is a loopback IP, with no
// path, user info, query or fragment, and returns it without a trailing
// slash.
func checkURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("-url: %w", err)
	}
	if u.Scheme != "https" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || strings.Trim(u.Path, "/") != "" {
		return "", errors.New("-url: want https://<loopback IP>:<port> with no path, user info, query or fragment")
	}
	if ip := net.ParseIP(u.Hostname()); ip == nil || !ip.IsLoopback() {
		return "", fmt.Errorf("-url: host %q is not a loopback IP; this tool only loads local servers", u.Hostname())
	}
	return "https://" + u.Host, nil
}

// checkLoad validates the common load flags.
// loadOpts are the closed-loop load settings shared by the issue and get
// modes.
type loadOpts struct {
	c                  int
	d, warmup, timeout time.Duration
}

// register declares -c (described by workers), -d, -warmup and -timeout.
func (l *loadOpts) register(fs *flag.FlagSet, workers string) {
	fs.IntVar(&l.c, "c", 16, workers)
	fs.DurationVar(&l.d, "d", 5*time.Second, "measured duration")
	fs.DurationVar(&l.warmup, "warmup", time.Second, "unmeasured warm-up before -d")
	fs.DurationVar(&l.timeout, "timeout", 10*time.Second, "per-request timeout")
}

// argProblems reports stray arguments and a missing -dir.
func argProblems(fs *flag.FlagSet, dir string) []string {
	var p []string
	if fs.NArg() > 0 {
		p = append(p, "unexpected arguments: "+strings.Join(fs.Args(), " "))
	}
	if dir == "" {
		p = append(p, "-dir is required")
	}
	return p
}

func checkLoad(c int, d, warmup time.Duration) []string {
	var p []string
	if c < 1 || c > 1024 {
		p = append(p, "-c: must be 1..1024")
	}
	if d <= 0 || d > time.Hour {
		p = append(p, "-d: must be in (0, 1h]")
	}
	if warmup < 0 || warmup > 10*time.Minute {
		p = append(p, "-warmup: must be in [0, 10m]")
	}
	return p
}
