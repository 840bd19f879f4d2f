package app

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"reflect"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/gateway"
	"github.com/gatehouse/gatehouse/internal/ratelimit"
	"github.com/gatehouse/gatehouse/internal/server"
)

// newGatewayOnly wires a process that runs the gateway alone (idp.listen and
// admin.listen empty): no storage, no signing keys.
func newGatewayOnly(cfg config.Config, log *slog.Logger, opt Options) (*App, error) {
	a := &App{Config: cfg, log: log}
	a.registry = prometheus.NewRegistry()
	a.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	_, cancel := context.WithCancel(context.Background())
	a.cancel = cancel
	if err := a.startGateway(opt); err != nil {
		a.Close()
		return nil, err
	}
	return a, nil
}

// startGateway builds the gateway (and its Redis client) when configured.
func (a *App) startGateway(opt Options) error {
	gc := a.Config.Gateway
	if !gc.Enabled() {
		return nil
	}
	var shared *ratelimit.Shared
	if gc.Redis.Addr != "" {
		rc := redis.NewClient(&redis.Options{Addr: gc.Redis.Addr, Password: gc.Redis.Password, DB: gc.Redis.DB,
			DialTimeout: time.Second, ReadTimeout: gc.Redis.Timeout.Std(), WriteTimeout: gc.Redis.Timeout.Std(),
			MaxRetries: -1, PoolSize: 64, ContextTimeoutEnabled: true})
		a.redis = rc
		// With the IdP's pepper the keys in Redis are HMACs: someone who can
		// read Redis cannot recover low-entropy keys (addresses, user ids).
		// The gateway alone has no pepper and uses plain SHA-256.
		rl := ratelimit.NewRedis(rc, "gatehouse:rl:")
		if a.Secrets != nil {
			rl = ratelimit.NewRedisKeyed(rc, "gatehouse:rlk:", a.Secrets.Sum("gateway rate-limit keys"))
		}
		shared = ratelimit.NewShared(rl, ratelimit.NewLocal(100_000, opt.Now),
			ratelimit.SharedConfig{Timeout: gc.Redis.Timeout.Std(), CoolOff: gc.Redis.CoolOff.Std(), Log: a.log.With("component", "ratelimit")})
	}
	g, err := gateway.New(gc, gateway.Deps{Issuer: a.Config.Issuer, Shared: shared, Now: opt.Now,
		Log: a.log.With("component", "gateway")})
	if err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	a.Gateway = g
	a.registry.MustRegister(g.Collectors()...)
	a.initGatewaySVID()
	return nil
}

func (a *App) gatewayChecks() []server.Check {
	if a.Gateway == nil {
		return nil
	}
	return append([]server.Check{{Name: "gateway_keys", Fn: a.Gateway.Ready}}, a.gatewaySVIDChecks()...)
}

func (a *App) gatewayListeners(cb func(string) func(string)) []server.Listener {
	if a.Gateway == nil {
		return nil
	}
	gc := a.Config.Gateway
	var ls []server.Listener
	if gc.Listen != "" {
		ls = append(ls, server.Listener{Name: "gateway", Addr: gc.Listen, Handler: a.Gateway, Bare: true, WriteTimeout: -1,
			CertFile: gc.TLS.CertFile, KeyFile: gc.TLS.KeyFile, Bound: cb("gateway")})
	}
	if gc.AuthorizerListen != "" {
		l := server.Listener{Name: "authorizer", Addr: gc.AuthorizerListen, Handler: a.Gateway.AuthorizerHandler(), Bare: true,
			Bound: cb("authorizer")}
		if a.Store == nil {
			l.Metrics = a.registry // gateway alone: metrics on the internal listener
		}
		ls = append(ls, l)
	}
	return ls
}

// ReloadGateway applies the routes of a newly loaded configuration. Other
// changed sections are reported: they need a restart.
func (a *App) ReloadGateway(cfg config.Config) (needRestart []string, err error) {
	if a.Gateway == nil {
		return nil, errors.New("the gateway is not running")
	}
	if err := a.Gateway.Reload(cfg.Gateway.Routes); err != nil {
		return nil, err
	}
	return a.restartSections(cfg), nil
}

// restartSections names the top-level sections of cfg that differ from the
// running configuration in keys that apply only after a restart (all but
// gateway.routes and ca.policy).
func (a *App) restartSections(cfg config.Config) []string {
	old, cur := a.Config, cfg
	old.Gateway.Routes, cur.Gateway.Routes = nil, nil
	old.CA.Policy, cur.CA.Policy = nil, nil
	var out []string
	ov, cv := reflect.ValueOf(old), reflect.ValueOf(cur)
	for i := range ov.NumField() {
		if !reflect.DeepEqual(ov.Field(i).Interface(), cv.Field(i).Interface()) {
			out = append(out, ov.Type().Field(i).Tag.Get("yaml"))
		}
	}
	return out
}

// WatchConfig re-reads path every gateway.reload_interval and applies the
// keys that change while running: the gateway's routes and the workload
// CA's ca.policy (each swapped atomically). A file that does not load, or
// routes that do not compile, are reported and ignored: the running routes
// and policy stay. A change is applied only once two reads in a row agree
// (an editor truncates before it writes), and an empty file is never
// applied. Without a gateway and a CA it returns at once; otherwise when
// ctx ends.
func (a *App) WatchConfig(ctx context.Context, path string, env []string) {
	every := a.Config.Gateway.ReloadInterval.Std()
	if a.Gateway == nil && a.ca == nil || every <= 0 || path == "" {
		return
	}
	// last starts empty: an edit made while the app was starting is
	// applied on the first ticks (reloading unchanged routes is harmless).
	var last, pending []byte
	running := a.Config.Gateway.Routes
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		b, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		h := sha256.Sum256(b)
		if bytes.Equal(h[:], last) {
			pending = nil
			continue
		}
		if !bytes.Equal(h[:], pending) {
			pending = h[:] // wait for a second identical read
			continue
		}
		last, pending = h[:], nil
		if len(bytes.TrimSpace(b)) == 0 {
			a.log.Error("configuration reload rejected: the file is empty; the running routes and policy stay")
			continue
		}
		cfg, _, err := config.Load(bytes.NewReader(b), env)
		if err != nil {
			a.log.Error("configuration reload rejected; the running routes and policy stay", "err", err)
			continue
		}
		if _, err := a.reloadCAPolicy(cfg); err != nil {
			a.log.Error("workload policy rejected; the running policy stays", "err", err)
		}
		if a.Gateway == nil || reflect.DeepEqual(cfg.Gateway.Routes, running) {
			continue
		}
		restart, err := a.ReloadGateway(cfg)
		if err != nil {
			a.log.Error("gateway routes rejected; the running routes stay", "err", err)
			continue
		}
		running = cfg.Gateway.Routes
		if len(restart) > 0 {
			a.log.Warn("configuration sections changed that apply only after a restart", "sections", restart)
		}
	}
}
