package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/spf13/cobra"

	"github.com/gatehouse/gatehouse/internal/authz/decisionlog"
)

// newAuthzCmd is "gatehouse authz": offline tools for the authorization
// service (docs/authz.md).
func newAuthzCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "authz",
		Short: "Authorization service tools",
	}
	cmd.AddCommand(newAuthzDecisionsCmd(time.Now))
	return cmd
}

type decisionsFlags struct {
	file, principal, since, action string
	deny, allow, json, disagree    bool
	limit                          int
}

func newAuthzDecisionsCmd(now func() time.Time) *cobra.Command {
	var f decisionsFlags
	cmd := &cobra.Command{
		Use:   "decisions --file FILE",
		Short: "Query a decision log file",
		Long: "decisions reads a JSON-lines decision log (authz.decision_log.path; '-' reads stdin) and prints\n" +
			"the matching decisions, newest first, as a table or, with --json, as JSON lines.",
		Example: "  gatehouse authz decisions --file /var/log/gatehouse/decisions.jsonl --principal user:usr_alice --deny --since 1h",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDecisions(cmd, f, now())
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.file, "file", "", "decision log file (JSON lines); '-' for stdin")
	fl.StringVar(&f.principal, "principal", "", `principal as "type:id" (user:usr_alice) or a bare id`)
	fl.BoolVar(&f.deny, "deny", false, "only denies")
	fl.BoolVar(&f.allow, "allow", false, "only allows")
	fl.StringVar(&f.since, "since", "", "only decisions newer than a duration ago (30m, 1h, 7d) or since an RFC 3339 time")
	fl.StringVar(&f.action, "action", "", "only this action")
	fl.IntVar(&f.limit, "limit", 0, "at most N decisions (newest first); 0 for all")
	fl.BoolVar(&f.json, "json", false, "print JSON lines instead of a table")
	fl.BoolVar(&f.disagree, "disagreements", false, "only decisions where the shadow policies disagreed")
	_ = cmd.MarkFlagRequired("file")
	cmd.MarkFlagsMutuallyExclusive("deny", "allow")
	return cmd
}

func runDecisions(cmd *cobra.Command, fl decisionsFlags, now time.Time) error {
	filter := decisionlog.Filter{Principal: fl.principal, Action: fl.action, Limit: fl.limit, Disagreements: fl.disagree}
	if fl.limit < 0 {
		return fmt.Errorf("invalid --limit %d: must be 0 (all) or more", fl.limit)
	}
	if fl.deny || fl.allow {
		a := fl.allow
		filter.Allow = &a
	}
	if fl.since != "" {
		t, err := parseSince(fl.since, now)
		if err != nil {
			return err
		}
		filter.Since = t
	}
	var r io.Reader
	if fl.file == "-" {
		r = cmd.InOrStdin()
	} else {
		f, err := os.Open(fl.file)
		if err != nil {
			return fmt.Errorf("open decision log: %w", err)
		}
		defer f.Close()
		r = f
	}
	entries, err := decisionlog.Read(r, filter)
	if err != nil {
		return fmt.Errorf("read %s: %w", fl.file, err)
	}
	out := cmd.OutOrStdout()
	if fl.json {
		return printDecisionsJSON(out, entries)
	}
	return printDecisionsTable(out, entries)
}

// parseSince accepts a positive duration (Go syntax, plus whole days as
// "7d") counted back from now, or an RFC 3339 time.
func parseSince(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	var d time.Duration
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n <= 0 || n > 36500 {
			return time.Time{}, fmt.Errorf("invalid --since %q: use a duration like 30m, 1h or 7d, or an RFC 3339 time", s)
		}
		d = time.Duration(n) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return time.Time{}, fmt.Errorf("invalid --since %q: use a duration like 30m, 1h or 7d, or an RFC 3339 time: %w", s, err)
		}
	}
	if d <= 0 {
		return time.Time{}, fmt.Errorf("invalid --since %q: the duration must be positive", s)
	}
	return now.Add(-d), nil
}

func printDecisionsJSON(w io.Writer, entries []decisionlog.Entry) error {
	for i := range entries {
		b, err := json.Marshal(&entries[i])
		if err != nil {
			return fmt.Errorf("encode decision %s: %w", entries[i].ID, err)
		}
		if _, err := w.Write(append(b, '\n')); err != nil {
			return fmt.Errorf("write: %w", err)
		}
	}
	return nil
}

func printDecisionsTable(w io.Writer, entries []decisionlog.Entry) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tDECISION\tPRINCIPAL\tACTION\tRESOURCE\tREASON\tPOLICIES\tID")
	for _, e := range entries {
		dec := verdict(e.Allow)
		if e.Shadow != nil && (e.Shadow.Disagree || e.Shadow.Allow != e.Allow) {
			dec += " (shadow " + verdict(e.Shadow.Allow) + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
			e.Time.UTC().Format(time.RFC3339), dec,
			cell(e.Principal.Type+":"+e.Principal.ID), cell(e.Action),
			cell(e.Resource.Type+":"+e.Resource.ID), cell(e.Reason),
			cell(strings.Join(e.Policies, ",")), cell(e.ID))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	return nil
}

func verdict(allow bool) string {
	if allow {
		return "allow"
	}
	return "deny"
}

// cell makes a log value safe for one table cell: control characters
// (terminal escapes, tabs, newlines from a crafted log line) become '?',
// and an empty value shows as "-".
func cell(s string) string {
	if s == "" {
		return "-"
	}
	return strings.Map(func(r rune) rune {
		if !unicode.IsPrint(r) {
			return '?'
		}
		return r
	}, s)
}
