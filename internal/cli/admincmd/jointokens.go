package admincmd

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/gatehouse/gatehouse/internal/admin"
)

func joinTokensCommand(opts ClientFunc) *cobra.Command {
	o := &output{}
	cmd := &cobra.Command{
		Use:   "join-tokens",
		Short: "Issue single-use join tokens for the workload CA",
	}
	o.register(cmd)
	cmd.AddCommand(joinTokensCreate(opts, o))
	return cmd
}

func joinTokensCreate(opts ClientFunc, o *output) *cobra.Command {
	var req admin.JoinTokenRequest
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Issue a join token for one SPIFFE ID (single use, shown once)",
		Long: `Issue a join token for one SPIFFE ID. A workload presents it once to the
workload CA to obtain its first X.509 SVID, then renews with that SVID.
The token is printed once and cannot be shown again; only its keyed hash is
stored.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := opts()
			if err != nil {
				return err
			}
			resp, err := c.CreateJoinToken(cmd.Context(), req)
			if err != nil {
				return err
			}
			if err := o.emit(cmd, resp, func(w io.Writer) {
				row(w, "SPIFFE ID", resp.SPIFFEID)
				row(w, "Expires", ts(resp.ExpiresAt))
			}); err != nil {
				return err
			}
			if !o.json {
				fmt.Fprintf(cmd.OutOrStdout(), "\nJoin token: %s\n", clean(resp.Token))
			}
			fmt.Fprintln(cmd.ErrOrStderr(), "Note: the join token is single use and cannot be shown again; hand it to the workload over a secure channel before it expires.")
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.SPIFFEID, "spiffe-id", "", "SPIFFE ID the token's holder receives, e.g. spiffe://example.org/orders (required)")
	f.StringVar(&req.TTL, "ttl", "", "token lifetime between 1m and 24h, e.g. 10m (server default, 10m unless configured, when empty)")
	_ = cmd.MarkFlagRequired("spiffe-id")
	return cmd
}
