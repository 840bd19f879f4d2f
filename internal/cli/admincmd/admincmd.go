// Package admincmd holds the CLI subcommands that drive the admin API
// through internal/adminclient: "clients", "users", "keys", "join-tokens"
// and "workloads" (revoke a SPIFFE ID).
//
// Output is a human-readable table by default and JSON with --json.
// Passwords are read from standard input, never from flags, so they stay out
// of shell history and process listings. A generated client secret is
// or join token is printed once, with a note that it cannot be shown again.
package admincmd

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/gatehouse/gatehouse/internal/adminclient"
)

// ClientFunc returns the admin API client; it is called when a command runs,
// so flags and environment are already parsed.
type ClientFunc func() (*adminclient.Client, error)

// Commands returns the "clients", "users", "keys", "join-tokens" and
// "workloads" commands.
func Commands(opts func() (*adminclient.Client, error)) []*cobra.Command {
	return []*cobra.Command{clientsCommand(opts), usersCommand(opts), keysCommand(opts), joinTokensCommand(opts), workloadsCommand(opts)}
}

// output carries the --json flag of one command tree.
type output struct{ json bool }

func (o *output) register(cmd *cobra.Command) {
	cmd.PersistentFlags().BoolVar(&o.json, "json", false, "print JSON instead of a table")
}

// emit prints v as JSON, or calls table with a tab writer.
func (o *output) emit(cmd *cobra.Command, v any, table func(w io.Writer)) error {
	out := cmd.OutOrStdout()
	if o.json {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	table(tw)
	return tw.Flush()
}

// row writes tab-separated cells, each made safe for a terminal.
func row(w io.Writer, cells ...string) {
	for i, c := range cells {
		cells[i] = clean(c)
	}
	fmt.Fprintln(w, strings.Join(cells, "\t"))
}

// clean replaces control characters (terminal escapes, tabs, newlines) so a
// value from the server cannot rewrite the admin's terminal.
func clean(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return '?'
		}
		return r
	}, s)
}

func list(vals []string) string {
	if len(vals) == 0 {
		return "-"
	}
	return strings.Join(vals, ",")
}

func ts(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// maxPasswordInput caps what is read from standard input.
const maxPasswordInput = 4096

var errNoPassword = errors.New("no password on standard input")

// readPassword reads the first line of r (without its line ending).
func readPassword(r io.Reader) (string, error) {
	br := bufio.NewReader(io.LimitReader(r, maxPasswordInput+1))
	line, err := br.ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read password: %w", err)
	}
	if len(line) > maxPasswordInput {
		return "", fmt.Errorf("password on standard input is longer than %d bytes", maxPasswordInput)
	}
	line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
	if line == "" {
		return "", errNoPassword
	}
	return line, nil
}

// printSecret shows a generated client secret once.
func printSecret(cmd *cobra.Command, o *output, secret string) {
	if secret == "" {
		return
	}
	if !o.json {
		fmt.Fprintf(cmd.OutOrStdout(), "\nClient secret: %s\n", secret)
	}
	fmt.Fprintln(cmd.ErrOrStderr(), "Note: store the client secret now; it cannot be shown again (rotate it with \"clients rotate-secret\" if lost).")
}
