package admincmd

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/gatehouse/gatehouse/internal/admin"
)

func clientsCommand(opts ClientFunc) *cobra.Command {
	o := &output{}
	cmd := &cobra.Command{
		Use:   "clients",
		Short: "Manage OAuth 2.0 clients",
	}
	o.register(cmd)
	cmd.AddCommand(clientsCreate(opts, o), clientsList(opts, o), clientsGet(opts, o),
		clientsDelete(opts), clientsRotateSecret(opts, o))
	return cmd
}

func clientTable(c admin.ClientResponse) func(io.Writer) {
	return func(w io.Writer) {
		typ := "confidential"
		if c.Public {
			typ = "public"
		}
		row(w, "ID", c.ID)
		row(w, "Name", c.Name)
		row(w, "Type", typ)
		row(w, "First party", yesNo(c.FirstParty))
		row(w, "Grant types", list(c.GrantTypes))
		row(w, "Redirect URIs", list(c.RedirectURIs))
		row(w, "Post-logout URIs", list(c.PostLogoutRedirectURIs))
		row(w, "Scopes", list(c.Scopes))
		row(w, "Audiences", list(c.Audiences))
		row(w, "SPIFFE ID", orDash(c.SPIFFEID))
		row(w, "Access token TTL", orDash(c.AccessTokenTTL))
		row(w, "Refresh idle TTL", orDash(c.RefreshIdleTTL))
		row(w, "Refresh max TTL", orDash(c.RefreshMaxTTL))
		row(w, "Secret hint", orDash(c.SecretHint))
		row(w, "Created", ts(c.CreatedAt))
		row(w, "Updated", ts(c.UpdatedAt))
	}
}

func clientsCreate(opts ClientFunc, o *output) *cobra.Command {
	var req admin.ClientRequest
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Register a client (confidential clients get a secret, shown once)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := opts()
			if err != nil {
				return err
			}
			resp, err := c.CreateClient(cmd.Context(), req)
			if err != nil {
				return err
			}
			if err := o.emit(cmd, resp, clientTable(resp)); err != nil {
				return err
			}
			printSecret(cmd, o, resp.ClientSecret)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.ID, "id", "", "client id (generated when empty)")
	f.StringVar(&req.Name, "name", "", "display name (required)")
	f.BoolVar(&req.Public, "public", false, "public client (no secret; PKCE only)")
	f.BoolVar(&req.FirstParty, "first-party", false, "first-party client (consent skipped)")
	f.StringArrayVar(&req.RedirectURIs, "redirect-uri", nil, "redirect URI (repeatable)")
	f.StringArrayVar(&req.PostLogoutRedirectURIs, "post-logout-redirect-uri", nil, "post-logout redirect URI (repeatable)")
	f.StringArrayVar(&req.GrantTypes, "grant-type", nil, "authorization_code, refresh_token or client_credentials (repeatable; default authorization_code and refresh_token)")
	f.StringArrayVar(&req.Scopes, "scope", nil, "scope the client may request (repeatable)")
	f.StringArrayVar(&req.Audiences, "audience", nil, "audience the client may request (repeatable)")
	f.StringVar(&req.AccessTokenTTL, "access-token-ttl", "", "access token lifetime, e.g. 10m (server default when empty)")
	f.StringVar(&req.RefreshIdleTTL, "refresh-idle-ttl", "", "refresh token idle lifetime, e.g. 72h")
	f.StringVar(&req.RefreshMaxTTL, "refresh-max-ttl", "", "refresh token absolute lifetime, e.g. 720h")
	f.StringVar(&req.SPIFFEID, "spiffe-id", "", "workload identity the client may obtain from the workload CA with its client credentials, e.g. spiffe://example.org/orders")
	_ = cmd.MarkFlagRequired("name")
	return cmd
}

func clientsList(opts ClientFunc, o *output) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List clients",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := opts()
			if err != nil {
				return err
			}
			cs, err := c.ListClients(cmd.Context())
			if err != nil {
				return err
			}
			return o.emit(cmd, admin.ClientList{Clients: cs}, func(w io.Writer) {
				row(w, "ID", "NAME", "TYPE", "GRANT TYPES", "REDIRECT URIS")
				for _, c := range cs {
					typ := "confidential"
					if c.Public {
						typ = "public"
					}
					row(w, c.ID, c.Name, typ, list(c.GrantTypes), list(c.RedirectURIs))
				}
			})
		},
	}
}

func clientsGet(opts ClientFunc, o *output) *cobra.Command {
	return &cobra.Command{
		Use:   "get ID",
		Short: "Show a client",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := opts()
			if err != nil {
				return err
			}
			resp, err := c.GetClient(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return o.emit(cmd, resp, clientTable(resp))
		},
	}
}

func clientsDelete(opts ClientFunc) *cobra.Command {
	return &cobra.Command{
		Use:   "delete ID",
		Short: "Delete a client and revoke every grant issued to it",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := opts()
			if err != nil {
				return err
			}
			if err := c.DeleteClient(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Deleted client %s\n", clean(args[0]))
			return nil
		},
	}
}

func clientsRotateSecret(opts ClientFunc, o *output) *cobra.Command {
	return &cobra.Command{
		Use:   "rotate-secret ID",
		Short: "Replace a confidential client's secret (the old one stops working at once)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := opts()
			if err != nil {
				return err
			}
			resp, err := c.RotateClientSecret(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if err := o.emit(cmd, resp, clientTable(resp)); err != nil {
				return err
			}
			printSecret(cmd, o, resp.ClientSecret)
			return nil
		},
	}
}
