// Package idp is Gatehouse's OAuth 2.0 / OpenID Connect authorization server.
//
// The protocol layer (request parsing, client-credential extraction, routing
// of the token, introspection, revocation and userinfo endpoints, error
// encoding) is github.com/zitadel/oidc/v3/pkg/op, used through its op.Server
// interface: every endpoint's logic, all token, grant and session state, and
// the storage schema stay in Gatehouse's hands. Where op is more permissive
// than Gatehouse's security checklist, this package overrides it:
//
//   - /authorize, the login, consent and logout pages are served here, so a
//     bad client_id or redirect_uri yields an error page, never a redirect, and
//     every authorization response carries iss (RFC 9207);
//   - redirect URIs are compared as exact strings (loopback: port may vary);
//   - PKCE is S256 only and required by default; a code_verifier without a
//     challenge is rejected;
//   - token, introspection and revocation requests must be POST forms without
//     a query string or repeated parameters, and answer Cache-Control: no-store;
//   - CORS is not enabled on any endpoint.
//
// One file per concern: authorize.go (authorization endpoint), login.go and
// session.go (pages, IdP sessions, CSRF), grants.go (token endpoint grants),
// tokens.go (minting), introspect.go (introspection, revocation, userinfo),
// logout.go (RP-initiated logout), redirect.go (redirect URI matching).
package idp
