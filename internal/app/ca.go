package app

import (
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/gatehouse/gatehouse/internal/ca"
	"github.com/gatehouse/gatehouse/internal/ca/caserver"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/server"
	"github.com/gatehouse/gatehouse/sdk/auth"
	"github.com/gatehouse/gatehouse/sdk/workload"
)

// caParts is what the workload CA runs on, kept for reloads and shutdown.
type caParts struct {
	srv    *caserver.Server
	tokens *auth.Verifier // client-credentials tokens for ca.client_audience
	policy atomic.Pointer[workload.Policy]
}

// startCA builds and starts the workload CA and its API when ca.listen is
// set. A root file that does not load, or stored keys that do not unseal,
// stop the start.
func (a *App) startCA(bg context.Context, opt Options) error {
	cc := a.Config.CA
	if !cc.Enabled() {
		return nil
	}
	td, err := cc.TrustDomainID()
	if err != nil {
		return err
	}
	kek, err := a.Config.Secrets.KEK()
	if err != nil {
		return fmt.Errorf("secrets.key_encryption_key: %w", err)
	}
	var up *ca.Upstream
	if cc.Root.Imported() {
		if up, err = loadUpstreamRoot(cc.Root); err != nil {
			return err
		}
	}
	pol, err := cc.NewPolicy()
	if err != nil {
		return fmt.Errorf("ca.policy: %w", err)
	}
	p := &caParts{}
	p.policy.Store(pol)
	a.ca = p
	log := a.log.With("component", "ca")
	a.CA, err = ca.New(a.Store, ca.Config{TrustDomain: td, KEK: kek, RootTTL: cc.RootTTL.Std(),
		IntermediateTTL: cc.IntermediateTTL.Std(), SVIDTTL: cc.SVIDTTL.Std(), Backdate: ca.DefaultBackdate,
		RefreshInterval: cc.RefreshInterval.Std(), Upstream: up}, opt.Now, log)
	if err != nil {
		return fmt.Errorf("ca: %w", err)
	}
	if err := a.CA.Start(bg); err != nil {
		return fmt.Errorf("ca: %w", err)
	}
	p.tokens, err = auth.NewVerifier(auth.VerifierConfig{Issuers: []auth.IssuerConfig{{Issuer: a.Config.Issuer,
		Audience: cc.ClientAudience}}, Logger: log})
	if err != nil {
		return fmt.Errorf("ca: %w", err)
	}
	p.srv, err = caserver.New(caserver.Deps{CA: a.CA, JoinTokens: a.Store, Clients: a.Store, Tokens: p.tokens,
		Secrets: a.Secrets, Revocations: a.Store, Policy: p.policy.Load, Now: opt.Now, Log: log},
		caserver.Config{SVIDTTL: cc.SVIDTTL.Std(), RevocationRefresh: cc.RefreshInterval.Std(), Backdate: ca.DefaultBackdate})
	if err != nil {
		return fmt.Errorf("ca: %w", err)
	}
	a.registry.MustRegister(a.CA.Collectors()...)
	a.registry.MustRegister(p.srv.Collectors()...)
	log.Info("workload CA started", "trust_domain", td.Name(), "imported_root", up != nil, "policy", pol.Version())
	return nil
}

// loadUpstreamRoot reads the files of ca.root.
func loadUpstreamRoot(r config.CARoot) (*ca.Upstream, error) {
	cb, err := os.ReadFile(r.CertFile)
	if err != nil {
		return nil, fmt.Errorf("ca.root.cert_file: %w", err)
	}
	kb, err := os.ReadFile(r.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("ca.root.key_file: %w", err)
	}
	return parseUpstreamRoot(cb, kb)
}

// parseUpstreamRoot parses a PEM certificate (the first block) and a PEM
// private key (PKCS #8, SEC 1 or PKCS #1) that must match it. The CA
// checks the key type. Errors never contain key material.
func parseUpstreamRoot(certPEM, keyPEM []byte) (*ca.Upstream, error) {
	block, _ := pem.Decode(certPEM)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("ca.root.cert_file: no PEM CERTIFICATE block")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("ca.root.cert_file: %w", err)
	}
	kblock, _ := pem.Decode(keyPEM)
	if kblock == nil || !strings.HasSuffix(kblock.Type, "PRIVATE KEY") {
		return nil, errors.New("ca.root.key_file: no PEM PRIVATE KEY block")
	}
	var key any
	if key, err = x509.ParsePKCS8PrivateKey(kblock.Bytes); err != nil {
		if key, err = x509.ParseECPrivateKey(kblock.Bytes); err != nil {
			if key, err = x509.ParsePKCS1PrivateKey(kblock.Bytes); err != nil {
				return nil, errors.New("ca.root.key_file: not a PKCS #8, SEC 1 or PKCS #1 private key")
			}
		}
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, errors.New("ca.root.key_file: the key cannot sign")
	}
	if !publicKeyEqual(signer.Public(), cert.PublicKey) {
		return nil, errors.New("ca.root.key_file: the key does not match the certificate in ca.root.cert_file")
	}
	return &ca.Upstream{Cert: cert, Key: signer}, nil
}

// publicKeyEqual compares two public keys of the standard library types.
func publicKeyEqual(a, b crypto.PublicKey) bool {
	k, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && k.Equal(b)
}

// CAFingerprint returns the hex SHA-256 of the DER of the root the CA's
// serving certificate chains to (its active root): what a workload pins as
// RootFingerprint to bootstrap. Empty without the CA or when it has no
// serving certificate. For dev mode and tests; it makes an in-memory TLS
// handshake with the CA API's TLS configuration.
func (a *App) CAFingerprint() string {
	if a.ca == nil || a.CA == nil {
		return ""
	}
	chain := a.caServingChain()
	if len(chain) == 0 {
		return ""
	}
	roots, _ := a.CA.Bundle()
	last := chain[len(chain)-1]
	for _, r := range roots.X509Authorities() {
		if last.Equal(r) || last.CheckSignatureFrom(r) == nil {
			sum := sha256.Sum256(r.Raw)
			return hex.EncodeToString(sum[:])
		}
	}
	return ""
}

// caServingChain reads the CA API's current serving chain through an
// in-memory handshake (no listener needed).
func (a *App) caServingChain() []*x509.Certificate {
	sc, cc := net.Pipe()
	defer sc.Close()
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	go func() { _ = tls.Server(sc, a.ca.srv.TLSConfig()).HandshakeContext(ctx) }()
	// The chain is only read here; the caller matches it against the
	// CA's own bundle.
	c := tls.Client(cc, &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: true}) //nolint:gosec // reads the chain only
	if err := c.HandshakeContext(ctx); err != nil {
		a.log.Warn("reading the CA's serving certificate failed", "err", err)
		return nil
	}
	return c.ConnectionState().PeerCertificates
}

// CAPolicy returns the running workload policy (nil without the CA).
func (a *App) CAPolicy() *workload.Policy {
	if a.ca == nil {
		return nil
	}
	return a.ca.policy.Load()
}

// reloadCAPolicy applies cfg's ca.policy when it differs from the running
// one. It reports whether the policy changed.
func (a *App) reloadCAPolicy(cfg config.Config) (bool, error) {
	if a.ca == nil {
		return false, nil
	}
	p, err := cfg.CA.NewPolicy()
	if err != nil {
		return false, fmt.Errorf("ca.policy: %w", err)
	}
	old := a.ca.policy.Load()
	if old != nil && old.Version() == p.Version() {
		return false, nil
	}
	a.ca.policy.Store(p)
	from := ""
	if old != nil {
		from = old.Version()
	}
	a.log.Info("workload policy reloaded", "from", from, "to", p.Version(), "rules", len(p.Rules()))
	return true, nil
}

func (a *App) caChecks() []server.Check {
	if a.ca == nil {
		return nil
	}
	return []server.Check{{Name: "ca", Fn: func(context.Context) error {
		if !a.CA.Ready() {
			return ca.ErrNotReady
		}
		return nil
	}}}
}

func (a *App) caListeners(cb func(string) func(string)) []server.Listener {
	if a.ca == nil {
		return nil
	}
	return []server.Listener{{Name: "ca", Addr: a.Config.CA.Listen, Handler: a.ca.srv.Handler(),
		TLSConfig: a.ca.srv.TLSConfig(), Bound: cb("ca")}}
}

func (a *App) closeCA() {
	if a.ca != nil && a.ca.tokens != nil {
		a.ca.tokens.Close()
	}
	if a.CA != nil {
		a.CA.Stop()
	}
}

// gatewaySVID is the gateway's own workload source, obtained in the
// background once the listeners run.
type gatewaySVID struct {
	once   sync.Once
	mu     sync.Mutex
	src    *workload.CASource
	closed bool
}

// set installs src, or closes it when the app is closed already.
func (g *gatewaySVID) set(src *workload.CASource) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		_ = src.Close()
		return false
	}
	g.src = src
	return true
}

func (g *gatewaySVID) get() *workload.CASource {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.src
}

func (g *gatewaySVID) close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.closed = true
	if g.src != nil {
		_ = g.src.Close()
	}
}

// initGatewaySVID prepares the gateway's own SVID when gateway.workload is
// configured (StartGatewaySVID fetches it).
func (a *App) initGatewaySVID() {
	if a.Gateway != nil && a.Config.Gateway.Workload.Enabled() {
		a.gwSVID = &gatewaySVID{}
	}
}

// StartGatewaySVID obtains the gateway's own SVID from gateway.workload in
// the background (Run calls it once the listeners are up; the CA in the
// same process must be serving first). It retries with backoff until ctx
// ends; meanwhile routes with upstream_tls.spiffe_id answer 503 and the
// readiness check gateway_svid fails. Without a gateway or
// gateway.workload.ca_url it does nothing. Calling it again does nothing.
func (a *App) StartGatewaySVID(ctx context.Context) {
	if a.gwSVID == nil {
		return
	}
	a.gwSVID.once.Do(func() { go a.runGatewaySVID(ctx) })
}

func (a *App) runGatewaySVID(ctx context.Context) {
	w := a.Config.Gateway.Workload
	log := a.log.With("component", "gateway-svid")
	tdName := w.TrustDomain
	if tdName == "" {
		tdName = a.Config.CA.TrustDomain
	}
	td, err := (config.CAConfig{TrustDomain: tdName}).TrustDomainID()
	if err != nil {
		log.Error("gateway SVID: no trust domain", "err", err)
		return
	}
	ts, err := auth.NewClientCredentials(auth.ClientCredentialsConfig{TokenURL: strings.TrimRight(a.Config.Issuer, "/") + "/oauth/token",
		ClientID: w.ClientID, ClientSecret: w.ClientSecret, Audience: []string{w.Audience}})
	if err != nil {
		log.Error("gateway SVID: client credentials", "err", err)
		return
	}
	backoff := time.Second
	for attempt := 1; ; attempt++ {
		fp := w.RootFingerprint
		if fp == "" && w.BundleFile == "" {
			fp = a.CAFingerprint() // all-in-one: trust the CA of this process
		}
		log.Info("gateway SVID: requesting from the CA", "ca_url", w.CAURL, "trust_domain", td.Name(), "attempt", attempt)
		src, err := workload.NewCASource(ctx, workload.CAConfig{URL: w.CAURL, TrustDomain: td, RootFingerprint: fp,
			BundleFile: w.BundleFile, TokenSource: ts, PolicyRefresh: -1, Logger: log})
		if err == nil {
			if !a.gwSVID.set(src) {
				return
			}
			a.Gateway.SetWorkload(src)
			if sv, err := src.GetX509SVID(); err == nil {
				log.Info("gateway SVID obtained", "spiffe_id", sv.ID.String(), "expires_at", sv.Certificates[0].NotAfter.UTC().Format(time.RFC3339))
			}
			return
		}
		if ctx.Err() != nil {
			return
		}
		log.Error("gateway SVID not obtained; routes with upstream_tls.spiffe_id answer 503 until it is", "err", err, "retry_in", backoff.String())
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Minute)
	}
}

func (a *App) gatewaySVIDChecks() []server.Check {
	if a.gwSVID == nil {
		return nil
	}
	return []server.Check{{Name: "gateway_svid", Fn: func(context.Context) error {
		src := a.gwSVID.get()
		if src == nil {
			return errors.New("the gateway has no SVID yet")
		}
		_, err := src.GetX509SVID()
		return err
	}}}
}

func (a *App) closeGatewaySVID() {
	if a.gwSVID != nil {
		a.gwSVID.close()
	}
}

// GatewaySVID returns the gateway's current SVID: an error until it has been
// obtained, or when gateway.workload is not configured.
func (a *App) GatewaySVID() (*x509svid.SVID, error) {
	if a.gwSVID == nil {
		return nil, errors.New("gateway.workload is not configured")
	}
	src := a.gwSVID.get()
	if src == nil {
		return nil, errors.New("the gateway has no SVID yet")
	}
	return src.GetX509SVID()
}
