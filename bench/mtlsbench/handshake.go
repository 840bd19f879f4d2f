package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/gatehouse/gatehouse/sdk/workload"
)

// Identities of the handshake and throughput modes.
const (
	benchTD      = "bench.test"
	serverPath   = "/bench/server"
	clientPath   = "/bench/client"
	plainTLSName = "tls.bench.test"
)

// HandshakeResult is one timed loop of handshakes, printed as one JSON line.
type HandshakeResult struct {
	Bench       string `json:"bench"`  // handshake
	Target      string `json:"target"` // tls-full | tls-resumed | mtls-full | mtls-resumed
	Round       int    `json:"round"`
	Handshakes  int    `json:"handshakes"`
	Resumed     int    `json:"resumed"`
	Errors      int    `json:"errors"`
	FirstError  string `json:"first_error,omitempty"`
	Version     string `json:"version"`
	KeyExchange string `json:"key_exchange"`
	// CPUUs is this process's CPU time (client and server) per handshake.
	CPUUs float64 `json:"cpu_us_per_handshake"`
	// Wall times: dial, handshake and the first byte from the server (which
	// also delivers the session ticket).
	MeanUs float64 `json:"wall_mean_us"`
	P50Us  float64 `json:"wall_p50_us"`
	P99Us  float64 `json:"wall_p99_us"`
}

type handshakeOptions struct {
	n, warmup, rounds int
	targets           []string
}

var allHandshakeTargets = []string{"tls-full", "tls-resumed", "mtls-full", "mtls-resumed"}

func parseHandshake(args []string, stderr io.Writer) (handshakeOptions, error) {
	var o handshakeOptions
	var targets string
	fs := flag.NewFlagSet("mtlsbench handshake", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&o.n, "n", 1000, "timed handshakes per target and round")
	fs.IntVar(&o.warmup, "warmup", 100, "untimed handshakes before each timed loop")
	fs.IntVar(&o.rounds, "rounds", 1, "rounds; the targets are interleaved within a round")
	fs.StringVar(&targets, "targets", strings.Join(allHandshakeTargets, ","), "comma-separated subset of "+strings.Join(allHandshakeTargets, ","))
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	var p []string
	if fs.NArg() > 0 {
		p = append(p, "unexpected arguments: "+strings.Join(fs.Args(), " "))
	}
	if o.n < 1 || o.n > 1_000_000 {
		p = append(p, "-n: must be 1..1000000")
	}
	if o.warmup < 0 || o.warmup > 1_000_000 {
		p = append(p, "-warmup: must be 0..1000000")
	}
	if o.rounds < 1 || o.rounds > 100 {
		p = append(p, "-rounds: must be 1..100")
	}
	for _, t := range strings.Split(targets, ",") {
		t = strings.TrimSpace(t)
		switch {
		case !slices.Contains(allHandshakeTargets, t):
			p = append(p, fmt.Sprintf("-targets: unknown target %q", t))
		case slices.Contains(o.targets, t):
			p = append(p, fmt.Sprintf("-targets: %q twice", t))
		default:
			o.targets = append(o.targets, t)
		}
	}
	if len(p) > 0 {
		return o, errors.New(strings.Join(p, "; "))
	}
	return o, nil
}

func runHandshake(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseHandshake(args, stderr)
	if err != nil {
		return err
	}
	hs, err := newHandshakers(o.targets)
	if err != nil {
		return err
	}
	defer hs.close()
	enc := json.NewEncoder(stdout)
	for r := 1; r <= o.rounds; r++ {
		for _, h := range hs.list {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			res := h.loop(ctx, o.warmup, o.n)
			res.Round = r
			if err := enc.Encode(res); err != nil {
				return err
			}
		}
	}
	return nil
}

// handshaker runs handshakes of one kind against its own loopback server.
type handshaker struct {
	name   string
	ln     net.Listener
	client *tls.Config
	resume bool
	wg     sync.WaitGroup
	// Server-side failures; the client usually sees them as an alert too.
	srvErrs  atomic.Int64
	srvFirst atomic.Pointer[string]
}

type handshakers struct{ list []*handshaker }

// fixedPolicy is a workload.PolicySource that never changes.
type fixedPolicy struct{ p *workload.Policy }

func (f fixedPolicy) Policy() *workload.Policy { return f.p }

// benchIdentities returns the trust domain, the server's and the client's IDs.
func benchIdentities() (spiffeid.TrustDomain, spiffeid.ID, spiffeid.ID) {
	td := spiffeid.RequireTrustDomainFromString(benchTD)
	return td, spiffeid.RequireFromPath(td, serverPath), spiffeid.RequireFromPath(td, clientPath)
}

// benchPolicy allows the bench client to call the bench server: GET /api/*.
func benchPolicy(client, server spiffeid.ID) (*workload.Policy, error) {
	return workload.NewPolicy([]workload.Rule{{Name: "bench", Effect: "allow",
		From: []string{client.String()}, To: []string{server.String()}, Paths: []string{"/api/*"}, Methods: []string{"GET"}}})
}

// tlsPair holds the server and client configurations of the plain TLS and
// the mTLS targets, over one in-memory PKI.
type tlsPair struct {
	pki                  *pki
	serverID, clientID   spiffeid.ID
	policy               *workload.Policy
	plainSrv, plainCli   *tls.Config
	mtlsSrv, mtlsCli     *tls.Config
	clientSrc, serverSrc *staticSource
}

func newTLSPair() (*tlsPair, error) {
	td, serverID, clientID := benchIdentities()
	p, err := newPKI(td)
	if err != nil {
		return nil, err
	}
	pol, err := benchPolicy(clientID, serverID)
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	srvSVID, err := p.svid(serverID)
	if err != nil {
		return nil, err
	}
	cliSVID, err := p.svid(clientID)
	if err != nil {
		return nil, err
	}
	cert, err := p.serverCert(plainTLSName)
	if err != nil {
		return nil, err
	}
	tp := &tlsPair{pki: p, serverID: serverID, clientID: clientID, policy: pol,
		serverSrc: &staticSource{svid: srvSVID, bundle: p.bundle()},
		clientSrc: &staticSource{svid: cliSVID, bundle: p.bundle()}}
	tp.plainSrv = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	tp.plainCli = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: p.roots(), ServerName: plainTLSName}
	if tp.mtlsSrv, err = workload.ServerTLSConfig(tp.serverSrc, workload.AuthorizePolicy(fixedPolicy{pol}, serverID)); err != nil {
		return nil, fmt.Errorf("workload.ServerTLSConfig: %w", err)
	}
	if tp.mtlsCli, err = workload.ClientTLSConfig(tp.clientSrc, workload.AuthorizeID(serverID)); err != nil {
		return nil, fmt.Errorf("workload.ClientTLSConfig: %w", err)
	}
	return tp, nil
}

func newHandshakers(targets []string) (*handshakers, error) {
	tp, err := newTLSPair()
	if err != nil {
		return nil, err
	}
	hs := &handshakers{}
	for _, t := range targets {
		srv, cli := tp.plainSrv, tp.plainCli
		if strings.HasPrefix(t, "mtls") {
			srv, cli = tp.mtlsSrv, tp.mtlsCli
		}
		cli = cli.Clone()
		resume := strings.HasSuffix(t, "-resumed")
		if resume {
			cli.ClientSessionCache = tls.NewLRUClientSessionCache(4)
		}
		h, err := startHandshaker(t, srv, cli, resume)
		if err != nil {
			hs.close()
			return nil, err
		}
		hs.list = append(hs.list, h)
	}
	return hs, nil
}

func (hs *handshakers) close() {
	for _, h := range hs.list {
		h.close()
	}
}

func startHandshaker(name string, srv, cli *tls.Config, resume bool) (*handshaker, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	h := &handshaker{name: name, ln: ln, client: cli, resume: resume}
	h.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			h.wg.Go(func() { h.serve(c, srv) })
		}
	})
	return h, nil
}

// serve completes the handshake, sends one byte and waits for the client
// to close.
func (h *handshaker) serve(c net.Conn, cfg *tls.Config) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	tc := tls.Server(c, cfg)
	err := tc.Handshake()
	if err == nil {
		_, err = tc.Write([]byte{1})
	}
	if err != nil {
		h.srvErrs.Add(1)
		msg := "server: " + err.Error()
		h.srvFirst.CompareAndSwap(nil, &msg)
		return
	}
	_, _ = io.Copy(io.Discard, tc)
}

func (h *handshaker) close() {
	_ = h.ln.Close()
	h.wg.Wait()
}

// once dials, handshakes and reads the server's byte (and with it the
// session ticket), then closes.
func (h *handshaker) once(ctx context.Context) (tls.ConnectionState, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", h.ln.Addr().String())
	if err != nil {
		return tls.ConnectionState{}, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	tc := tls.Client(c, h.client)
	if err := tc.HandshakeContext(ctx); err != nil {
		return tls.ConnectionState{}, fmt.Errorf("client handshake: %w", err)
	}
	var b [1]byte
	if _, err := io.ReadFull(tc, b[:]); err != nil {
		return tls.ConnectionState{}, fmt.Errorf("client read: %w", err)
	}
	st := tc.ConnectionState()
	_ = tc.Close()
	if st.DidResume != h.resume {
		return st, fmt.Errorf("DidResume = %v, want %v", st.DidResume, h.resume)
	}
	return st, nil
}

// loop runs warmup untimed handshakes (which also fill the session cache
// of a resumed target), then n timed ones.
func (h *handshaker) loop(ctx context.Context, warmup, n int) HandshakeResult {
	for range max(warmup, 1) {
		_, _ = h.once(ctx)
	}
	errs0 := h.srvErrs.Load()
	res := HandshakeResult{Bench: "handshake", Target: h.name, Handshakes: n}
	lat := make([]time.Duration, 0, n)
	var total time.Duration
	cpu0 := processCPU()
	for range n {
		t0 := time.Now()
		st, err := h.once(ctx)
		d := time.Since(t0)
		if err != nil {
			res.Errors++
			if res.FirstError == "" {
				res.FirstError = err.Error()
			}
			continue
		}
		if st.DidResume {
			res.Resumed++
		}
		res.Version, res.KeyExchange = tls.VersionName(st.Version), st.CurveID.String()
		lat = append(lat, d)
		total += d
	}
	cpu := processCPU() - cpu0
	if se := int(h.srvErrs.Load() - errs0); se > res.Errors {
		// Failures only the server saw (none expected).
		res.Errors = se
		if p := h.srvFirst.Load(); p != nil && res.FirstError == "" {
			res.FirstError = *p
		}
	}
	slices.Sort(lat)
	if len(lat) > 0 {
		res.MeanUs = usOf(total / time.Duration(len(lat)))
	}
	res.P50Us, res.P99Us = usOf(percentile(lat, 0.5)), usOf(percentile(lat, 0.99))
	res.CPUUs = round(float64(cpu.Microseconds())/float64(n), 1)
	return res
}
