// Command gwserver is the system under test of bench/gateway.sh: in one
// process it starts, each on its own loopback port,
//
//   - a trivial upstream: GET /api/... answers 200 with a small JSON body, and
//     GET /mem reports this process's memory (see memHandler);
//   - a fake ES256 issuer: OpenID discovery and a JWKS with one key;
//   - two gateways (package internal/gateway, served by internal/server as
//     `gatehouse serve` does) with one route /api to the upstream, identical
//     but for authentication: "gateway_auth" requires a JWT for the bench
//     audience with scope orders:read (token stripped before the upstream),
//     "gateway_noauth" is anonymous. Both write the access log, as in
//     production (to -access-log, /dev/null by default: the lines are
//     formatted and written, but do not fill the disk);
//   - "proxy_bare": a bare httputil.ReverseProxy to the same upstream (no
//     routing, authentication, header work or logging), the baseline for
//     what any Go reverse-proxy hop costs.
//
// It mints one valid access token for the JWT route, prints one JSON line
//
//	{"upstream":URL,"gateway_auth":URL,"gateway_noauth":URL,"proxy_bare":URL,"token":JWT,"path":"/api/hello"}
//
// to stdout and serves until SIGINT or SIGTERM. It listens on loopback only
// (-host must be a loopback IP) and its token is signed by a key that lives
// only in this process, so it is worthless anywhere else.
//
//	gwserver [-host 127.0.0.1] [-token-ttl 1h] [-access-log /dev/null]
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
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/gateway"
	"github.com/gatehouse/gatehouse/internal/server"
)

// Bench route: the audience and scope the JWT route requires.
const (
	benchAudience = "https://api.bench.example"
	benchScope    = "orders:read"
	benchPath     = "/api/hello"
)

// upstreamBody is the upstream's whole answer: small, fixed.
var upstreamBody = []byte(`{"ok":true,"service":"bench-upstream"}` + "\n")

type options struct {
	host      string
	tokenTTL  time.Duration
	accessLog string
}

// Addresses is the JSON line printed once everything is ready.
type Addresses struct {
	Upstream      string `json:"upstream"`
	GatewayAuth   string `json:"gateway_auth"`
	GatewayNoAuth string `json:"gateway_noauth"`
	ProxyBare     string `json:"proxy_bare"`
	Token         string `json:"token"`
	Path          string `json:"path"`
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "gwserver:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	logf, err := os.OpenFile(o.accessLog, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("-access-log: %w", err)
	}
	defer logf.Close()
	b, err := start(ctx, o, logf, stderr)
	if err != nil {
		return err
	}
	defer b.close()
	if err := json.NewEncoder(stdout).Encode(b.addrs); err != nil {
		return fmt.Errorf("write addresses: %w", err)
	}
	select {
	case <-ctx.Done():
		return nil
	case err := <-b.failed:
		return err
	}
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("gwserver", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.host, "host", "127.0.0.1", "loopback IP every listener binds to")
	fs.DurationVar(&o.tokenTTL, "token-ttl", time.Hour, "lifetime of the minted access token (at most 24h)")
	fs.StringVar(&o.accessLog, "access-log", os.DevNull, "file the gateways' access logs are appended to")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	var p []string
	if fs.NArg() > 0 {
		p = append(p, "unexpected arguments: "+strings.Join(fs.Args(), " "))
	}
	if err := checkHost(o.host); err != nil {
		p = append(p, err.Error())
	}
	if o.tokenTTL < time.Minute || o.tokenTTL > 24*time.Hour {
		p = append(p, "-token-ttl: must be in [1m, 24h]")
	}
	if o.accessLog == "" {
		p = append(p, "-access-log: required")
	}
	if len(p) > 0 {
		return o, errors.New(strings.Join(p, "; "))
	}
	return o, nil
}

// checkHost accepts only a literal loopback IP: no names (a name could
// resolve elsewhere), no unspecified address (it listens everywhere).
func checkHost(h string) error {
	ip := net.ParseIP(h)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("-host: %q is not a loopback IP; this tool listens on loopback only", h)
	}
	return nil
}

// bench is everything start started.
type bench struct {
	addrs  Addresses
	failed chan error // a listener that stopped on its own
	close  func()
}

// start brings up the upstream, the issuer and both gateways, waits until
// the JWT gateway has the issuer's keys, and mints the token. Everything
// stops when close is called or ctx ends.
func start(ctx context.Context, o options, accessLog, stderr io.Writer) (*bench, error) {
	ctx, cancel := context.WithCancel(ctx)
	b := &bench{failed: make(chan error, 4)}
	var cleanups []func()
	b.close = func() {
		cancel()
		for i := len(cleanups) - 1; i >= 0; i-- {
			cleanups[i]()
		}
	}
	fail := func(err error) (*bench, error) {
		b.close()
		return nil, err
	}

	up := http.NewServeMux()
	up.HandleFunc("GET /mem", memHandler)
	up.HandleFunc("/api/", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(upstreamBody)
	})
	upURL, stopUp, err := serve(o.host, up, b.failed)
	if err != nil {
		return fail(fmt.Errorf("upstream: %w", err))
	}
	cleanups = append(cleanups, stopUp)

	is, err := newIssuer()
	if err != nil {
		return fail(err)
	}
	isURL, stopIs, err := serve(o.host, is.handler(), b.failed)
	if err != nil {
		return fail(fmt.Errorf("issuer: %w", err))
	}
	cleanups = append(cleanups, stopIs)
	is.url = isURL

	// Production logging: JSON lines at info level, component=gateway.
	glog := slog.New(slog.NewJSONHandler(accessLog, &slog.HandlerOptions{Level: slog.LevelInfo})).With("component", "gateway")
	auth := config.GatewayAuth{Mode: "jwt", Audience: benchAudience, ScopesAll: []string{benchScope}}
	gAuth, err := newGateway(is.url, upURL, auth, "strip", glog)
	if err != nil {
		return fail(fmt.Errorf("gateway (jwt): %w", err))
	}
	cleanups = append(cleanups, gAuth.Close)
	gNo, err := newGateway(is.url, upURL, config.GatewayAuth{Mode: "anonymous"}, "strip", glog)
	if err != nil {
		return fail(fmt.Errorf("gateway (anonymous): %w", err))
	}
	cleanups = append(cleanups, gNo.Close)
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	err = gAuth.WaitReady(wctx)
	wcancel()
	if err != nil {
		return fail(fmt.Errorf("gateway keys: %w", err))
	}

	// Both gateways behind internal/server, as `gatehouse serve` runs them,
	// and the bare proxy baseline beside them.
	bound := make(chan [2]string, 3)
	listener := func(name string, h http.Handler) server.Listener {
		return server.Listener{Name: name, Addr: net.JoinHostPort(o.host, "0"), Handler: h, Bare: true, WriteTimeout: -1,
			Bound: func(addr string) { bound <- [2]string{name, addr} }}
	}
	srvLog := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := server.Run(ctx, srvLog, nil, listener("gateway_auth", gAuth), listener("gateway_noauth", gNo),
			listener("proxy_bare", bareProxy(upURL))); err != nil {
			b.failed <- err
		}
	}()
	cleanups = append(cleanups, func() { cancel(); <-done })
	urls := map[string]string{}
	for len(urls) < 3 {
		select {
		case nb := <-bound:
			urls[nb[0]] = "http://" + nb[1]
		case err := <-b.failed:
			return fail(err)
		case <-time.After(10 * time.Second):
			return fail(errors.New("gateways did not start listening within 10s"))
		}
	}
	tok, err := is.mint(o.tokenTTL)
	if err != nil {
		return fail(err)
	}
	b.addrs = Addresses{Upstream: upURL, GatewayAuth: urls["gateway_auth"], GatewayNoAuth: urls["gateway_noauth"],
		ProxyBare: urls["proxy_bare"], Token: tok, Path: benchPath}
	return b, nil
}

// newGateway builds a gateway with one route /api to upstream, validated as
// the configuration loader would.
func newGateway(issuer, upstream string, a config.GatewayAuth, token string, log *slog.Logger) (*gateway.Gateway, error) {
	c := config.Default().Gateway
	c.Listen = "127.0.0.1:0"
	c.AccessLog = true
	c.Issuers = []config.GatewayIssuer{{Issuer: issuer}}
	c.Routes = []config.GatewayRoute{{Name: "bench", PathPrefix: "/api", Upstreams: []string{upstream},
		Token: token, Auth: a}}
	if _, err := c.Validate(); err != nil {
		return nil, fmt.Errorf("configuration: %w", err)
	}
	return gateway.New(c, gateway.Deps{Issuer: issuer, Log: log})
}

// serve listens on host:0 and serves h with the timeouts of internal/server;
// it returns the base URL and a function that stops the server.
func serve(host string, h http.Handler, failed chan<- error) (string, func(), error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return "", nil, fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 120 * time.Second, MaxHeaderBytes: 64 << 10}
	go func() {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			failed <- fmt.Errorf("serve %s: %w", ln.Addr(), err)
		}
	}()
	stop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}
	return "http://" + ln.Addr().String(), stop, nil
}

// bareProxy is the baseline: a plain ReverseProxy with a pooled transport.
func bareProxy(upstream string) http.Handler {
	u, _ := url.Parse(upstream)
	return &httputil.ReverseProxy{
		Rewrite:   func(pr *httputil.ProxyRequest) { pr.SetURL(u) },
		Transport: &http.Transport{MaxIdleConnsPerHost: 256, IdleConnTimeout: 90 * time.Second},
	}
}
