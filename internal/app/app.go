// Package app wires Gatehouse's components from one configuration: it opens
// storage, starts the signing-key manager, builds the IdP and the admin API,
// and runs their listeners. `gatehouse serve` and `gatehouse dev` both use it;
// tests use it to run the real binary's wiring in-process.
package app

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/gatehouse/gatehouse/internal/admin"
	"github.com/gatehouse/gatehouse/internal/authz"
	"github.com/gatehouse/gatehouse/internal/ca"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/gateway"
	"github.com/gatehouse/gatehouse/internal/idp"
	"github.com/gatehouse/gatehouse/internal/keys"
	"github.com/gatehouse/gatehouse/internal/password"
	"github.com/gatehouse/gatehouse/internal/periodic"
	"github.com/gatehouse/gatehouse/internal/secret"
	"github.com/gatehouse/gatehouse/internal/server"
	"github.com/gatehouse/gatehouse/internal/storage"
	"github.com/gatehouse/gatehouse/internal/storage/sqlstore"
	"github.com/gatehouse/gatehouse/internal/throttle"
	"github.com/gatehouse/gatehouse/internal/ui"
)

// App is a wired Gatehouse instance.
type App struct {
	Config    config.Config
	Store     *sqlstore.Store
	Keys      *keys.Manager
	IDP       *idp.Provider
	Admin     http.Handler
	Secrets   *secret.Keyed
	Passwords *password.Hasher
	Gateway   *gateway.Gateway // nil unless gateway.listen or gateway.authorizer_listen is set
	Authz     *authz.Service   // nil unless authz.listen is set
	CA        *ca.CA           // the workload CA; nil unless ca.listen is set
	authz     *authzParts
	ca        *caParts
	gwSVID    *gatewaySVID // the gateway's own SVID; nil unless gateway.workload.ca_url is set
	redis     io.Closer
	registry  *prometheus.Registry
	log       *slog.Logger
	cancel    context.CancelFunc
}

// Options adjust wiring for tests and dev mode.
type Options struct {
	Now func() time.Time
	// Passwords overrides the password hasher (tests use cheaper params).
	Passwords *password.Hasher
}

// OpenStore opens the configured storage backend (and migrates it).
func OpenStore(ctx context.Context, c config.StorageConfig) (*sqlstore.Store, error) {
	st, err := sqlstore.Open(ctx, c.Driver, c.DSN)
	if err != nil {
		return nil, fmt.Errorf("open storage (%s): %w", c.Driver, err)
	}
	return st, nil
}

// New opens storage, loads signing keys and builds every component. Close
// releases what it opened.
func New(ctx context.Context, cfg config.Config, log *slog.Logger, opt Options) (*App, error) {
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if cfg.GatewayOnly() {
		return newGatewayOnly(cfg, log, opt)
	}
	kek, err := cfg.Secrets.KEK()
	if err != nil {
		return nil, fmt.Errorf("secrets.key_encryption_key: %w", err)
	}
	pepper, err := cfg.Secrets.PepperBytes()
	if err != nil {
		return nil, fmt.Errorf("secrets.pepper: %w", err)
	}
	keyed, err := secret.NewKeyed(pepper)
	if err != nil {
		return nil, err
	}
	hasher := opt.Passwords
	if hasher == nil {
		if hasher, err = password.NewHasher(password.OWASP); err != nil {
			return nil, err
		}
	}
	st, err := OpenStore(ctx, cfg.Storage)
	if err != nil {
		return nil, err
	}
	a := &App{Config: cfg, Store: st, Secrets: keyed, Passwords: hasher, log: log}
	ok := false
	defer func() {
		if !ok {
			a.Close()
		}
	}()
	bg, cancel := context.WithCancel(context.Background())
	a.cancel = cancel

	sc := cfg.IDP.Signing
	maxTTL := max(cfg.IDP.AccessTokenTTL.Std(), cfg.IDP.IDTokenTTL.Std())
	rotation := sc.RotationPeriod.Std()
	if rotation == 0 {
		rotation = -1 // config: 0 disables scheduled rotation; keys: negative disables
	}
	a.Keys, err = keys.New(st, keys.Config{
		Algorithm: sc.Algorithm, KEK: kek, RotationPeriod: rotation, PublishAhead: sc.PublishAhead.Std(),
		RetainAfter: max(sc.RetainAfter.Std(), maxTTL), RefreshInterval: sc.RefreshInterval.Std(), JWKSMaxAge: sc.JWKSMaxAge.Std(),
	}, opt.Now, log.With("component", "keys"))
	if err != nil {
		return nil, err
	}
	if err := a.Keys.Start(bg); err != nil {
		return nil, fmt.Errorf("signing keys: %w", err)
	}
	proxies, err := cfg.IDP.TrustedProxyPrefixes()
	if err != nil {
		return nil, err
	}
	renderer, err := ui.New()
	if err != nil {
		return nil, err
	}
	th := cfg.IDP.Throttle
	a.IDP, err = idp.New(idp.Config{
		Issuer: cfg.Issuer, AccessTokenTTL: cfg.IDP.AccessTokenTTL.Std(), IDTokenTTL: cfg.IDP.IDTokenTTL.Std(),
		AuthCodeTTL: cfg.IDP.AuthCodeTTL.Std(), AuthRequestTTL: cfg.IDP.AuthRequestTTL.Std(),
		RefreshIdleTTL: cfg.IDP.RefreshTokenIdleTTL.Std(), RefreshMaxTTL: cfg.IDP.RefreshTokenMaxTTL.Std(),
		SessionIdle: cfg.IDP.Session.IdleTimeout.Std(), SessionAbsolute: cfg.IDP.Session.AbsoluteTimeout.Std(),
		Claims:         idp.Claims{Roles: cfg.IDP.Claims.Roles, Groups: cfg.IDP.Claims.Groups, Tenant: cfg.IDP.Claims.Tenant},
		TrustedProxies: proxies,
	}, idp.Deps{
		Store: st, Signer: a.Keys, Secrets: keyed, Passwords: hasher, UI: renderer,
		AccountLimiter: throttle.New(throttle.Config{MaxFailures: th.AccountMaxFailures, Window: th.AccountWindow.Std()}, opt.Now),
		IPLimiter:      throttle.New(throttle.Config{MaxFailures: th.IPMaxFailures, Window: th.IPWindow.Std()}, opt.Now),
		Now:            opt.Now, Log: log.With("component", "idp"),
	})
	if err != nil {
		return nil, err
	}
	if err := a.IDP.Start(bg); err != nil {
		return nil, err
	}
	go a.gcLoop(bg, opt.Now)

	if cfg.Admin.Listen != "" {
		tok, err := hex.DecodeString(cfg.Admin.TokenSHA256)
		if err != nil || len(tok) != sha256.Size {
			return nil, errors.New("admin.token_sha256: must be 64 hex characters")
		}
		deps := admin.Deps{
			Clients: st, Users: st, Keys: keyAdmin{a.Keys}, Secrets: keyed, Passwords: hasher, Policy: password.Policy,
			TokenSHA256: tok, Now: opt.Now, Log: log.With("component", "admin"),
		}
		if cfg.CA.Enabled() { // join tokens only where the CA runs
			deps.JoinTokens, deps.JoinTokenTTL = st, cfg.CA.JoinTokenTTL.Std()
			deps.Revocations = st
			deps.TrustDomain, _ = cfg.CA.TrustDomainID() // a bad one fails startCA below
		}
		a.Admin, err = admin.NewHandler(deps)
		if err != nil {
			return nil, err
		}
	}
	a.registry = prometheus.NewRegistry()
	a.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	a.registry.MustRegister(a.IDP.Collectors()...)
	if err := a.startCA(bg, opt); err != nil {
		return nil, err
	}
	if err := a.startGateway(opt); err != nil {
		return nil, err
	}
	if err := a.startAuthz(bg, opt); err != nil {
		return nil, err
	}
	ok = true
	return a, nil
}

// gcLoop deletes expired rows every few minutes.
func (a *App) gcLoop(ctx context.Context, now func() time.Time) {
	periodic.Run(ctx, 5*time.Minute, a.log, "storage gc failed", func(ctx context.Context) error {
		n, err := a.Store.GC(ctx, now())
		if err == nil && n > 0 {
			a.log.Debug("storage gc", "rows", n)
		}
		return err
	})
}

// Checks are the readiness probes: storage reachable, signing keys loaded.
func (a *App) Checks() []server.Check {
	if a.Store == nil {
		return a.gatewayChecks()
	}
	return append([]server.Check{
		{Name: "storage", Fn: a.Store.Ping},
		{Name: "signing_keys", Fn: func(context.Context) error {
			if !a.Keys.Ready() {
				return errors.New("no signing key")
			}
			return nil
		}},
	}, slices.Concat(a.gatewayChecks(), a.authzChecks(), a.caChecks())...)
}

// Listeners returns the configured listeners. bound, when not nil, is told
// each listener's actual address.
func (a *App) Listeners(bound func(name, addr string)) []server.Listener {
	cb := func(name string) func(string) {
		if bound == nil {
			return nil
		}
		return func(addr string) { bound(name, addr) }
	}
	var ls []server.Listener
	if a.IDP != nil {
		ls = append(ls, server.Listener{Name: "idp", Addr: a.Config.IDP.Listen, Handler: a.IDP.Handler(),
			CertFile: a.Config.IDP.TLS.CertFile, KeyFile: a.Config.IDP.TLS.KeyFile, Bound: cb("idp")})
	}
	if a.Admin != nil {
		ls = append(ls, server.Listener{Name: "admin", Addr: a.Config.Admin.Listen, Handler: a.Admin, Metrics: a.registry, Bound: cb("admin")})
	}
	ls = append(ls, a.caListeners(cb)...)
	ls = append(ls, a.gatewayListeners(cb)...)
	return append(ls, a.authzListeners(cb)...)
}

// Run serves until ctx ends. Once every listener is up it starts fetching
// the gateway's own SVID (StartGatewaySVID).
func (a *App) Run(ctx context.Context, bound func(name, addr string)) error {
	ls := a.Listeners(bound)
	if a.gwSVID != nil {
		var up atomic.Int32
		for i := range ls {
			next := ls[i].Bound
			ls[i].Bound = func(addr string) {
				if next != nil {
					next(addr)
				}
				if int(up.Add(1)) == len(ls) {
					a.StartGatewaySVID(ctx)
				}
			}
		}
	}
	return server.Run(ctx, a.log, a.Checks(), ls...)
}

// Close stops background work and closes storage.
func (a *App) Close() {
	if a.cancel != nil {
		a.cancel()
	}
	if a.Gateway != nil {
		a.Gateway.Close()
	}
	a.closeAuthz()
	a.closeGatewaySVID()
	a.closeCA()
	if a.redis != nil {
		_ = a.redis.Close()
	}
	if a.Keys != nil {
		a.Keys.Stop()
	}
	if a.Store != nil {
		_ = a.Store.Close()
	}
}

// keyAdmin adapts keys.Manager to the admin API's narrow interface.
type keyAdmin struct{ m *keys.Manager }

func (k keyAdmin) Keys(ctx context.Context) ([]admin.KeyInfo, error) {
	ks, err := k.m.Keys(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]admin.KeyInfo, 0, len(ks))
	for _, ki := range ks {
		out = append(out, toAdminKey(ki))
	}
	return out, nil
}

func (k keyAdmin) Rotate(ctx context.Context) (admin.KeyInfo, error) {
	sk, err := k.m.Rotate(ctx)
	if errors.Is(err, keys.ErrConcurrentRotation) {
		return admin.KeyInfo{}, fmt.Errorf("%w: %w", storage.ErrAlreadyExists, err) // the admin API answers 409
	}
	if err != nil {
		return admin.KeyInfo{}, err
	}
	return admin.KeyInfo{ID: sk.ID, Algorithm: sk.Algorithm, Generation: sk.Generation, State: "pending",
		CreatedAt: sk.CreatedAt, ActivateAt: sk.ActivateAt}, nil
}

func (k keyAdmin) Revoke(ctx context.Context, kid string) error { return k.m.Revoke(ctx, kid) }

var _ storage.KeyStore = (*sqlstore.Store)(nil)

func toAdminKey(k keys.KeyInfo) admin.KeyInfo {
	return admin.KeyInfo{ID: k.ID, Algorithm: k.Algorithm, Generation: k.Generation, State: k.State,
		CreatedAt: k.CreatedAt, ActivateAt: k.ActivateAt, RetiredAt: k.RetiredAt, ExpiresAt: k.ExpiresAt, RevokedAt: k.RevokedAt}
}
