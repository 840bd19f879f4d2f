package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/spf13/cobra"

	"github.com/gatehouse/gatehouse/internal/authz/policy"
)

// newPolicyCmd is "gatehouse policy": check and test Cedar policy
// directories the way the authorization service loads them, so a policy
// repository can run both in its own CI (both exit non-zero on any failure).
func newPolicyCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:           "policy",
		Short:         "Validate and test Cedar policy directories",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	cmd.AddCommand(newPolicyValidate(), newPolicyTest())
	return cmd
}

func newPolicyValidate() *cobra.Command {
	return &cobra.Command{
		Use:   "validate DIR",
		Short: "Load a policy directory exactly as the server does; print its version or every error",
		Long: "Loads DIR/schema.cedarschema and DIR/*.cedar, validates every policy against the schema\n" +
			"(strict mode) and prints the policy set version, or every problem with file:line:col.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := policy.Load(args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "policy set %s is valid: %d policies, version %s\n", args[0], s.Len(), s.Version())
			return nil
		},
	}
}

func newPolicyTest() *cobra.Command {
	return &cobra.Command{
		Use:   "test DIR [TESTS.yaml...]",
		Short: "Run YAML test cases against a policy directory",
		Long: "Loads DIR like 'policy validate' and runs the cases of each TESTS.yaml file\n" +
			"(default: DIR/*_test.yaml and DIR/*_test.yml). See docs/authz.md for the format.",
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := policy.Load(args[0])
			if err != nil {
				return err
			}
			files := args[1:]
			if len(files) == 0 {
				for _, pat := range []string{"*_test.yaml", "*_test.yml"} {
					m, err := filepath.Glob(filepath.Join(args[0], pat))
					if err != nil {
						return fmt.Errorf("find tests: %w", err)
					}
					files = append(files, m...)
				}
				slices.Sort(files)
				if len(files) == 0 {
					return fmt.Errorf("no test files: pass TESTS.yaml or add %s", filepath.Join(args[0], "*_test.yaml"))
				}
			}
			out := cmd.OutOrStdout()
			passed, failed, broken := 0, 0, 0
			for _, f := range files {
				src, err := os.ReadFile(f)
				if err != nil {
					fmt.Fprintf(out, "ERROR %s: %v\n", f, err)
					broken++
					continue
				}
				res, err := policy.RunTests(s, f, src)
				if err != nil {
					fmt.Fprintf(out, "ERROR %v\n", err)
					broken++
					continue
				}
				for _, r := range res {
					if r.Pass {
						passed++
						fmt.Fprintf(out, "PASS  %s: %s\n", f, r.Name)
					} else {
						failed++
						fmt.Fprintf(out, "FAIL  %s: %s: %s\n", f, r.Name, r.Message)
					}
				}
			}
			fmt.Fprintf(out, "%d passed, %d failed, %d unreadable files (policy version %s)\n", passed, failed, broken, s.Version())
			if failed > 0 || broken > 0 {
				return errors.New("policy tests failed")
			}
			return nil
		},
	}
}
