package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/gatehouse/gatehouse/internal/ca"
	"github.com/gatehouse/gatehouse/internal/ca/caserver"
	"github.com/gatehouse/gatehouse/internal/secret"
	"github.com/gatehouse/gatehouse/internal/storage"
	"github.com/gatehouse/gatehouse/internal/storage/sqlstore"
	"github.com/gatehouse/gatehouse/sdk/auth"
)

// Files the ca subcommand writes into -dir.
const (
	tokensFile = "join-tokens" // one join token per line (mode 0600)
	bundleFile = "bundle.json" // the SPIFFE bundle
	caDBFile   = "ca.db"
)

// CAAddress is the JSON line the ca subcommand prints once it serves.
type CAAddress struct {
	URL         string `json:"url"`
	TrustDomain string `json:"trust_domain"`
	CAID        string `json:"ca_id"`
	Tokens      int    `json:"tokens"`
	PID         int    `json:"pid"`
}

type caOptions struct {
	dir     string
	host    string
	tokens  int
	svidTTL time.Duration
	profile string
}

func parseCA(args []string, stderr io.Writer) (caOptions, error) {
	var o caOptions
	fs := flag.NewFlagSet("mtlsbench ca", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.dir, "dir", "", "directory for the SQLite file, the join tokens and the bundle (required)")
	fs.StringVar(&o.host, "host", "127.0.0.1", "loopback IP the CA API listens on")
	fs.IntVar(&o.tokens, "tokens", 64, "join tokens to create (one per issue worker and round)")
	fs.DurationVar(&o.svidTTL, "svid-ttl", time.Hour, "SVID lifetime (ca.svid_ttl)")
	fs.StringVar(&o.profile, "cpuprofile", "", "write a CPU profile of the serving time to this file (at exit)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	p := argProblems(fs, o.dir)
	if err := checkHost(o.host); err != nil {
		p = append(p, err.Error())
	}
	if o.tokens < 1 || o.tokens > 100_000 {
		p = append(p, "-tokens: must be 1..100000")
	}
	if o.svidTTL < time.Minute || o.svidTTL > 24*time.Hour {
		p = append(p, "-svid-ttl: must be in [1m, 24h]")
	}
	if len(p) > 0 {
		return o, errors.New(strings.Join(p, "; "))
	}
	return o, nil
}

// benchCA is a started CA over a fresh SQLite store.
type benchCA struct {
	ca    *ca.CA
	store *sqlstore.Store
}

// startCA opens a SQLite store in dir and starts a CA for bench.test with
// a random key-encryption key.
func startCA(ctx context.Context, dir string, svidTTL time.Duration, log *slog.Logger) (*benchCA, error) {
	st, err := sqlstore.Open(ctx, sqlstore.DriverSQLite, filepath.Join(dir, caDBFile))
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	kek := make([]byte, 32)
	_, _ = rand.Read(kek)
	c, err := ca.New(st, ca.Config{
		TrustDomain:     spiffeid.RequireTrustDomainFromString(benchTD),
		KEK:             kek,
		IntermediateTTL: 24 * time.Hour,
		SVIDTTL:         svidTTL,
		RefreshInterval: 10 * time.Second,
	}, time.Now, log)
	if err != nil {
		_ = st.Close()
		return nil, fmt.Errorf("ca.New: %w", err)
	}
	if err := c.Start(ctx); err != nil {
		_ = st.Close()
		return nil, fmt.Errorf("ca.Start: %w", err)
	}
	return &benchCA{ca: c, store: st}, nil
}

func (b *benchCA) close() {
	b.ca.Stop()
	_ = b.store.Close()
}

// refuseTokens is the CA API's access-token verifier: the bench uses join
// tokens and renewals only.
type refuseTokens struct{}

func (refuseTokens) Authenticate(context.Context, string) (*auth.Claims, error) {
	return nil, errors.New("mtlsbench: access tokens are not accepted")
}

func runCA(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseCA(args, stderr)
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	bc, err := startCA(ctx, o.dir, o.svidTTL, logger)
	if err != nil {
		return err
	}
	defer bc.close()
	pepper := make([]byte, 32)
	_, _ = rand.Read(pepper)
	keyed, err := secret.NewKeyed(pepper)
	if err != nil {
		return err
	}
	if err := writeJoinTokens(ctx, bc.store, keyed, o.tokens, filepath.Join(o.dir, tokensFile)); err != nil {
		return err
	}
	bundle, err := bc.ca.BundleJSON()
	if err != nil {
		return fmt.Errorf("bundle: %w", err)
	}
	if err := os.WriteFile(filepath.Join(o.dir, bundleFile), bundle, 0o644); err != nil {
		return fmt.Errorf("write bundle: %w", err)
	}
	srv, err := caserver.New(caserver.Deps{CA: bc.ca, JoinTokens: bc.store, Clients: bc.store, Tokens: refuseTokens{},
		Secrets: keyed, Log: logger}, caserver.Config{SVIDTTL: o.svidTTL})
	if err != nil {
		return fmt.Errorf("caserver.New: %w", err)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(o.host, "0"))
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	hs := &http.Server{Handler: srv.Handler(), TLSConfig: srv.TLSConfig(), ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: log.New(io.Discard, "", 0)}
	failed := make(chan error, 1)
	go func() { failed <- hs.ServeTLS(ln, "", "") }()
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = hs.Shutdown(sctx)
	}()
	stopProfile, err := startProfile(o.profile)
	if err != nil {
		return err
	}
	defer stopProfile()
	addr := CAAddress{URL: "https://" + ln.Addr().String(), TrustDomain: benchTD,
		CAID: "spiffe://" + benchTD + caserver.CAPath, Tokens: o.tokens, PID: os.Getpid()}
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

// writeJoinTokens creates n join tokens (1 h, spiffe://bench.test/bench/worker-<i>)
// through the store and writes them, one per line, to name (mode 0600).
// They are throwaway: only this bench's CA, with its random pepper, knows them.
func writeJoinTokens(ctx context.Context, st storage.CAStore, keyed *secret.Keyed, n int, name string) error {
	now := time.Now()
	var b strings.Builder
	for i := range n {
		tok := secret.New()
		err := st.CreateJoinToken(ctx, storage.JoinToken{
			Hash:      hex.EncodeToString(keyed.Sum(tok)),
			SPIFFEID:  fmt.Sprintf("spiffe://%s/bench/worker-%d", benchTD, i),
			CreatedAt: now,
			ExpiresAt: now.Add(time.Hour),
		})
		if err != nil {
			return fmt.Errorf("create join token: %w", err)
		}
		b.WriteString(tok)
		b.WriteByte('\n')
	}
	if err := os.WriteFile(name, []byte(b.String()), 0o600); err != nil {
		return fmt.Errorf("write join tokens: %w", err)
	}
	return nil
}

// startProfile starts a CPU profile into name ("" = none); the returned
// function stops it and closes the file.
func startProfile(name string) (func(), error) {
	if name == "" {
		return func() {}, nil
	}
	f, err := os.Create(name)
	if err != nil {
		return nil, fmt.Errorf("-cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("-cpuprofile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		_ = f.Close()
	}, nil
}
