package main

import (
	"errors"
	"math"
	"slices"
	"time"
)

// Timing is the summary of one timed loop, printed as one JSON line.
type Timing struct {
	Bench    string `json:"bench"`
	Target   string `json:"target"`
	Policies int    `json:"policies,omitempty"`
	Round    int    `json:"round"`
	Calls    int    `json:"calls"`
	Allowed  int    `json:"allowed"`
	Errors   int    `json:"errors"`
	// Timeouts are calls that exceeded a time budget (the decision's or
	// the relation check's): on a busy machine a stall, not a wrong answer.
	Timeouts   int     `json:"timeouts"`
	FirstError string  `json:"first_error,omitempty"`
	P50Us      float64 `json:"p50_us"`
	P95Us      float64 `json:"p95_us"`
	P99Us      float64 `json:"p99_us"`
	MeanUs     float64 `json:"mean_us"`
	MaxUs      float64 `json:"max_us"`
}

// errTimeout marks a call that exceeded a time budget.
var errTimeout = errors.New("time budget exceeded")

// timeCalls runs call warmup times unmeasured, then n times, timing each
// call on its own (time.Now deltas), and summarizes. call gets the call
// number and reports whether it allowed; an error is counted, not fatal.
func timeCalls(n, warmup int, call func(i int) (bool, error)) Timing {
	for i := range warmup {
		_, _ = call(i)
	}
	lat := make([]time.Duration, n)
	var t Timing
	var total time.Duration
	for i := range n {
		t0 := time.Now()
		ok, err := call(i)
		d := time.Since(t0)
		lat[i] = d
		total += d
		switch {
		case errors.Is(err, errTimeout):
			t.Timeouts++
		case err != nil:
			t.Errors++
			if t.FirstError == "" {
				t.FirstError = err.Error()
			}
		case ok:
			t.Allowed++
		}
	}
	slices.Sort(lat)
	t.Calls = n
	t.P50Us = us(percentile(lat, 0.50))
	t.P95Us = us(percentile(lat, 0.95))
	t.P99Us = us(percentile(lat, 0.99))
	if n > 0 {
		t.MeanUs = round(float64(total)/float64(n)/1e3, 3)
		t.MaxUs = us(lat[n-1])
	}
	return t
}

// percentile returns the nearest-rank q-quantile of sorted, 0 when empty.
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(float64(len(sorted))*q)) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func us(d time.Duration) float64 { return round(float64(d)/1e3, 3) }

func round(v float64, digits int) float64 {
	p := math.Pow10(digits)
	return math.Round(v*p) / p
}
