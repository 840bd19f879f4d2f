package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/authz"
	"github.com/gatehouse/gatehouse/internal/rebac"
	"github.com/gatehouse/gatehouse/internal/storage/sqlstore"
)

type decideOptions struct {
	sizes     []int
	calls     int
	warmup    int
	rounds    int
	questions int
	dir       string
	profile   string
}

func parseDecide(args []string, stderr io.Writer) (decideOptions, error) {
	var o decideOptions
	var sizes string
	fs := flag.NewFlagSet("authzbench decide", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&sizes, "policies", "10,1000", "comma-separated policy-set sizes (each set is a prefix of the largest)")
	fs.IntVar(&o.calls, "calls", 200000, "timed calls per target, size and round")
	fs.IntVar(&o.warmup, "warmup", 20000, "untimed calls before each timed loop")
	fs.IntVar(&o.rounds, "rounds", 1, "rounds; sizes and targets alternate within a round")
	fs.IntVar(&o.questions, "questions", 256, "distinct questions, cycled")
	fs.StringVar(&o.dir, "dir", "", "work directory for the policy sets and SQLite stores (default: a new temporary one, removed)")
	fs.StringVar(&o.profile, "cpuprofile", "", "write a CPU profile of the timed loops to this file")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	var p []string
	if fs.NArg() > 0 {
		p = append(p, "unexpected arguments: "+strings.Join(fs.Args(), " "))
	}
	var err error
	if o.sizes, err = parseSizes(sizes); err != nil {
		p = append(p, err.Error())
	}
	if o.calls < 1 || o.calls > 50_000_000 {
		p = append(p, "-calls: must be in [1, 5e7]")
	}
	if o.warmup < 0 || o.warmup > 50_000_000 {
		p = append(p, "-warmup: must be in [0, 5e7]")
	}
	if o.rounds < 1 || o.rounds > 100 {
		p = append(p, "-rounds: must be in [1, 100]")
	}
	if o.questions < 1 || o.questions > 100000 {
		p = append(p, "-questions: must be in [1, 100000]")
	}
	if len(p) > 0 {
		return o, errors.New(strings.Join(p, "; "))
	}
	return o, nil
}

// runDecide times policy.Set.Authorize alone and authz.Service.Decide (the
// whole in-process pipeline: replicated-attribute lookup, two relation
// checks answered from a warm rebac cache over SQLite, Cedar, decision log)
// for each policy-set size, and prints one Timing line per loop.
func runDecide(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseDecide(args, stderr)
	if err != nil {
		return err
	}
	dir := o.dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "authzbench-decide-"); err != nil {
			return fmt.Errorf("work dir: %w", err)
		}
		defer os.RemoveAll(dir)
	}
	qs, tuples := questions(o.questions)
	reqs := requests(qs)
	worlds := make(map[int]*world, len(o.sizes))
	defer func() {
		for _, w := range worlds {
			w.close()
		}
	}()
	for _, n := range o.sizes {
		if err := writePolicies(policyDir(dir, n), n); err != nil {
			return err
		}
		store, err := sqlstore.Open(ctx, sqlstore.DriverSQLite, filepath.Join(dir, fmt.Sprintf("authz-%d.db", n)))
		if err != nil {
			return fmt.Errorf("sqlite store: %w", err)
		}
		w, err := newWorld(ctx, store, policyDir(dir, n), relSchema(), tuples, rebac.Limits{}, newCaller())
		if err != nil {
			_ = store.Close()
			return err
		}
		w.closers = append([]func(){func() { _ = store.Close() }}, w.closers...)
		worlds[n] = w
		if w.set.Len() != n {
			return fmt.Errorf("policy set of size %d loaded %d policies", n, w.set.Len())
		}
	}
	if o.profile != "" {
		f, err := os.Create(o.profile)
		if err != nil {
			return fmt.Errorf("-cpuprofile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("-cpuprofile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	enc := json.NewEncoder(stdout)
	for r := 1; r <= o.rounds; r++ {
		for _, n := range o.sizes {
			set := worlds[n].set
			t := timeCalls(o.calls, o.warmup, func(i int) (bool, error) {
				d, err := set.Authorize(reqs[i%len(reqs)])
				return d.Allow, err
			})
			t.Bench, t.Target, t.Policies, t.Round = "decision", "policy.Set.Authorize", n, r
			if err := enc.Encode(t); err != nil {
				return err
			}
		}
		for _, n := range o.sizes {
			svc := worlds[n].svc
			// The warm-up asks every question, so every relation check
			// after it is a cache hit.
			t := timeCalls(o.calls, max(o.warmup, len(qs)), func(i int) (bool, error) {
				q := qs[i%len(qs)]
				t0 := time.Now()
				res := svc.Decide(ctx, authz.Input{Principal: q.principal, Action: q.action, Resource: q.resource, Caller: "bench"})
				err := engineFailure(res)
				if err != nil && time.Since(t0) >= decisionTimeout {
					// The decision's budget ran out (a stall of the
					// machine), whatever step noticed it first.
					err = fmt.Errorf("%w: %v", errTimeout, err)
				}
				return res.Allow, err
			})
			t.Bench, t.Target, t.Policies, t.Round = "decision", "authz.Service.Decide", n, r
			if err := enc.Encode(t); err != nil {
				return err
			}
		}
	}
	return nil
}

// decisionTimeout is the service's default decision budget
// (authz.Options.DecisionTimeout), which the worlds keep.
const decisionTimeout = 250 * time.Millisecond

// engineFailure reports a deny that is not a policy outcome (a relation
// check or the store failed, a timeout, a schema violation): in a benchmark
// that is a harness error, not a measurement.
func engineFailure(res authz.Result) error {
	if res.Allow {
		return nil
	}
	if strings.Contains(res.Reason, "timed out") || strings.Contains(res.Reason, "budget") && strings.Contains(res.Reason, ": time ") {
		return fmt.Errorf("%w: %s", errTimeout, res.Reason)
	}
	for _, bad := range []string{"relation check", "unavailable", "invalid request", "no policy set"} {
		if strings.Contains(res.Reason, bad) {
			return errors.New(res.Reason)
		}
	}
	return nil
}

// parseSizes parses a comma-separated list of distinct policy-set sizes,
// each in [nOpen+1, 100000], at most 10 of them.
func parseSizes(s string) ([]int, error) {
	fields := strings.Split(s, ",")
	if len(fields) > 10 {
		return nil, errors.New("-policies: at most 10 sizes")
	}
	out := make([]int, 0, len(fields))
	for _, f := range fields {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < nOpen+1 || n > 100000 || slices.Contains(out, n) {
			return nil, fmt.Errorf("-policies: %q must be distinct integers in [%d, 100000]", s, nOpen+1)
		}
		out = append(out, n)
	}
	return out, nil
}
