package admincmd

import (
	"fmt"
	"io"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/gatehouse/gatehouse/internal/admin"
)

func keysCommand(opts ClientFunc) *cobra.Command {
	o := &output{}
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Manage token signing keys",
	}
	o.register(cmd)
	cmd.AddCommand(keysList(opts, o), keysRotate(opts, o), keysRevoke(opts))
	return cmd
}

func keyRows(w io.Writer, ks []admin.KeyInfo) {
	row(w, "KID", "ALG", "GEN", "STATE", "CREATED", "ACTIVATES", "RETIRED", "EXPIRES", "REVOKED")
	for _, k := range ks {
		row(w, k.ID, k.Algorithm, strconv.FormatInt(k.Generation, 10), k.State,
			ts(k.CreatedAt), ts(k.ActivateAt), ts(k.RetiredAt), ts(k.ExpiresAt), ts(k.RevokedAt))
	}
}

func keysList(opts ClientFunc, o *output) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List signing keys",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := opts()
			if err != nil {
				return err
			}
			ks, err := c.ListKeys(cmd.Context())
			if err != nil {
				return err
			}
			return o.emit(cmd, admin.KeyList{Keys: ks}, func(w io.Writer) { keyRows(w, ks) })
		},
	}
}

func keysRotate(opts ClientFunc, o *output) *cobra.Command {
	return &cobra.Command{
		Use:   "rotate",
		Short: "Create the next signing key (published before it signs)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := opts()
			if err != nil {
				return err
			}
			k, err := c.RotateKey(cmd.Context())
			if err != nil {
				return err
			}
			return o.emit(cmd, k, func(w io.Writer) { keyRows(w, []admin.KeyInfo{k}) })
		},
	}
}

func keysRevoke(opts ClientFunc) *cobra.Command {
	return &cobra.Command{
		Use:   "revoke KID",
		Short: "Revoke a signing key at once (tokens it signed stop validating)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := opts()
			if err != nil {
				return err
			}
			if err := c.RevokeKey(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Revoked key %s\n", clean(args[0]))
			return nil
		},
	}
}
