// Package cli implements the gatehouse command line: serve, dev, migrate,
// config validate, version, and the admin commands (clients, users, keys)
// that talk to the admin API.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/gatehouse/gatehouse/internal/adminclient"
	"github.com/gatehouse/gatehouse/internal/cli/admincmd"
	"github.com/gatehouse/gatehouse/internal/config"
)

// Version is set at build time with -ldflags "-X .../internal/cli.Version=v1.2.3".
var Version = "dev"

// env is the process environment handed to commands (no global lookups).
type env struct {
	vars   []string
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
}

func (e env) get(k string) string {
	for i := len(e.vars) - 1; i >= 0; i-- {
		if v, ok := strings.CutPrefix(e.vars[i], k+"="); ok {
			return v
		}
	}
	return ""
}

// Main runs the command line and returns the exit code.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer, environ []string) int {
	e := env{vars: environ, stdin: stdin, stdout: stdout, stderr: stderr}
	root := newRoot(e)
	root.SetArgs(args)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(stderr, "error:", err)
		return 1
	}
	return 0
}

func newRoot(e env) *cobra.Command {
	root := &cobra.Command{
		Use:           "gatehouse",
		Short:         "Gatehouse: identity provider, gateway, authorization and workload identity in one binary",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(e.stdin)
	root.SetOut(e.stdout)
	root.SetErr(e.stderr)
	var adminURL, adminToken string
	root.PersistentFlags().StringVar(&adminURL, "admin-url", "", "admin API base URL (env GATEHOUSE_ADMIN_URL; default http://127.0.0.1:8081)")
	root.PersistentFlags().StringVar(&adminToken, "admin-token-file", "", "file holding the admin token (env GATEHOUSE_ADMIN_TOKEN holds the token itself)")
	clientFn := func() (*adminclient.Client, error) {
		u := adminURL
		if u == "" {
			u = e.get("GATEHOUSE_ADMIN_URL")
		}
		if u == "" {
			u = "http://127.0.0.1:8081"
		}
		tok := e.get("GATEHOUSE_ADMIN_TOKEN")
		if adminToken != "" {
			b, err := os.ReadFile(adminToken)
			if err != nil {
				return nil, fmt.Errorf("read admin token: %w", err)
			}
			tok = strings.TrimSpace(string(b))
		}
		if tok == "" {
			return nil, errors.New("no admin token: set GATEHOUSE_ADMIN_TOKEN or --admin-token-file (gatehouse dev prints one)")
		}
		return adminclient.New(u, tok, nil), nil
	}
	root.AddCommand(newServe(e), newDev(e), newMigrate(e), newConfigCmd(e), newVersion(), newPolicyCmd(), newAuthzCmd())
	root.AddCommand(admincmd.Commands(clientFn)...)
	return root
}

func newVersion() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		RunE: func(cmd *cobra.Command, _ []string) error {
			v := Version
			if bi, ok := debug.ReadBuildInfo(); ok && v == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
				v = bi.Main.Version
			}
			fmt.Fprintf(cmd.OutOrStdout(), "gatehouse %s\n", v)
			return nil
		},
	}
}

// loadConfig reads the config file (flag or GATEHOUSE_CONFIG) and prints
// warnings loudly.
func loadConfig(e env, path string) (config.Config, error) {
	if path == "" {
		path = e.get("GATEHOUSE_CONFIG")
	}
	if path == "" {
		return config.Config{}, errors.New("no configuration: pass --config FILE or set GATEHOUSE_CONFIG")
	}
	cfg, warns, err := config.LoadFile(path, e.vars)
	if err != nil {
		return cfg, err
	}
	printWarnings(e.stderr, warns)
	return cfg, nil
}

func printWarnings(w io.Writer, warns []config.Warning) {
	for _, wn := range warns {
		fmt.Fprintf(w, "WARNING: %s: %s\n", wn.Key, wn.Message)
	}
}

func newLogger(w io.Writer, lc config.LogConfig) *slog.Logger {
	opts := &slog.HandlerOptions{Level: lc.SlogLevel()}
	if lc.Format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}
