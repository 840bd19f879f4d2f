package admincmd

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/gatehouse/gatehouse/internal/admin"
)

func usersCommand(opts ClientFunc) *cobra.Command {
	o := &output{}
	cmd := &cobra.Command{
		Use:   "users",
		Short: "Manage users",
	}
	o.register(cmd)
	cmd.AddCommand(usersCreate(opts, o), usersList(opts, o), usersGet(opts, o),
		usersSetDisabled(opts, o, true), usersSetDisabled(opts, o, false),
		usersSetPassword(opts), usersDelete(opts))
	return cmd
}

func userTable(u admin.UserResponse) func(io.Writer) {
	return func(w io.Writer) {
		row(w, "ID", u.ID)
		row(w, "Username", u.Username)
		row(w, "Email", orDash(u.Email))
		row(w, "Email verified", yesNo(u.EmailVerified))
		row(w, "Name", orDash(u.Name))
		row(w, "Password set", yesNo(u.HasPassword))
		row(w, "Roles", list(u.Roles))
		row(w, "Groups", list(u.Groups))
		row(w, "Tenant", orDash(u.Tenant))
		row(w, "Disabled", yesNo(u.Disabled))
		row(w, "Created", ts(u.CreatedAt))
		row(w, "Updated", ts(u.UpdatedAt))
	}
}

func usersCreate(opts ClientFunc, o *output) *cobra.Command {
	var (
		req     admin.UserRequest
		pwStdin bool
	)
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Create a user",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if pwStdin {
				pw, err := readPassword(cmd.InOrStdin())
				if err != nil {
					return err
				}
				req.Password = pw
			}
			c, err := opts()
			if err != nil {
				return err
			}
			resp, err := c.CreateUser(cmd.Context(), req)
			if err != nil {
				return err
			}
			return o.emit(cmd, resp, userTable(resp))
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.Username, "username", "", "username (lower-cased; required)")
	f.StringVar(&req.Email, "email", "", "email address")
	f.BoolVar(&req.EmailVerified, "email-verified", false, "mark the email address verified")
	f.StringVar(&req.Name, "name", "", "display name")
	f.BoolVar(&pwStdin, "password-stdin", false, "read the password from the first line of standard input")
	f.StringArrayVar(&req.Roles, "role", nil, "role (repeatable)")
	f.StringArrayVar(&req.Groups, "group", nil, "group (repeatable)")
	f.StringVar(&req.Tenant, "tenant", "", "tenant")
	_ = cmd.MarkFlagRequired("username")
	return cmd
}

func usersList(opts ClientFunc, o *output) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List users",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := opts()
			if err != nil {
				return err
			}
			us, err := c.ListUsers(cmd.Context())
			if err != nil {
				return err
			}
			return o.emit(cmd, admin.UserList{Users: us}, func(w io.Writer) {
				row(w, "ID", "USERNAME", "EMAIL", "ROLES", "TENANT", "DISABLED")
				for _, u := range us {
					row(w, u.ID, u.Username, orDash(u.Email), list(u.Roles), orDash(u.Tenant), yesNo(u.Disabled))
				}
			})
		},
	}
}

func usersGet(opts ClientFunc, o *output) *cobra.Command {
	return &cobra.Command{
		Use:   "get ID",
		Short: "Show a user",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := opts()
			if err != nil {
				return err
			}
			u, err := c.GetUser(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return o.emit(cmd, u, userTable(u))
		},
	}
}

// usersSetDisabled builds "disable" (which ends the user's sessions and
// refresh tokens) and "enable".
func usersSetDisabled(opts ClientFunc, o *output, disabled bool) *cobra.Command {
	use, short := "enable ID", "Enable a user"
	if disabled {
		use, short = "disable ID", "Disable a user, ending their sessions and refresh tokens"
	}
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := opts()
			if err != nil {
				return err
			}
			u, err := c.UpdateUser(cmd.Context(), args[0], admin.UserPatch{Disabled: &disabled})
			if err != nil {
				return err
			}
			return o.emit(cmd, u, userTable(u))
		},
	}
}

func usersSetPassword(opts ClientFunc) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "set-password ID",
		Short: "Set a user's password from the first line of standard input (ends their sessions)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			pw, err := readPassword(cmd.InOrStdin())
			if err != nil {
				return err
			}
			c, err := opts()
			if err != nil {
				return err
			}
			if err := c.SetPassword(cmd.Context(), args[0], pw); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Password set for user %s\n", clean(args[0]))
			return nil
		},
	}
	// Accepted for symmetry with "users create"; the password is always
	// read from standard input.
	cmd.Flags().Bool("password-stdin", true, "read the password from standard input (always on)")
	return cmd
}

func usersDelete(opts ClientFunc) *cobra.Command {
	return &cobra.Command{
		Use:   "delete ID",
		Short: "Delete a user with their sessions and grants",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := opts()
			if err != nil {
				return err
			}
			if err := c.DeleteUser(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Deleted user %s\n", clean(args[0]))
			return nil
		},
	}
}
