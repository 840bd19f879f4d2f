package cli

import (
	"fmt"
	"log/slog"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/gatehouse/gatehouse/internal/app"
	"github.com/gatehouse/gatehouse/internal/config"
)

func newServe(e env) *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the components named in the configuration",
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(e, path)
			if err != nil {
				return err
			}
			log := newLogger(e.stderr, cfg.Log)
			slog.SetDefault(log) // libraries (zitadel/oidc) log through the default logger
			a, err := app.New(cmd.Context(), cfg, log, app.Options{})
			if err != nil {
				return err
			}
			defer a.Close()
			if path == "" {
				path = e.get("GATEHOUSE_CONFIG")
			}
			go a.WatchConfig(cmd.Context(), path, e.vars) // gateway routes reload without a restart
			return a.Run(cmd.Context(), nil)
		},
	}
	cmd.Flags().StringVar(&path, "config", "", "configuration file (env GATEHOUSE_CONFIG)")
	return cmd
}

func newMigrate(e env) *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Apply database migrations and exit",
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(e, path)
			if err != nil {
				return err
			}
			st, err := app.OpenStore(cmd.Context(), cfg.Storage) // Open migrates
			if err != nil {
				return err
			}
			defer st.Close()
			fmt.Fprintln(e.stdout, "migrations applied")
			return nil
		},
	}
	cmd.Flags().StringVar(&path, "config", "", "configuration file (env GATEHOUSE_CONFIG)")
	return cmd
}

func newConfigCmd(e env) *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "Configuration tools"}
	var path string
	validate := &cobra.Command{
		Use:   "validate",
		Short: "Check a configuration file and report every problem at once",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if _, err := loadConfig(e, path); err != nil {
				return err
			}
			fmt.Fprintln(e.stdout, "configuration is valid")
			return nil
		},
	}
	validate.Flags().StringVar(&path, "config", "", "configuration file (env GATEHOUSE_CONFIG)")
	defaults := &cobra.Command{
		Use:   "defaults",
		Short: "Print the default configuration as YAML",
		RunE: func(cmd *cobra.Command, _ []string) error {
			enc := yaml.NewEncoder(e.stdout)
			enc.SetIndent(2)
			if err := enc.Encode(config.Default()); err != nil {
				return err
			}
			return enc.Close()
		},
	}
	cmd.AddCommand(validate, defaults)
	return cmd
}
