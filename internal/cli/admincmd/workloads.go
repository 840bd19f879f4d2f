package admincmd

import (
	"io"

	"github.com/spf13/cobra"
)

func workloadsCommand(opts ClientFunc) *cobra.Command {
	o := &output{}
	cmd := &cobra.Command{
		Use:   "workloads",
		Short: "Manage workload identities of the workload CA",
	}
	o.register(cmd)
	cmd.AddCommand(workloadsRevoke(opts, o))
	return cmd
}

func workloadsRevoke(opts ClientFunc, o *output) *cobra.Command {
	var id string
	cmd := &cobra.Command{
		Use:   "revoke",
		Short: "Revoke a SPIFFE ID: the CA stops renewing its current SVIDs",
		Long: `Revoke a SPIFFE ID. The workload CA no longer renews SVIDs of that ID
issued before now; SVIDs already issued stay valid until they expire (at
most ca.svid_ttl). A new bootstrap (a fresh join token, or the client
credentials of the client registered with that ID) still works.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := opts()
			if err != nil {
				return err
			}
			resp, err := c.RevokeSPIFFEID(cmd.Context(), id)
			if err != nil {
				return err
			}
			return o.emit(cmd, resp, func(w io.Writer) {
				row(w, "SPIFFE ID", resp.SPIFFEID)
				row(w, "Revoked", ts(resp.RevokedAt))
			})
		},
	}
	cmd.Flags().StringVar(&id, "spiffe-id", "", "SPIFFE ID to revoke, e.g. spiffe://example.org/orders (required)")
	_ = cmd.MarkFlagRequired("spiffe-id")
	return cmd
}
