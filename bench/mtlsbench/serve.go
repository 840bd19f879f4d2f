package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/gatehouse/gatehouse/sdk/workload"
)

// Files the serve subcommand writes into -dir.
const (
	clientCertFile = "client.pem"     // the bench client's SVID chain
	clientKeyFile  = "client-key.pem" // its key (mode 0600)
	rootFile       = "root.pem"       // trust bundle of the mTLS server and root of the plain TLS one
	benchPath      = "/api/hello"
)

// answerBody is both servers' whole answer: small, fixed.
var answerBody = []byte(`{"ok":true,"service":"mtlsbench"}` + "\n")

// ServeAddress is the JSON line the serve subcommand prints once it serves.
type ServeAddress struct {
	TLS      string `json:"tls"`
	MTLS     string `json:"mtls"`
	Path     string `json:"path"`
	ServerID string `json:"server_id"`
	PID      int    `json:"pid"`
}

type serveOptions struct{ dir, host, profile string }

func parseServe(args []string, stderr io.Writer) (serveOptions, error) {
	var o serveOptions
	fs := flag.NewFlagSet("mtlsbench serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.dir, "dir", "", "directory for the client's SVID, key and the root (required)")
	fs.StringVar(&o.host, "host", "127.0.0.1", "loopback IP both servers listen on")
	fs.StringVar(&o.profile, "cpuprofile", "", "write a CPU profile of the serving time to this file (at exit)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	p := argProblems(fs, o.dir)
	if err := checkHost(o.host); err != nil {
		p = append(p, err.Error())
	}
	if len(p) > 0 {
		return o, errors.New(strings.Join(p, "; "))
	}
	return o, nil
}

func answer(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(answerBody)
}

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseServe(args, stderr)
	if err != nil {
		return err
	}
	tp, err := newTLSPair()
	if err != nil {
		return err
	}
	if err := writeClientFiles(o.dir, tp); err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+benchPath, answer)
	mtlsHandler := workload.Middleware(fixedPolicy{tp.policy}, tp.serverID, mux)
	failed := make(chan error, 2)
	var urls [2]string
	for i, s := range []struct {
		cfg *tls.Config
		h   http.Handler
	}{{tp.plainSrv, mux}, {tp.mtlsSrv, mtlsHandler}} {
		ln, err := net.Listen("tcp", net.JoinHostPort(o.host, "0"))
		if err != nil {
			return fmt.Errorf("listen: %w", err)
		}
		hs := &http.Server{Handler: s.h, TLSConfig: s.cfg.Clone(), ReadHeaderTimeout: 10 * time.Second,
			ErrorLog: log.New(io.Discard, "", 0)}
		go func() { failed <- hs.ServeTLS(ln, "", "") }()
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = hs.Shutdown(sctx)
		}()
		urls[i] = "https://" + ln.Addr().String()
	}
	stopProfile, err := startProfile(o.profile)
	if err != nil {
		return err
	}
	defer stopProfile()
	addr := ServeAddress{TLS: urls[0], MTLS: urls[1], Path: benchPath, ServerID: tp.serverID.String(), PID: os.Getpid()}
	if err := json.NewEncoder(stdout).Encode(addr); err != nil {
		return fmt.Errorf("write address: %w", err)
	}
	select {
	case <-ctx.Done():
		return nil
	case err := <-failed:
		return fmt.Errorf("serve: %w", err)
	}
}

// writeClientFiles writes the bench client's SVID and key and the root.
func writeClientFiles(dir string, tp *tlsPair) error {
	certPEM, keyPEM, err := tp.clientSrc.svid.Marshal()
	if err != nil {
		return fmt.Errorf("client SVID: %w", err)
	}
	rootPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: tp.pki.root.Raw})
	for _, f := range []struct {
		name string
		b    []byte
		mode os.FileMode
	}{{clientCertFile, certPEM, 0o644}, {clientKeyFile, keyPEM, 0o600}, {rootFile, rootPEM, 0o644}} {
		if err := os.WriteFile(filepath.Join(dir, f.name), f.b, f.mode); err != nil {
			return fmt.Errorf("write %s: %w", f.name, err)
		}
	}
	return nil
}

type getOptions struct {
	url, dir, target, path, serverID string
	h2                               bool
	loadOpts
}

func parseGet(args []string, stderr io.Writer) (getOptions, error) {
	var o getOptions
	fs := flag.NewFlagSet("mtlsbench get", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.url, "url", "", "https://<loopback IP>:<port> of the server (required)")
	fs.StringVar(&o.dir, "dir", "", "the serve subcommand's -dir (required)")
	fs.StringVar(&o.target, "target", "", "tls (plain TLS, server authentication) or mtls (workload SVIDs) (required)")
	fs.StringVar(&o.path, "path", benchPath, "path to GET")
	fs.StringVar(&o.serverID, "server-id", "spiffe://"+benchTD+serverPath, "mtls: the SPIFFE ID the server must present")
	fs.BoolVar(&o.h2, "h2", false, "HTTP/2 instead of HTTP/1.1 (still one connection per worker)")
	o.register(fs, "workers, each with its own keep-alive connection")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	p := append(argProblems(fs, o.dir), checkLoad(o.c, o.d, o.warmup)...)
	if o.target != "tls" && o.target != "mtls" {
		p = append(p, "-target: must be tls or mtls")
	}
	if !strings.HasPrefix(o.path, "/") || strings.ContainsAny(o.path, "?#") {
		p = append(p, "-path: must start with / and have no query or fragment")
	}
	if _, err := spiffeid.FromString(o.serverID); err != nil {
		p = append(p, "-server-id: "+err.Error())
	}
	if _, err := checkURL(o.url); err != nil {
		p = append(p, err.Error())
	}
	if o.timeout <= 0 || o.timeout > time.Minute {
		p = append(p, "-timeout: must be in (0, 1m]")
	}
	if len(p) > 0 {
		return o, errors.New(strings.Join(p, "; "))
	}
	o.url, _ = checkURL(o.url)
	return o, nil
}

// clientTLS builds the client configuration of a get target from dir.
func clientTLS(o getOptions) (*tls.Config, error) {
	if o.target == "tls" {
		b, err := os.ReadFile(filepath.Join(o.dir, rootFile))
		if err != nil {
			return nil, fmt.Errorf("root: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(b) {
			return nil, errors.New("root: no certificate")
		}
		return &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool, ServerName: plainTLSName}, nil
	}
	serverID, err := spiffeid.FromString(o.serverID)
	if err != nil {
		return nil, err
	}
	svid, err := x509svid.Load(filepath.Join(o.dir, clientCertFile), filepath.Join(o.dir, clientKeyFile))
	if err != nil {
		return nil, fmt.Errorf("client SVID: %w", err)
	}
	bundle, err := x509bundle.Load(serverID.TrustDomain(), filepath.Join(o.dir, rootFile))
	if err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	cfg, err := workload.ClientTLSConfig(&staticSource{svid: svid, bundle: bundle}, workload.AuthorizeID(serverID))
	if err != nil {
		return nil, fmt.Errorf("workload.ClientTLSConfig: %w", err)
	}
	return cfg, nil
}

func runGet(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseGet(args, stderr)
	if err != nil {
		return err
	}
	cfg, err := clientTLS(o)
	if err != nil {
		return err
	}
	wantMajor := 1
	if o.h2 {
		wantMajor = 2
	}
	clients := make([]*http.Client, o.c)
	for w := range clients {
		clients[w] = &http.Client{Timeout: o.timeout, Transport: newTransport(cfg.Clone(), o.timeout, o.h2)}
	}
	defer func() {
		for _, c := range clients {
			c.CloseIdleConnections()
		}
	}()
	target := o.url + o.path
	res := closedLoop(ctx, o.c, o.warmup, o.d, func(ctx context.Context, w, n int) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
		if err != nil {
			return err
		}
		resp, err := clients[w].Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		switch {
		case err != nil:
			return err
		case resp.StatusCode != http.StatusOK:
			return fmt.Errorf("HTTP %d: %.200s", resp.StatusCode, b)
		case resp.ProtoMajor != wantMajor:
			return fmt.Errorf("answered over %s, want HTTP/%d", resp.Proto, wantMajor)
		}
		return nil
	})
	res.Bench, res.Target = "get", o.target
	if o.h2 {
		res.Target += "-h2"
	}
	return json.NewEncoder(stdout).Encode(res)
}
