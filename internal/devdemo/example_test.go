package devdemo_test

import (
	"log/slog"
	"net/http"
	"os"

	"github.com/gatehouse/gatehouse/internal/devdemo"
)

// The demo app as `gatehouse dev` runs it next to the IdP: open
// http://127.0.0.1:8090/ and click "Sign in with Gatehouse".
func ExampleNew() {
	app := devdemo.New(devdemo.Config{
		Issuer:       "http://localhost:8080",
		ClientID:     "gatehouse-demo",
		ClientSecret: "dev-only-secret",
		RedirectURL:  "http://127.0.0.1:8090/callback",
	}, slog.New(slog.NewTextHandler(os.Stderr, nil)))
	srv := &http.Server{Addr: "127.0.0.1:8090", Handler: app.Handler()}
	_ = srv // srv.ListenAndServe() in the real command
}
