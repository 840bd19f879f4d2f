package cli

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/gatehouse/gatehouse/examples/demo"
	"github.com/gatehouse/gatehouse/internal/app"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/devdemo"
	"github.com/gatehouse/gatehouse/internal/secret"
	"github.com/gatehouse/gatehouse/internal/storage"
	"github.com/gatehouse/gatehouse/sdk/workload"
)

// devState holds the generated secrets of a dev data directory, so restarts
// keep the same keys, admin token and demo credentials. Written 0600.
type devState struct {
	KEK               string `json:"key_encryption_key"`
	Pepper            string `json:"pepper"`
	AdminToken        string `json:"admin_token"`
	DemoWebSecret     string `json:"demo_web_secret"`
	DemoServiceSecret string `json:"demo_service_secret"`
	DemoAPISecret     string `json:"demo_api_secret"`
	DemoBillingSecret string `json:"demo_billing_secret"`
	DemoGatewaySecret string `json:"demo_gateway_secret"`
	DemoOrdersSecret  string `json:"demo_orders_secret"`
}

// Demo users' passwords (dev mode only; printed in the tour).
const (
	demoAlicePassword = "wonderland-rabbit-42"
	demoBobPassword   = "builder-can-we-fix-it"
	demoCarolPassword = "off-with-their-heads-9"
)

func newDev(e env) *cobra.Command {
	var f devFlags
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run everything on loopback with embedded defaults and demo data",
		Long: "dev runs the identity provider, the admin API and a demo web app on loopback, with a SQLite file in\n" +
			"the data directory, generated secrets, demo users and clients, and prints a tour of what to try.\n" +
			"It is for laptops and scripts, never for production.",
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDev(cmd.Context(), e, f)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&f.dataDir, "data-dir", "gatehouse-data", "directory for the SQLite database and generated secrets")
	fs.StringVar(&f.listen, "listen", "127.0.0.1:8080", "identity provider listen address")
	fs.StringVar(&f.adminListen, "admin-listen", "127.0.0.1:8081", "admin API and /metrics listen address")
	fs.StringVar(&f.demoListen, "demo-listen", "127.0.0.1:8090", "demo web app listen address (empty disables)")
	fs.StringVar(&f.ordersListen, "orders-listen", "127.0.0.1:8091", "demo orders service listen address (empty disables it and payments)")
	fs.StringVar(&f.paymentsListen, "payments-listen", "127.0.0.1:8092", "demo payments service listen address (empty disables)")
	fs.StringVar(&f.gatewayListen, "gateway-listen", "127.0.0.1:8000", "API gateway listen address, in front of the demo services (empty disables)")
	fs.StringVar(&f.authorizerListen, "authorizer-listen", "127.0.0.1:8001", "external authorizer (nginx auth_request, Envoy, Traefik, Caddy) listen address (empty disables)")
	fs.StringVar(&f.authzListen, "authz-listen", "127.0.0.1:8002", "authorization service listen address; the demo orders service delegates to it (empty disables)")
	fs.StringVar(&f.caListen, "ca-listen", "127.0.0.1:8003", "workload CA listen address (HTTPS); with it the demo services talk mutual TLS (empty disables)")
	fs.StringVar(&f.issuer, "issuer", "", "issuer URL (default http://localhost:<idp port>)")
	fs.StringVar(&f.algorithm, "signing-algorithm", "RS256", "token signing algorithm: RS256, ES256 or EdDSA")
	return cmd
}

type devFlags struct {
	dataDir, listen, adminListen, demoListen, issuer, algorithm string
	ordersListen, paymentsListen                                string
	gatewayListen, authorizerListen, authzListen, caListen      string
}

func runDev(ctx context.Context, e env, f devFlags) error {
	if err := os.MkdirAll(f.dataDir, 0o700); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	st, err := loadDevState(filepath.Join(f.dataDir, "dev-secrets.json"))
	if err != nil {
		return err
	}
	_, port, err := net.SplitHostPort(f.listen)
	if err != nil {
		return fmt.Errorf("--listen: %w", err)
	}
	if f.issuer == "" {
		f.issuer = "http://localhost:" + port
	}
	svcs, err := listenDemo(f)
	if err != nil {
		return err
	}
	defer svcs.close()
	cfg := devConfig(f, st, svcs.urls)
	if f.authzListen != "" {
		paths, err := writeDevAuthzFiles(f.dataDir)
		if err != nil {
			return err
		}
		cfg.Authz = devAuthz(f, paths)
	}
	warns, err := cfg.Validate()
	if err != nil {
		return err
	}
	printWarnings(e.stderr, warns)
	log := newLogger(e.stderr, cfg.Log)
	slog.SetDefault(log) // libraries (zitadel/oidc) log through the default logger
	a, err := app.New(ctx, cfg, log, app.Options{})
	if err != nil {
		return err
	}
	defer a.Close()
	demoRedirect := "http://" + f.demoListen + "/callback"
	if err := seedDemo(ctx, a, st, demoRedirect); err != nil {
		return fmt.Errorf("seed demo data: %w", err)
	}
	warnStaleDemoData(ctx, a, f.dataDir, log)
	if changed, err := upgradeDemoClients(ctx, a); err != nil {
		log.Warn("the demo clients could not get their workload identity; delete the data directory to start over", "err", err)
	} else if len(changed) > 0 {
		log.Info("demo clients of an older data directory got their workload identity", "clients", changed)
	}
	var wl *devWorkload
	if f.mtls() {
		if wl, err = newDevWorkload(ctx, a, f, st); err != nil {
			return err
		}
	}
	g, ctx := errgroup.WithContext(ctx)
	ready := make(chan struct{}, 2)
	g.Go(func() error {
		return a.Run(ctx, func(string, string) { ready <- struct{}{} })
	})
	if f.demoListen != "" {
		demo := devdemo.New(devdemo.Config{Issuer: f.issuer, ClientID: "demo-web", ClientSecret: st.DemoWebSecret,
			RedirectURL: demoRedirect}, log.With("component", "demo"))
		ln, err := net.Listen("tcp", f.demoListen)
		if err != nil {
			return fmt.Errorf("demo listen: %w", err)
		}
		srv := &http.Server{Handler: demo.Handler(), ReadHeaderTimeout: 10 * time.Second}
		g.Go(func() error {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		})
		g.Go(func() error {
			<-ctx.Done()
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			return srv.Shutdown(sctx)
		})
	}
	g.Go(func() error {
		for range a.Listeners(nil) {
			select {
			case <-ready:
			case <-ctx.Done():
				return nil
			}
		}
		var az demo.AuthzConfig
		if f.authzListen != "" {
			az = demo.AuthzConfig{URL: loopbackURL(f.authzListen), Audience: cfg.Authz.Audience,
				ClientID: devOrdersClient, ClientSecret: st.DemoOrdersSecret}
		}
		ds := demoStart{issuer: f.issuer, authz: az}
		var ordersID, paymentsID *workload.CASource
		if wl != nil && svcs.orders != nil {
			var err error
			if ordersID, paymentsID, err = wl.identities(ctx); err != nil {
				return fmt.Errorf("workload identities: %w", err)
			}
			defer ordersID.Close()
			defer paymentsID.Close()
			ds.workload = &demo.WorkloadConfig{Orders: ordersID, Payments: paymentsID}
			ds.ordersVia = loopbackURL(f.gatewayListen)
		}
		release, err := startDemo(ctx, g, svcs, ds, log)
		defer release()
		if err != nil {
			return err
		}
		urls := svcs.urls
		if svcs.payments == nil {
			urls = demoURLs{}
		}
		if a.Gateway != nil {
			// The tour's first steps go through the gateway: its keys first.
			wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			err := a.Gateway.WaitReady(wctx)
			cancel()
			if err != nil && ctx.Err() == nil {
				return fmt.Errorf("gateway: signing keys not loaded: %w", err)
			}
		}
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err = a.WaitAuthzReady(wctx)
		cancel()
		if err != nil && ctx.Err() == nil {
			return fmt.Errorf("authorization service: signing keys not loaded: %w", err)
		}
		if ds.workload != nil {
			// Its own SVID too: the routes to the services need it.
			if err := waitGatewayReady(ctx, loopbackURL(f.gatewayListen)); err != nil && ctx.Err() == nil {
				log.Warn("the gateway is not ready yet (its SVID?): the tour's first steps may answer 503", "err", err)
			}
		}
		if ds.workload != nil && svcs.payments != nil {
			urls.workload = checkWorkload(ctx, wl, ordersID, paymentsID, urls)
			urls.workload.svids = append(urls.workload.svids, gatewaySVID(a))
		}
		printTour(e.stdout, f, st, urls)
		<-ctx.Done() // keep the verifiers until shutdown
		return nil
	})
	return g.Wait()
}

// devConfig is the configuration of `gatehouse dev` (the authorization
// service aside: it needs files in the data directory).
func devConfig(f devFlags, st devState, urls demoURLs) config.Config {
	sum := sha256.Sum256([]byte(st.AdminToken))
	cfg := config.Default()
	cfg.Issuer = f.issuer
	cfg.Log.Format = "text"
	cfg.Storage.Driver = "sqlite"
	cfg.Storage.DSN = "file:" + filepath.Join(f.dataDir, "gatehouse.db")
	cfg.Secrets.KeyEncryptionKey = st.KEK
	cfg.Secrets.Pepper = st.Pepper
	cfg.Admin.Listen = f.adminListen
	cfg.Admin.TokenSHA256 = hex.EncodeToString(sum[:])
	cfg.IDP.Listen = f.listen
	cfg.IDP.DevMode = true
	cfg.IDP.Signing.Algorithm = f.algorithm
	cfg.Gateway = devGateway(f, st, urls)
	if f.caListen != "" {
		cfg.CA = devCA(f)
	}
	return cfg
}

func loadDevState(path string) (devState, error) {
	var st devState
	b, err := os.ReadFile(path)
	if err == nil {
		if err := json.Unmarshal(b, &st); err != nil {
			return st, fmt.Errorf("%s: %w", path, err)
		}
		if st.DemoBillingSecret != "" && st.DemoGatewaySecret != "" && st.DemoOrdersSecret != "" {
			return st, nil
		}
		// A data directory from before the billing or gateway demo: add
		// the missing secrets.
		if st.DemoBillingSecret == "" {
			st.DemoBillingSecret = "ghs_" + secret.New()
		}
		if st.DemoGatewaySecret == "" {
			st.DemoGatewaySecret = "ghs_" + secret.New()
		}
		if st.DemoOrdersSecret == "" {
			st.DemoOrdersSecret = "ghs_" + secret.New()
		}
		return st, writeDevState(path, st)
	}
	if !errors.Is(err, os.ErrNotExist) {
		return st, err
	}
	rnd := func() string {
		b := make([]byte, 32)
		_, _ = rand.Read(b)
		return base64.StdEncoding.EncodeToString(b)
	}
	st = devState{KEK: rnd(), Pepper: rnd(), AdminToken: "gha_" + secret.New(),
		DemoWebSecret: "ghs_" + secret.New(), DemoServiceSecret: "ghs_" + secret.New(), DemoAPISecret: "ghs_" + secret.New(),
		DemoBillingSecret: "ghs_" + secret.New(), DemoGatewaySecret: "ghs_" + secret.New(),
		DemoOrdersSecret: "ghs_" + secret.New()}
	return st, writeDevState(path, st)
}

// writeDevState writes st to path, 0600, atomically (temporary file and
// rename), so an interrupted write never leaves a truncated secrets file.
func writeDevState(path string, st devState) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".dev-secrets-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// seedDemo creates the demo users and clients once.
func seedDemo(ctx context.Context, a *app.App, st devState, demoRedirect string) error {
	now := time.Now()
	users := []struct {
		id, username, name, email, pw, tenant string
		roles, groups                         []string
	}{
		// alice manages bob: the team data lives in the orders service.
		{"usr_alice", "alice", "Alice Liddell", "alice@example.com", demoAlicePassword, "acme", []string{"user"}, []string{"staff"}},
		{"usr_bob", "bob", "Bob Builder", "bob@example.com", demoBobPassword, "acme", []string{"user"}, []string{"contractors"}},
		{"usr_carol", "carol", "Carol Queen of Hearts", "carol@example.com", demoCarolPassword, "acme", []string{"admin"}, []string{"staff"}},
	}
	for _, u := range users {
		if _, err := a.Store.GetUser(ctx, u.id); err == nil {
			continue
		}
		h, err := a.Passwords.Hash(u.pw)
		if err != nil {
			return err
		}
		err = a.Store.CreateUser(ctx, storage.User{ID: u.id, Username: u.username, Name: u.name, Email: u.email, EmailVerified: true,
			PasswordHash: h, Roles: u.roles, Groups: u.groups, Tenant: u.tenant, CreatedAt: now, UpdatedAt: now})
		if err != nil && !errors.Is(err, storage.ErrAlreadyExists) {
			return err
		}
	}
	apis := []string{ordersAudience, paymentsAudience}
	clients := []storage.Client{
		{ID: "demo-web", Name: "Demo web app", SecretHash: a.Secrets.Sum(st.DemoWebSecret), RedirectURIs: []string{demoRedirect},
			PostLogoutRedirectURIs: []string{"http://" + hostOf(demoRedirect) + "/"},
			GrantTypes:             []string{"authorization_code", "refresh_token"},
			Scopes:                 []string{"openid", "profile", "email", "offline_access", "orders:read", "orders:write", "payments:write"},
			Audiences:              apis},
		{ID: "demo-service", Name: "Demo backend service", SecretHash: a.Secrets.Sum(st.DemoServiceSecret),
			GrantTypes: []string{"client_credentials"}, Scopes: []string{"orders:read", "orders:write"},
			Audiences: []string{ordersAudience}},
		{ID: "demo-billing", Name: "Demo billing job (payments only)", SecretHash: a.Secrets.Sum(st.DemoBillingSecret),
			GrantTypes: []string{"client_credentials"}, Scopes: []string{"payments:write"}, Audiences: []string{paymentsAudience}},
		{ID: "demo-api", Name: "Demo resource server (introspects tokens)", SecretHash: a.Secrets.Sum(st.DemoAPISecret),
			GrantTypes: []string{"client_credentials"}},
		{ID: "demo-cli", Name: "Demo CLI (public, PKCE)", Public: true, FirstParty: true,
			RedirectURIs: []string{"http://127.0.0.1/callback"}, GrantTypes: []string{"authorization_code", "refresh_token"},
			Scopes:    []string{"openid", "profile", "offline_access", "orders:read", "orders:write", "payments:write"},
			Audiences: apis},
	}
	clients = append(clients, devGatewayClientRecord(a.Secrets.Sum(st.DemoGatewaySecret)),
		withWorkloadIdentity(devOrdersClientRecord(a.Secrets.Sum(st.DemoOrdersSecret))))
	for _, c := range clients {
		c.CreatedAt, c.UpdatedAt = now, now
		if err := a.Store.CreateClient(ctx, c); err != nil && !errors.Is(err, storage.ErrAlreadyExists) {
			return err
		}
	}
	return nil
}

func hostOf(u string) string {
	rest := u[len("http://"):]
	for i := 0; i < len(rest); i++ {
		if rest[i] == '/' {
			return rest[:i]
		}
	}
	return rest
}
