// Package auth is Gatehouse's SDK for resource servers: the services behind
// the identity provider that receive OAuth 2.0 access tokens.
//
// It validates tokens locally (no call to the IdP per request), puts the
// caller's claims in the request context, and checks coarse-grained rules.
// The secure path is the short one:
//
//	v, err := auth.NewVerifier(auth.VerifierConfig{Issuers: []auth.IssuerConfig{{
//		Issuer:   "https://login.example.com",  // exact "iss"; keys from its discovery/JWKS
//		Audience: "https://api.orders.example", // this API; "aud" must contain it
//	}}})
//	if err != nil { ... }
//	defer v.Close()
//	mux := http.NewServeMux()
//	mux.Handle("GET /orders", auth.Protect(v, auth.RequireScopes("orders:read"), listOrders))
//	// in listOrders: c, _ := auth.ClaimsFromContext(r.Context()); c.Subject, c.Roles, c.Tenant ...
//
// # What is checked
//
// The Verifier accepts only compact JWS access tokens (RFC 9068, typ
// at+jwt) signed by a key from the configured issuer's JWKS with an
// algorithm from that issuer's allow-list (never the token's say-so); iss
// must match exactly, aud must contain the API, exp is required, and
// exp/nbf/iat are checked with a small leeway. Parsing is strict: canonical
// base64url, no duplicate or case-variant JSON members, a size cap before
// decoding, and no jwk/jku/x5u/x5c/crit headers. Every rule of the security
// checklist's JWT section has a named test.
//
// Keys are fetched from discovery, refreshed in the background as the
// JWKS response's Cache-Control asks (within bounds), refetched at most once
// per interval when a token names an unknown kid, and kept when a refresh
// fails; an empty key set never replaces a good one. With
// IssuerConfig.CacheFile the last good set is also kept on disk, so a
// restarted service validates tokens while the IdP is down. Until keys are
// loaded, Ready reports an error and every token is refused.
//
// Verified tokens are cached by their exact string, in a bounded cache,
// never past exp, and dropped when the issuer withdraws a key.
//
// # Secure by default
//
// Middleware, Protect and the gRPC interceptors (package grpcauth) take a
// Rule as a required argument: there is no "just authenticate" default.
// Errors follow RFC 6750 (401 invalid_token, 403 insufficient_scope with
// WWW-Authenticate). Tokens are read only from the Authorization header.
//
// # Other pieces
//
//   - Introspector: RFC 7662 introspection with a bounded cache, for services
//     that must see revocation at once.
//   - Symmetric mode (IssuerConfig.HMACKey): HS256 with a configured key of at
//     least 32 bytes, for standalone internal APIs without an IdP.
//   - NewPropagatingTransport: forwards the caller's token to listed origins.
//   - NewClientCredentials and NewServiceTransport: the service's own token
//     (client credentials), cached and refreshed early.
//
// The package imports no Gatehouse server code; its dependencies are the
// standard library, golang.org/x/oauth2, golang.org/x/sync and go-jose.
package auth
