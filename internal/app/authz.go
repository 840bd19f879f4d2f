package app

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/gatehouse/gatehouse/internal/authz"
	"github.com/gatehouse/gatehouse/internal/authz/decisionlog"
	"github.com/gatehouse/gatehouse/internal/authz/policy"
	"github.com/gatehouse/gatehouse/internal/rebac"
	"github.com/gatehouse/gatehouse/internal/server"
	"github.com/gatehouse/gatehouse/sdk/auth"
)

// authzParts is what the authorization service runs on, kept for reloads
// and shutdown.
type authzParts struct {
	policies, shadow *policy.Holder
	checker          *rebac.Checker
	log              *decisionlog.Logger
	verifiers        []*auth.Verifier
}

// startAuthz builds the authorization service when authz.listen is set. A
// policy set, shadow set or relationship schema that does not load stops
// the start: the service never runs without its rules.
func (a *App) startAuthz(bg context.Context, opt Options) error {
	ac := a.Config.Authz
	if !ac.Enabled() {
		return nil
	}
	set, err := policy.Load(ac.Policies.Dir)
	if err != nil {
		return fmt.Errorf("authz.policies.dir: %w", err)
	}
	p := &authzParts{policies: policy.NewHolder(set)}
	a.authz = p
	if ac.Policies.ShadowDir != "" {
		sh, err := policy.Load(ac.Policies.ShadowDir)
		if err != nil {
			return fmt.Errorf("authz.policies.shadow_dir: %w", err)
		}
		p.shadow = policy.NewHolder(sh)
	}
	schema, err := loadRelationSchema(ac.Relations.SchemaFile)
	if err != nil {
		return fmt.Errorf("authz.relations.schema_file: %w", err)
	}
	rc := ac.Relations
	cache := rc.CacheEntries
	if cache == 0 {
		cache = -1 // config: 0 disables; rebac: negative disables
	}
	p.checker = rebac.NewChecker(schema, a.Store, rebac.Limits{MaxDepth: rc.MaxDepth, MaxDispatch: rc.MaxDispatch,
		Timeout: rc.Timeout.Std(), CacheEntries: cache})
	callers, err := auth.NewVerifier(auth.VerifierConfig{Issuers: []auth.IssuerConfig{{Issuer: a.Config.Issuer, Audience: ac.Audience}},
		Logger: a.log.With("component", "authz")})
	if err != nil {
		return err
	}
	p.verifiers = append(p.verifiers, callers)
	var principals auth.Authenticator
	if len(ac.PrincipalAudiences) > 0 {
		var ps authz.Authenticators
		for _, aud := range ac.PrincipalAudiences {
			v, err := auth.NewVerifier(auth.VerifierConfig{Issuers: []auth.IssuerConfig{{Issuer: a.Config.Issuer, Audience: aud}},
				Logger: a.log.With("component", "authz")})
			if err != nil {
				return err
			}
			p.verifiers = append(p.verifiers, v)
			ps = append(ps, v)
		}
		principals = ps
	}
	p.log, err = decisionlog.New(decisionlog.Config{Path: ac.DecisionLog.Path, Ring: ringSize(ac.DecisionLog.Ring),
		Sample: ac.DecisionLog.Sample}, a.log.With("component", "authz-decisions"))
	if err != nil {
		return fmt.Errorf("authz.decision_log: %w", err)
	}
	fetch := map[string]authz.FetchConfig{}
	for _, f := range ac.Fetch {
		fetch[f.Type] = authz.FetchConfig{URL: f.URL, TTL: f.TTL.Std(), Timeout: f.Timeout.Std(), OnError: f.OnError}
	}
	svc, err := authz.New(authz.Options{Policies: p.policies, Shadow: p.shadow, Store: a.Store, Checker: p.checker,
		Callers: callers, Principals: principals, Fetch: fetch, Log: p.log, Logger: a.log.With("component", "authz"),
		Registerer: a.registry, Freshness: rc.Freshness.Std(), DecisionTimeout: ac.DecisionTimeout.Std(), Now: opt.Now})
	if err != nil {
		return err
	}
	a.Authz = svc
	go svc.Run(bg)
	if every := ac.Policies.ReloadInterval.Std(); every > 0 {
		go a.watchAuthz(bg, every)
	}
	return nil
}

// ringSize maps the config's ring (0 = none) to decisionlog's (<0 = none).
func ringSize(n int) int {
	if n == 0 {
		return -1
	}
	return n
}

func loadRelationSchema(path string) (*rebac.Schema, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return rebac.ParseSchema(path, b)
}

// watchAuthz re-reads the policy directories and the relationship schema
// every interval. A new version is applied once two reads in a row agree
// (an editor or a git checkout writes files one by one); a set that does not
// load is logged and the running one stays.
func (a *App) watchAuthz(ctx context.Context, every time.Duration) {
	ac, p := a.Config.Authz, a.authz
	type watched struct {
		name          string
		load          func() (string, func(), error)
		running, seen string
	}
	ws := []*watched{{name: "policies", load: func() (string, func(), error) {
		s, err := policy.Load(ac.Policies.Dir)
		if err != nil {
			return "", nil, err
		}
		return s.Version(), func() { p.policies.Swap(s) }, nil
	}, running: p.policies.Load().Version()}}
	if p.shadow != nil {
		ws = append(ws, &watched{name: "shadow policies", load: func() (string, func(), error) {
			s, err := policy.Load(ac.Policies.ShadowDir)
			if err != nil {
				return "", nil, err
			}
			return s.Version(), func() { p.shadow.Swap(s) }, nil
		}, running: p.shadow.Load().Version()})
	}
	ws = append(ws, &watched{name: "relationship schema", load: func() (string, func(), error) {
		s, err := loadRelationSchema(ac.Relations.SchemaFile)
		if err != nil {
			return "", nil, err
		}
		return s.Hash(), func() { p.checker.SetSchema(s) }, nil
	}, running: p.checker.Schema().Hash()})
	t := time.NewTicker(every)
	defer t.Stop()
	failed := map[string]string{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, w := range ws {
			v, apply, err := w.load()
			if err != nil {
				if msg := err.Error(); failed[w.name] != msg { // log each distinct failure once
					failed[w.name] = msg
					a.log.Error("authorization "+w.name+" rejected; the running ones stay", "err", err)
				}
				w.seen = ""
				continue
			}
			delete(failed, w.name)
			if v == w.running {
				w.seen = ""
				continue
			}
			if v != w.seen {
				w.seen = v // wait for a second identical read
				continue
			}
			apply()
			a.log.Info("authorization "+w.name+" reloaded", "from", w.running, "to", v)
			w.running, w.seen = v, ""
		}
	}
}

func (a *App) authzChecks() []server.Check {
	if a.authz == nil {
		return nil
	}
	vs := a.authz.verifiers
	return []server.Check{{Name: "authz_keys", Fn: func(context.Context) error {
		for _, v := range vs { // callers' and every principal audience's
			if err := v.Ready(); err != nil {
				return err
			}
		}
		return nil
	}}}
}

func (a *App) authzListeners(cb func(string) func(string)) []server.Listener {
	if a.Authz == nil {
		return nil
	}
	ac := a.Config.Authz
	return []server.Listener{{Name: "authz", Addr: ac.Listen, Handler: a.Authz.Handler(),
		CertFile: ac.TLS.CertFile, KeyFile: ac.TLS.KeyFile, Bound: cb("authz")}}
}

// closeAuthz stops the verifiers and flushes the decision log.
func (a *App) closeAuthz() {
	if a.authz == nil {
		return
	}
	for _, v := range a.authz.verifiers {
		v.Close()
	}
	if err := a.authz.log.Close(); err != nil {
		a.log.Error("closing the decision log", "err", err)
	}
}

// WaitAuthzReady waits until the authorization service's verifiers have the
// issuer's keys (callers' and principals'), or ctx ends. Without the service
// it returns at once.
func (a *App) WaitAuthzReady(ctx context.Context) error {
	if a.authz == nil {
		return nil
	}
	for _, v := range a.authz.verifiers {
		if err := v.WaitReady(ctx); err != nil {
			return err
		}
	}
	return nil
}
