// Command authzbench is the system under test and the in-process timer of
// bench/authz.sh, the performance harness of Gatehouse's authorization
// service (docs/authz.md). Subcommands:
//
//	authzbench decide [-policies 10,1000] [-calls 200000] [-warmup 20000] [-rounds 1]
//	authzbench rebac  [-driver postgres] [-dsn DSN] [-database gatehouse_bench] [-reload] [-uncached 2000] [-cached 200000]
//	authzbench serve  -dir DIR [-policies 1000] [-rebac] [-host 127.0.0.1]
//
// decide generates policy sets of each size (one Cedar schema: 100 actions ×
// 10 resource types; policy i sits in bucket (a<i mod 100>, r<i/100 mod 10>),
// so each smaller set is a prefix of the larger) and times, call by call,
// policy.Set.Authorize alone and authz.Service.Decide (two relation checks
// answered by a warm rebac cache over SQLite, Cedar, the decision log).
//
// rebac loads a nested-groups graph (100,000 users, groups nested 5 deep,
// 999,999 tuples) into a dedicated PostgreSQL database and schema
// (gatehouse_bench; reused by later runs unless -reload) with
// BulkLoadTuples, then times doc#view@user checks that need the full walk,
// with the cache disabled and from a warm cache.
//
// serve starts, each on its own loopback port, the authorization service
// (generated policies over SQLite) and a baseline handler that only decodes
// the body and answers a fixed decision, and with -rebac the service over
// the graph; it mints a caller token (HS256, a key that never leaves the
// process), writes request bodies to -dir, prints one JSON line (Addresses)
// and serves until SIGINT or SIGTERM.
//
// Every timing line is JSON (Timing, LoadReport) on stdout. Percentiles are
// nearest-rank over every timed call.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "authzbench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("usage: authzbench decide|rebac|serve [flags]")
	}
	switch args[0] {
	case "decide":
		return runDecide(ctx, args[1:], stdout, stderr)
	case "rebac":
		return runRebac(ctx, args[1:], stdout, stderr)
	case "serve":
		return runServe(ctx, args[1:], stdout, stderr)
	}
	return fmt.Errorf("unknown subcommand %q: want decide, rebac or serve", args[0])
}
