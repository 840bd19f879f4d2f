package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/rebac"
	"github.com/gatehouse/gatehouse/internal/storage"
	"github.com/gatehouse/gatehouse/internal/storage/sqlstore"
)

// DefaultPostgresDSN is the PostgreSQL server the benchmark uses unless told
// otherwise (the CI and development one).
const DefaultPostgresDSN = "postgres://root@127.0.0.1:5432/test?sslmode=disable"

type rebacOptions struct {
	driver, dsn, database string
	g                     graph
	reload                bool
	batch                 int
	pairs                 int
	uncached, cached      int
	seed                  uint64
	timeout               time.Duration
}

// graphFlags registers the store and graph-shape flags shared by rebac and
// serve.
func graphFlags(fs *flag.FlagSet, o *rebacOptions) {
	o.g = defaultGraph()
	fs.StringVar(&o.driver, "driver", sqlstore.DriverPostgres, "store: postgres or sqlite")
	fs.StringVar(&o.dsn, "dsn", DefaultPostgresDSN, "PostgreSQL server DSN (postgres), or SQLite file (sqlite)")
	fs.StringVar(&o.database, "database", "gatehouse_bench", "PostgreSQL database (created when missing and permitted) and schema the graph lives in")
	fs.IntVar(&o.g.users, "users", o.g.users, "graph: users")
	fs.IntVar(&o.g.perUser, "per-user", o.g.perUser, "graph: leaf groups per user")
	fs.IntVar(&o.g.levels, "levels", o.g.levels, "graph: group nesting depth")
	fs.IntVar(&o.g.fanout, "fanout", o.g.fanout, "graph: member groups per group")
	fs.IntVar(&o.g.top, "top", o.g.top, "graph: top-level groups")
	fs.IntVar(&o.g.docs, "docs", o.g.docs, "graph: documents")
	fs.IntVar(&o.g.viewers, "viewers", o.g.viewers, "graph: viewer groups per document")
}

func parseRebac(args []string, stderr io.Writer) (rebacOptions, error) {
	var o rebacOptions
	fs := flag.NewFlagSet("authzbench rebac", flag.ContinueOnError)
	fs.SetOutput(stderr)
	graphFlags(fs, &o)
	fs.BoolVar(&o.reload, "reload", false, "drop and load the graph again even when the store already holds it")
	fs.IntVar(&o.batch, "batch", 1000, "tuples per BulkLoadTuples call")
	fs.IntVar(&o.pairs, "pairs", 2000, "distinct (doc, user) check questions, half allowed, half denied")
	fs.IntVar(&o.uncached, "uncached", 2000, "timed checks with the cache disabled")
	fs.IntVar(&o.cached, "cached", 200000, "timed checks answered from a warm cache")
	fs.Uint64Var(&o.seed, "seed", 1, "seed of the check questions")
	fs.DurationVar(&o.timeout, "check-timeout", 100*time.Millisecond, "time budget of one check (the production default is 100ms)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	var p []string
	if fs.NArg() > 0 {
		p = append(p, "unexpected arguments: "+strings.Join(fs.Args(), " "))
	}
	if err := o.g.check(); err != nil {
		p = append(p, err.Error())
	}
	if o.batch < 1 || o.batch > 10000 {
		p = append(p, "-batch: must be in [1, 10000]")
	}
	if o.pairs < 2 || o.pairs > 1_000_000 {
		p = append(p, "-pairs: must be in [2, 1e6]")
	}
	if o.uncached < 1 || o.uncached > 10_000_000 || o.cached < 1 || o.cached > 50_000_000 {
		p = append(p, "-uncached and -cached: must be in [1, 1e7] and [1, 5e7]")
	}
	if o.timeout <= 0 || o.timeout > time.Minute {
		p = append(p, "-check-timeout: must be in (0, 1m]")
	}
	if len(p) > 0 {
		return o, errors.New(strings.Join(p, "; "))
	}
	return o, nil
}

// LoadReport is the JSON line describing the graph's load.
type LoadReport struct {
	Bench     string  `json:"bench"`
	Where     string  `json:"where"`
	Shape     string  `json:"shape"`
	Tuples    int     `json:"tuples"`
	Loaded    bool    `json:"loaded"` // false: reused from an earlier run
	Batches   int     `json:"batches,omitempty"`
	LoadS     float64 `json:"load_s,omitempty"`
	TuplesPS  float64 `json:"tuples_per_s,omitempty"`
	AnalyzeS  float64 `json:"analyze_s,omitempty"`
	Revision  uint64  `json:"revision"`
	MaxWalkGs int     `json:"groups_per_denied_walk"`
}

// ensureGraph opens the store over gdb and loads the graph unless the
// recorded shape and live tuple count already match (or reload is set).
func ensureGraph(ctx context.Context, gdb *graphDB, o rebacOptions) (*sqlstore.Store, LoadReport, error) {
	rep := LoadReport{Bench: "rebac-load", Where: gdb.where, Shape: o.g.shape()}
	shape, n, err := gdb.loadedShape(ctx)
	if err != nil {
		return nil, rep, err
	}
	load := o.reload || shape != o.g.shape() || n != o.g.tupleCount()
	if load {
		if err := gdb.reset(ctx); err != nil {
			return nil, rep, err
		}
	}
	store, err := sqlstore.Open(ctx, gdb.driver, gdb.dsn)
	if err != nil {
		return nil, rep, fmt.Errorf("open store (%s): %w", gdb.where, err)
	}
	if load {
		t0 := time.Now()
		err := o.g.tuples(o.batch, func(ts []storage.RelationTuple) error {
			rep.Batches++
			if _, err := store.BulkLoadTuples(ctx, ts); err != nil {
				return fmt.Errorf("bulk load batch %d: %w", rep.Batches, err)
			}
			return nil
		})
		if err != nil {
			_ = store.Close()
			return nil, rep, err
		}
		rep.LoadS = round(time.Since(t0).Seconds(), 2)
		t1 := time.Now()
		if err := gdb.analyze(ctx); err != nil {
			_ = store.Close()
			return nil, rep, err
		}
		rep.AnalyzeS = round(time.Since(t1).Seconds(), 2)
		if err := gdb.markLoaded(ctx, o.g.shape()); err != nil {
			_ = store.Close()
			return nil, rep, err
		}
		rep.Loaded = true
	}
	if _, n, err = gdb.loadedShape(ctx); err != nil || n != o.g.tupleCount() {
		_ = store.Close()
		return nil, rep, fmt.Errorf("store holds %d live tuples, want %d (%v)", n, o.g.tupleCount(), err)
	}
	rep.Tuples = n
	if rep.LoadS > 0 {
		rep.TuplesPS = round(float64(n)/rep.LoadS, 0)
	}
	head, err := store.HeadRevision(ctx)
	if err != nil {
		_ = store.Close()
		return nil, rep, fmt.Errorf("head revision: %w", err)
	}
	rep.Revision = uint64(head)
	walk := 0
	for l := range o.g.levels {
		walk += o.g.viewers * o.g.groupsAt(l) / o.g.top
	}
	rep.MaxWalkGs = walk
	return store, rep, nil
}

// runRebac loads the nested-groups graph (unless already there) and times
// doc#view@user checks at the head revision: uncached (cache disabled, every
// check walks the store) and cached (the same questions, answered from a
// warm revision-keyed cache). Answers are checked against the graph: a wrong
// answer counts as an error.
func runRebac(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseRebac(args, stderr)
	if err != nil {
		return err
	}
	gdb, err := openGraphDB(ctx, o.driver, o.dsn, o.database)
	if err != nil {
		return err
	}
	defer gdb.close()
	store, rep, err := ensureGraph(ctx, gdb, o)
	if err != nil {
		return err
	}
	defer store.Close()
	enc := json.NewEncoder(stdout)
	if err := enc.Encode(rep); err != nil {
		return err
	}
	schema, err := rebac.ParseSchema("graph.zed", []byte(graphSchema))
	if err != nil {
		return fmt.Errorf("graph schema: %w", err)
	}
	at := storage.Revision(rep.Revision)
	ps := o.g.pairs(o.pairs, o.seed)
	check := func(c *rebac.Checker, p pair, wantCached bool) (bool, error) {
		res, err := c.Check(ctx, at, rebac.Object{Type: "doc", ID: p.doc}, "view", rebac.Subject{Type: "user", ID: p.user})
		if errors.Is(err, rebac.ErrBudget) && strings.Contains(err.Error(), ": time ") {
			return false, fmt.Errorf("%w: %v", errTimeout, err)
		}
		if err != nil {
			return false, err
		}
		if res.Allowed != p.allowed {
			return res.Allowed, fmt.Errorf("doc:%s#view@user:%s = %v, want %v", p.doc, p.user, res.Allowed, p.allowed)
		}
		if res.Cached != wantCached {
			return res.Allowed, fmt.Errorf("doc:%s#view@user:%s: cached = %v, want %v", p.doc, p.user, res.Cached, wantCached)
		}
		return res.Allowed, nil
	}
	uncached := rebac.NewChecker(schema, store, rebac.Limits{CacheEntries: -1, Timeout: o.timeout})
	t := timeCalls(o.uncached, min(len(ps), 100), func(i int) (bool, error) { return check(uncached, ps[i%len(ps)], false) })
	t.Bench, t.Target, t.Round = "rebac", "check uncached ("+o.driver+")", 1
	if err := enc.Encode(t); err != nil {
		return err
	}
	cached := rebac.NewChecker(schema, store, rebac.Limits{Timeout: o.timeout})
	// The warm-up asks every question once: every timed check must be a
	// hit (a miss is an error).
	for _, p := range ps {
		var err error
		for try := 0; try < 3; try++ { // a stall may exceed the time budget: ask again
			if _, err = check(cached, p, false); !errors.Is(err, errTimeout) {
				break
			}
		}
		if err != nil {
			return fmt.Errorf("warm the cache: %w", err)
		}
	}
	t = timeCalls(o.cached, 0, func(i int) (bool, error) { return check(cached, ps[i%len(ps)], true) })
	t.Bench, t.Target, t.Round = "rebac", "check cached ("+o.driver+")", 1
	if err := enc.Encode(t); err != nil {
		return err
	}
	return nil
}
