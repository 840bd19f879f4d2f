// Package edge holds the pure, attacker-facing request-hygiene functions of
// the Gatehouse API gateway: path normalization (GW-03), identity-header
// scrubbing (GW-01), hop-by-hop header removal that cannot be abused to
// delete gateway-set headers (GW-05), client-IP resolution that trusts
// forwarding headers only from configured proxies (GW-02), strict bearer
// token extraction (GW-04, JWT-F01) and Host header normalization.
//
// Every function here is pure (no I/O, no global mutable state), does
// bounded work on hostile input, and fails closed: when input is ambiguous
// it is rejected rather than guessed at.
//
// Routing contract (GW-03): the gateway calls NormalizePath exactly once,
// matches routes and authorizes against its result, and sends that same
// string to the upstream. Matching is an exact, case-sensitive byte prefix
// match (HasPathPrefix): "/ADMIN" is a different path from "/admin" and
// does not match an "/admin" rule. Upstreams that treat paths
// case-insensitively, or that interpret ';' path parameters (e.g. Java
// servlet containers treat "/admin;x" as "/admin"), must be protected by
// rules written with that in mind (default-deny).
package edge
