// Command login signs a user in to the Gatehouse demo from the terminal and
// prints their access token, so a shell can keep it:
//
//	ALICE=$(go run ./examples/login)
//
// It is a native app (RFC 8252): the public client demo-cli, the
// authorization code flow with PKCE, and a one-shot loopback redirect on
// 127.0.0.1 with a random port. The login URL is printed to stderr; open it,
// sign in, and the token (for the orders and payments APIs) is printed to
// stdout. The login page is shown every time (prompt=login), so one browser
// can sign in as alice, then bob, then carol.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"

	"github.com/gatehouse/gatehouse/examples/nativelogin"
)

func main() {
	issuer := flag.String("issuer", "http://localhost:8080", "Gatehouse issuer URL")
	clientID := flag.String("client-id", "demo-cli", "public client id")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	tok, err := nativelogin.Login(ctx, nativelogin.Config{
		Issuer:     *issuer,
		ClientID:   *clientID,
		Scopes:     []string{"openid", "orders:read", "orders:write", "payments:write"},
		Resources:  []string{"https://api.orders.example", "https://api.payments.example"},
		ForceLogin: true,
		OpenURL: func(u string) error {
			_, err := fmt.Fprintf(os.Stderr, "Open this URL in a browser and sign in:\n\n  %s\n\n", u)
			return err
		},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "login:", err)
		os.Exit(1)
	}
	fmt.Fprintln(os.Stderr, "Signed in; the access token is on stdout.")
	fmt.Println(tok.AccessToken)
}
