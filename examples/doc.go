// Package examples holds the demo of "Alice and her orders": microservices
// that are OAuth 2.0 resource servers protected with the public Gatehouse Go
// SDK (github.com/gatehouse/gatehouse/sdk/...) and nothing else from
// Gatehouse. `go run ./cmd/gatehouse dev` starts them with Gatehouse and
// prints a tour.
//
//   - orders: GET/DELETE orders; a manager reads their team's orders; pay
//     calls payments with the user's token propagated
//   - payments: verifies the token again and checks ownership itself; the
//     billing job pays invoices with its own client-credentials token
//   - billing: the batch job (no end user)
//   - nativelogin and login: a terminal login (code flow + PKCE, loopback
//     redirect) that prints an access token
//   - demo: the wiring shared by `gatehouse dev` and the commands in cmd/;
//     with a workload identity per service (sdk/workload, SVIDs from
//     Gatehouse's workload CA) the services talk mutual TLS and accept only
//     the callers the CA's policy allows, the user's token alongside
//
// Demo users: alice (user; manager of bob), bob (user), carol (admin).
package examples
