package auth_test

import (
	"fmt"
	"log"
	"net/http"

	"github.com/gatehouse/gatehouse/sdk/auth"
)

// A minimal protected API: tokens from one issuer, GET /orders needs the
// orders:read scope, DELETE needs orders:write and the admin role.
func Example() {
	v, err := auth.NewVerifier(auth.VerifierConfig{Issuers: []auth.IssuerConfig{{
		Issuer:   "https://login.example.com",
		Audience: "https://api.orders.example",
	}}})
	if err != nil {
		log.Fatal(err)
	}
	defer v.Close()
	mux := http.NewServeMux()
	mux.Handle("GET /orders", auth.Protect(v, auth.RequireScopes("orders:read"), http.HandlerFunc(
		func(w http.ResponseWriter, r *http.Request) {
			c, _ := auth.ClaimsFromContext(r.Context())
			fmt.Fprintf(w, "orders of %s\n", c.Subject)
		})))
	mux.Handle("DELETE /orders/{id}", auth.Protect(v, auth.All(auth.RequireScopes("orders:write"), auth.RequireAnyRole("admin")),
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })))
	// Readiness: not ready until the issuer's keys are loaded.
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if v.Ready() != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})
	_ = http.ListenAndServe // log.Fatal(http.ListenAndServe("127.0.0.1:8091", mux))
}

// Per-route rules under one authenticating middleware.
func ExampleRequire() {
	v, err := auth.NewVerifier(auth.VerifierConfig{Issuers: []auth.IssuerConfig{{
		Issuer: "https://login.example.com", Audience: "https://api.example",
	}}})
	if err != nil {
		log.Fatal(err)
	}
	defer v.Close()
	mux := http.NewServeMux()
	mux.Handle("GET /reports", auth.Require(auth.RequireAnyRole("admin", "auditor"), http.NotFoundHandler()))
	mux.Handle("GET /tenants/acme/", auth.Require(auth.RequireTenant("acme"), http.NotFoundHandler()))
	_ = auth.Middleware(v, auth.AnyAuthenticated())(mux)
}

// Symmetric mode for a standalone internal API without an IdP.
func ExampleIssuerConfig_symmetric() {
	key := []byte("0123456789abcdef0123456789abcdef") // load from a secret store: >= 32 random bytes
	v, err := auth.NewVerifier(auth.VerifierConfig{Issuers: []auth.IssuerConfig{{
		Issuer: "https://jobs.internal", Audience: "https://reports.internal", HMACKey: key,
	}}})
	if err != nil {
		log.Fatal(err)
	}
	defer v.Close()
	fmt.Println(v.Ready() == nil)
	// Output: true
}
