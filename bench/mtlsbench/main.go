// Command mtlsbench is the system under test, the load generator and the
// in-process timer of bench/workload.sh, the performance harness of workload
// identity (docs/workload.md): the CA, its HTTPS API and the SDK's mTLS.
// Subcommands:
//
//	mtlsbench ca        -dir DIR [-host 127.0.0.1] [-tokens 64] [-cpuprofile FILE]
//	mtlsbench issue     -url URL -dir DIR [-c 16] [-d 5s] [-warmup 1s] [-pool 1024]
//	mtlsbench baseline  [-n 5000] [-warmup 500] [-pool 1024]
//	mtlsbench handshake [-n 1000] [-warmup 100] [-rounds 1] [-targets tls-full,tls-resumed,mtls-full,mtls-resumed]
//	mtlsbench serve     -dir DIR [-host 127.0.0.1] [-cpuprofile FILE]
//	mtlsbench get       -url URL -dir DIR -target tls|mtls [-h2] [-c 16] [-d 5s] [-warmup 1s]
//
// ca starts the real CA (internal/ca over a fresh SQLite file in DIR, a
// random key-encryption key, trust domain bench.test) and its HTTPS API
// (internal/ca/caserver) on a loopback port, creates -tokens join tokens
// through the store, writes them and the trust bundle to DIR, prints one
// JSON line (CAAddress) and serves until SIGINT or SIGTERM.
//
// issue is the load side of SVID issuance, in another process: each of -c
// workers bootstraps once with a join token (POST /v1/svid, JoinToken), then
// renews in a closed loop over its own keep-alive mTLS connection (POST
// /v1/svid with its SVID on the connection), each time with a CSR from a
// pool of keys and CSRs generated before the clock starts.
//
// baseline times ca.CA.IssueCSR in process on one goroutine: the per-core
// ceiling of issuance, with no TLS, HTTP or JSON.
//
// handshake times TLS 1.3 handshakes over loopback TCP, one at a time, client
// and server in this process, ECDSA P-256 certificates with an intermediate:
// plain TLS (server authentication only) full and resumed, and mTLS with
// workload.ServerTLSConfig/ClientTLSConfig (x509svid.Verify and an
// authorizer on both sides) full and resumed (a client session cache; a
// handshake that did not resume is an error).
//
// serve starts, on loopback ports, one HTTPS server with plain TLS and one
// with workload mTLS plus workload.Middleware (a policy allowing the bench
// client GET /api/*), with the same handler; it writes the client's SVID,
// key and trust bundle and the plain TLS root to DIR, prints one JSON line
// (ServeAddress) and serves until SIGINT or SIGTERM. get is its load side:
// -c workers, each with its own keep-alive connection (HTTP/1.1, or h2 with
// -h2), closed loop.
//
// Every result is one JSON line on stdout (LoadResult, IssueBaseline,
// HandshakeResult). Percentiles are nearest-rank over every measured call.
// Servers listen on loopback only and load modes refuse any other host; all
// keys are generated in process and are worthless anywhere else.
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
		fmt.Fprintln(os.Stderr, "mtlsbench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("usage: mtlsbench ca|issue|baseline|handshake|serve|get [flags]")
	}
	switch args[0] {
	case "ca":
		return runCA(ctx, args[1:], stdout, stderr)
	case "issue":
		return runIssue(ctx, args[1:], stdout, stderr)
	case "baseline":
		return runBaseline(ctx, args[1:], stdout, stderr)
	case "handshake":
		return runHandshake(ctx, args[1:], stdout, stderr)
	case "serve":
		return runServe(ctx, args[1:], stdout, stderr)
	case "get":
		return runGet(ctx, args[1:], stdout, stderr)
	}
	return fmt.Errorf("unknown subcommand %q: want ca, issue, baseline, handshake, serve or get", args[0])
}
