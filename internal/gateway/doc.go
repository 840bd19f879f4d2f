// Package gateway is Gatehouse's API gateway: the authenticated single entry
// point in front of the services, and the same decisions served as an
// external authorizer for nginx auth_request, Envoy ext_authz, Traefik
// ForwardAuth and Caddy forward_auth.
//
// Every request goes through one pipeline (decide), in this order:
//
//  1. The path is normalized once (package edge, GW-03); a path that cannot
//     be normalized is refused. Routing, authorization and the upstream all
//     see the normalized path.
//  2. The route is chosen by host, path prefix (whole segments) and method.
//  3. Rate limits keyed by source address run first (trusted proxies only,
//     GW-02), so floods of bad tokens are limited too.
//  4. The bearer token is read from exactly one Authorization header, never
//     from the query or a form body (GW-04), and verified by the route's
//     authenticator: the SDK's Verifier (JWT) or Introspector (opaque), one
//     per audience. The only cached result is the verified token, keyed by
//     the exact token string inside one audience's authenticator and never
//     past exp; the route's rules run on every request (GW-06).
//  5. The route's rules: scopes (all / any), roles, end user, and the tenant
//     named by the host or path, which must equal the token's tenant.
//  6. Rate limits keyed by subject, client or route.
//
// On allow, the proxy removes every inbound identity header and its variants
// (GW-01), sets X-Auth-* from the verified claims after hop-by-hop removal
// (GW-05), forwards, strips or exchanges the token (RFC 8693, cached per
// token and audience), and proxies with httputil.ReverseProxy (Rewrite) over
// a pooled transport per upstream TLS setting.
//
// Routes are swapped atomically by Reload; requests in flight keep the route
// they started with, and a configuration that does not compile never
// replaces the running one.
package gateway
