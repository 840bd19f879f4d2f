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
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/gatehouse/gatehouse/internal/app"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/devdemo"
	"github.com/gatehouse/gatehouse/internal/secret"
	"github.com/gatehouse/gatehouse/internal/storage"
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
}

// Demo users' passwords (dev mode only; printed in the tour).
const (
	demoAlicePassword = "wonderland-rabbit-42"
	demoBobPassword   = "builder-can-we-fix-it"
)

func newDev(e env) *cobra.Command {
	var dataDir, listen, adminListen, demoListen, issuer, algorithm string
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run everything on loopback with embedded defaults and demo data",
		Long: "dev runs the identity provider, the admin API and a demo web app on loopback, with a SQLite file in\n" +
			"the data directory, generated secrets, demo users and clients, and prints a tour of what to try.\n" +
			"It is for laptops and scripts, never for production.",
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDev(cmd.Context(), e, devFlags{dataDir, listen, adminListen, demoListen, issuer, algorithm})
		},
	}
	f := cmd.Flags()
	f.StringVar(&dataDir, "data-dir", "gatehouse-data", "directory for the SQLite database and generated secrets")
	f.StringVar(&listen, "listen", "127.0.0.1:8080", "identity provider listen address")
	f.StringVar(&adminListen, "admin-listen", "127.0.0.1:8081", "admin API and /metrics listen address")
	f.StringVar(&demoListen, "demo-listen", "127.0.0.1:8090", "demo web app listen address (empty disables)")
	f.StringVar(&issuer, "issuer", "", "issuer URL (default http://localhost:<idp port>)")
	f.StringVar(&algorithm, "signing-algorithm", "RS256", "token signing algorithm: RS256, ES256 or EdDSA")
	return cmd
}

type devFlags struct{ dataDir, listen, adminListen, demoListen, issuer, algorithm string }

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
		printTour(e.stdout, f, st)
		return nil
	})
	return g.Wait()
}

func loadDevState(path string) (devState, error) {
	var st devState
	b, err := os.ReadFile(path)
	if err == nil {
		if err := json.Unmarshal(b, &st); err != nil {
			return st, fmt.Errorf("%s: %w", path, err)
		}
		return st, nil
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
		DemoWebSecret: "ghs_" + secret.New(), DemoServiceSecret: "ghs_" + secret.New(), DemoAPISecret: "ghs_" + secret.New()}
	b, _ = json.MarshalIndent(st, "", "  ")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return st, err
	}
	return st, nil
}

// seedDemo creates the demo users and clients once.
func seedDemo(ctx context.Context, a *app.App, st devState, demoRedirect string) error {
	now := time.Now()
	users := []struct {
		id, username, name, email, pw, tenant string
		roles, groups                         []string
	}{
		{"usr_alice", "alice", "Alice Liddell", "alice@example.com", demoAlicePassword, "acme", []string{"admin", "orders:manager"}, []string{"staff"}},
		{"usr_bob", "bob", "Bob Builder", "bob@example.com", demoBobPassword, "acme", []string{"viewer"}, []string{"contractors"}},
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
	clients := []storage.Client{
		{ID: "demo-web", Name: "Demo web app", SecretHash: a.Secrets.Sum(st.DemoWebSecret), RedirectURIs: []string{demoRedirect},
			PostLogoutRedirectURIs: []string{"http://" + hostOf(demoRedirect) + "/"},
			GrantTypes:             []string{"authorization_code", "refresh_token"},
			Scopes:                 []string{"openid", "profile", "email", "offline_access", "orders:read"}, Audiences: []string{"https://api.orders.example"}},
		{ID: "demo-service", Name: "Demo backend service", SecretHash: a.Secrets.Sum(st.DemoServiceSecret),
			GrantTypes: []string{"client_credentials"}, Scopes: []string{"orders:read", "orders:write"},
			Audiences: []string{"https://api.orders.example"}},
		{ID: "demo-api", Name: "Demo resource server (introspects tokens)", SecretHash: a.Secrets.Sum(st.DemoAPISecret),
			GrantTypes: []string{"client_credentials"}},
		{ID: "demo-cli", Name: "Demo CLI (public, PKCE)", Public: true, FirstParty: true,
			RedirectURIs: []string{"http://127.0.0.1/callback"}, GrantTypes: []string{"authorization_code", "refresh_token"},
			Scopes: []string{"openid", "profile", "offline_access"}},
	}
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

func printTour(w io.Writer, f devFlags, st devState) {
	fmt.Fprintf(w, `
================================================================================
 Gatehouse dev mode is running (NOT for production: generated secrets, http).
================================================================================
 Identity provider   %[1]s
   discovery         %[1]s/.well-known/openid-configuration
   JWKS              %[1]s/.well-known/jwks.json
 Admin API           http://%[2]s/admin/v1   (OpenAPI: /admin/v1/openapi.yaml)
   admin token       %[3]s
 Metrics             http://%[2]s/metrics
 Data directory      %[4]s  (delete it to start over)

 Demo users          alice / %[5]s   (roles admin, orders:manager; tenant acme)
                     bob   / %[6]s   (role viewer; tenant acme)

 1. A token for a service (client credentials):
    curl -s -u demo-service:%[7]s -d grant_type=client_credentials \
         -d scope=orders:read %[1]s/oauth/token

 2. Introspect it as a resource server (paste the access_token):
    curl -s -u demo-api:%[8]s -d token=ACCESS_TOKEN %[1]s/oauth/introspect

 3. Sign in with a browser: open http://%[9]s/ and sign in as alice.
    The demo app uses golang.org/x/oauth2 + go-oidc: code flow with PKCE,
    consent, ID token verification, refresh, userinfo and sign-out.

 4. Manage it: GATEHOUSE_ADMIN_TOKEN=%[3]s go run ./cmd/gatehouse clients list
================================================================================
`, f.issuer, f.adminListen, st.AdminToken, f.dataDir, demoAlicePassword, demoBobPassword,
		st.DemoServiceSecret, st.DemoAPISecret, f.demoListen)
}
