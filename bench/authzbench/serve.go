package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/authz"
	"github.com/gatehouse/gatehouse/internal/rebac"
	"github.com/gatehouse/gatehouse/internal/server"
	"github.com/gatehouse/gatehouse/internal/storage/sqlstore"
)

type serveOptions struct {
	host     string
	policies int
	dir      string
	tokenTTL time.Duration
	// rebacTimeout is the relationship-check budget of the served worlds
	// (the service's default unless a test asks for more).
	rebacTimeout time.Duration
	rebac        bool
	profile      string
	graph        rebacOptions
}

// Addresses is the JSON line serve prints once everything listens.
type Addresses struct {
	Authz         string `json:"authz"`           // POST /authorize (and the rest of the API), SQLite store
	Baseline      string `json:"baseline"`        // POST /authorize: decode the body, answer a fixed decision
	Rebac         string `json:"rebac,omitempty"` // the API over the nested-groups graph (-rebac)
	Token         string `json:"token"`           // caller token for both services (scope authz:check)
	AuthorizeBody string `json:"authorize_body"`  // file: an allowed POST /authorize body
	CheckBody     string `json:"check_body,omitempty"`
	Tuples        int    `json:"rebac_tuples,omitempty"`
}

func parseServe(args []string, stderr io.Writer) (serveOptions, error) {
	var o serveOptions
	fs := flag.NewFlagSet("authzbench serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.host, "host", "127.0.0.1", "loopback IP every listener binds to")
	fs.IntVar(&o.policies, "policies", 1000, "size of the generated policy set")
	fs.StringVar(&o.dir, "dir", "", "work directory for the policy set, the SQLite store and the body files (required)")
	fs.DurationVar(&o.tokenTTL, "token-ttl", time.Hour, "lifetime of the minted caller token (at most 24h)")
	fs.DurationVar(&o.rebacTimeout, "rebac-timeout", 100*time.Millisecond, "relationship-check time budget (authz.relations.timeout)")
	fs.BoolVar(&o.rebac, "rebac", false, "also serve the API over the nested-groups graph (loaded by `authzbench rebac`)")
	fs.StringVar(&o.profile, "cpuprofile", "", "write a CPU profile, from the first address line until shutdown, to this file")
	graphFlags(fs, &o.graph)
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	var p []string
	if fs.NArg() > 0 {
		p = append(p, "unexpected arguments: "+strings.Join(fs.Args(), " "))
	}
	if ip := net.ParseIP(o.host); ip == nil || !ip.IsLoopback() {
		p = append(p, fmt.Sprintf("-host: %q is not a loopback IP; this tool listens on loopback only", o.host))
	}
	if o.policies < nOpen+1 || o.policies > 100000 {
		p = append(p, fmt.Sprintf("-policies: must be in [%d, 100000]", nOpen+1))
	}
	if o.dir == "" {
		p = append(p, "-dir: required")
	}
	if o.tokenTTL < time.Minute || o.tokenTTL > 24*time.Hour {
		p = append(p, "-token-ttl: must be in [1m, 24h]")
	}
	if o.rebacTimeout < time.Millisecond || o.rebacTimeout > time.Minute {
		p = append(p, "-rebac-timeout: must be in [1ms, 1m]")
	}
	if err := o.graph.g.check(); err != nil {
		p = append(p, err.Error())
	}
	if len(p) > 0 {
		return o, errors.New(strings.Join(p, "; "))
	}
	return o, nil
}

// runServe starts the authorization service (the generated policy set over
// a SQLite store), the baseline handler and, with -rebac, the service over
// the nested-groups graph; prints Addresses and serves until ctx ends.
func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseServe(args, stderr)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var closers []func()
	defer func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}()
	if err := writePolicies(policyDir(o.dir, o.policies), o.policies); err != nil {
		return err
	}
	store, err := sqlstore.Open(ctx, sqlstore.DriverSQLite, filepath.Join(o.dir, "authz.db"))
	if err != nil {
		return fmt.Errorf("sqlite store: %w", err)
	}
	closers = append(closers, func() { _ = store.Close() })
	qs, tuples := questions(256)
	w, err := newWorld(ctx, store, policyDir(o.dir, o.policies), relSchema(), tuples, rebac.Limits{Timeout: o.rebacTimeout}, newCaller())
	if err != nil {
		return err
	}
	closers = append(closers, w.close)
	go w.svc.Run(ctx)
	body, err := allowedBody(ctx, w.svc, qs)
	if err != nil {
		return err
	}
	addrs := Addresses{AuthorizeBody: filepath.Join(o.dir, "authorize.json")}
	if err := os.WriteFile(addrs.AuthorizeBody, body, 0o600); err != nil {
		return fmt.Errorf("write body: %w", err)
	}
	if addrs.Token, err = w.caller.mint(o.tokenTTL); err != nil {
		return err
	}
	listeners := []server.Listener{
		{Name: "authz", Addr: net.JoinHostPort(o.host, "0"), Handler: w.svc.Handler()},
		{Name: "baseline", Addr: net.JoinHostPort(o.host, "0"), Handler: baseline()},
	}
	if o.rebac {
		rw, n, checkBody, err := rebacWorld(ctx, o, w.caller)
		if err != nil {
			return err
		}
		closers = append(closers, rw.close)
		go rw.svc.Run(ctx)
		addrs.Tuples = n
		addrs.CheckBody = filepath.Join(o.dir, "check.json")
		if err := os.WriteFile(addrs.CheckBody, checkBody, 0o600); err != nil {
			return fmt.Errorf("write body: %w", err)
		}
		listeners = append(listeners, server.Listener{Name: "rebac", Addr: net.JoinHostPort(o.host, "0"), Handler: rw.svc.Handler()})
	}
	bound := make(chan [2]string, len(listeners))
	for i := range listeners {
		name := listeners[i].Name
		listeners[i].Bound = func(addr string) { bound <- [2]string{name, "http://" + addr} }
	}
	failed := make(chan error, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		srvLog := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
		if err := server.Run(ctx, srvLog, nil, listeners...); err != nil {
			failed <- err
		}
	}()
	closers = append(closers, func() { cancel(); <-done })
	urls := map[string]string{}
	for len(urls) < len(listeners) {
		select {
		case b := <-bound:
			urls[b[0]] = b[1]
		case err := <-failed:
			return err
		case <-time.After(10 * time.Second):
			return errors.New("listeners did not start within 10s")
		}
	}
	addrs.Authz, addrs.Baseline, addrs.Rebac = urls["authz"], urls["baseline"], urls["rebac"]
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
	if err := json.NewEncoder(stdout).Encode(addrs); err != nil {
		return fmt.Errorf("write addresses: %w", err)
	}
	select {
	case <-ctx.Done():
		return nil
	case err := <-failed:
		return err
	}
}

// allowedBody returns the POST /authorize body of the first question the
// service allows through a relation (viewer through a group): the request
// measured runs both relation checks, Cedar and the decision log.
func allowedBody(ctx context.Context, svc *authz.Service, qs []question) ([]byte, error) {
	for k, q := range qs {
		if k%3 != 1 {
			continue // the questions with a viewer fact
		}
		res := svc.Decide(ctx, authz.Input{Principal: q.principal, Action: q.action, Resource: q.resource})
		if !res.Allow {
			continue
		}
		res2 := map[string]any{}
		for k, v := range q.resource.Attrs {
			if k != "tenant" {
				res2[k] = v
			}
		}
		return json.Marshal(map[string]any{
			"principal": map[string]any{"type": q.principal.Type, "id": q.principal.ID,
				"roles": q.principal.Attrs["roles"], "tenant": q.principal.Attrs["tenant"]},
			"action":   q.action,
			"resource": map[string]any{"type": q.resource.Type, "id": q.resource.ID, "tenant": q.resource.Attrs["tenant"], "attrs": res2},
			"context":  map[string]any{},
		})
	}
	return nil, errors.New("no generated question is allowed through a relation: the generator is broken")
}

// rebacWorld serves the graph loaded by `authzbench rebac` (it refuses to
// load it itself: loading takes minutes) and returns the body of an allowed
// check that needs the full walk.
func rebacWorld(ctx context.Context, o serveOptions, c caller) (*world, int, []byte, error) {
	gdb, err := openGraphDB(ctx, o.graph.driver, o.graph.dsn, o.graph.database)
	if err != nil {
		return nil, 0, nil, err
	}
	defer gdb.close()
	shape, n, err := gdb.loadedShape(ctx)
	if err != nil {
		return nil, 0, nil, err
	}
	if shape != o.graph.g.shape() || n != o.graph.g.tupleCount() {
		return nil, 0, nil, fmt.Errorf("%s does not hold the graph (%d tuples, shape %q): run `authzbench rebac` first", gdb.where, n, shape)
	}
	store, err := sqlstore.Open(ctx, gdb.driver, gdb.dsn)
	if err != nil {
		return nil, 0, nil, fmt.Errorf("open graph store: %w", err)
	}
	w, err := newWorld(ctx, store, policyDir(o.dir, o.policies), graphSchema, nil, rebac.Limits{Timeout: o.rebacTimeout}, c)
	if err != nil {
		_ = store.Close()
		return nil, 0, nil, err
	}
	w.closers = append([]func(){func() { _ = store.Close() }}, w.closers...)
	p := o.graph.g.pairs(2, 7)[0] // an allowed pair
	body, err := json.Marshal(map[string]string{"object": "doc:" + p.doc, "permission": "view", "subject": "user:" + p.user})
	if err != nil {
		w.close()
		return nil, 0, nil, err
	}
	return w, n, body, nil
}
