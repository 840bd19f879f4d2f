// Package workload gives services a SPIFFE workload identity and mutual TLS
// that is secure by default: every connection is verified against the
// current trust bundle and then authorized, and every request is checked
// against the central "who may call whom" policy (docs/workload.md).
//
// An identity comes from a Source: CASource talks to Gatehouse's CA (join
// token or client credentials first, then renewal over mutual TLS), and
// NewWorkloadAPISource reads the SPIFFE Workload API of a SPIRE agent. Both
// rotate the SVID and the bundle by themselves; the TLS configurations
// below pick up the new SVID on the next handshake.
//
// # Servers
//
// The authorizer is mandatory: ServerTLSConfig and ClientTLSConfig refuse
// a nil one. AuthorizePolicy accepts the connections the policy allows;
// Middleware then checks each request's method and path:
//
//	src, err := workload.NewCASource(ctx, workload.CAConfig{
//		URL:             "https://ca.gatehouse.internal:8443",
//		TrustDomain:     spiffeid.RequireTrustDomainFromString("gatehouse.local"),
//		RootFingerprint: rootSHA256Hex,
//		JoinToken:       os.Getenv("GATEHOUSE_JOIN_TOKEN"),
//	})
//	if err != nil { ... }
//	defer src.Close()
//	self := spiffeid.RequireFromString("spiffe://gatehouse.local/payments")
//	tlsConf, err := workload.ServerTLSConfig(src, workload.AuthorizePolicy(src, self))
//	if err != nil { ... }
//	srv := &http.Server{
//		Addr:      ":8443",
//		TLSConfig: tlsConf,
//		Handler: workload.Middleware(src, self, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
//			caller, _ := workload.PeerID(r.Context()) // spiffe://gatehouse.local/orders
//			...
//		})),
//	}
//	err = srv.ListenAndServeTLS("", "")
//
// # Clients
//
// A client names the server it expects:
//
//	tlsConf, err := workload.ClientTLSConfig(src,
//		workload.AuthorizeID(spiffeid.RequireFromString("spiffe://gatehouse.local/payments")))
//	if err != nil { ... }
//	client := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsConf}}
//	resp, err := client.Post("https://payments.internal:8443/payments", "application/json", body)
//
// # Verification
//
// Both configurations verify the peer in tls.Config.VerifyConnection, which
// Go runs on every connection, resumed TLS sessions included (so a policy
// change applies to the next connection even when it resumes a session):
// the chain must verify with go-spiffe's x509svid.Verify against the
// source's bundle for the ID's trust domain (wrong CA, expired, not yet
// valid, a leaf marked CA or with several URI SANs are refused), the SPIFFE
// ID must have a path, the leaf must carry the digitalSignature key usage
// and the clientAuth (peer is a client) or serverAuth (peer is a server)
// extended key usage, and the authorizer must accept the ID. This is why
// ClientTLSConfig sets InsecureSkipVerify: SPIFFE IDs are not host names,
// and the real verification is in VerifyConnection. TLS 1.2 is the minimum;
// the server requires a client certificate.
//
// # Policy
//
// Policy is the same type that validates ca.policy in the server's
// configuration (NewPolicy) and that the SDK decodes from GET /v1/policy
// (DecodePolicy, strict JSON whose version must match its rules). Default
// deny; a matching deny rule wins over any allow; IDs match exactly or as a
// set within one trust domain ("spiffe://td/prefix/*", "spiffe://td/*");
// paths match exactly or as "/prefix/*"; a non-canonical request path
// ("//", "." or "..", an encoded "/", "\" or ".", a needless escape) is
// denied before any rule is read. A nil *Policy denies everything.
//
// The package imports no Gatehouse server code; its dependencies are the
// standard library, go-spiffe (with gRPC and protobuf for the Workload
// API), golang.org/x/oauth2 and sdk/jwtx.
package workload
