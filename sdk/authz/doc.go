// Package authz is the client services use to ask Gatehouse's authorization
// service "may this principal do this action on this resource?" (the
// delegate pattern of docs/authz.md) and to replicate relationships and
// entity attributes into it.
//
// The calls carry the service's own credentials: build the HTTP client with
// sdk/auth's client-credentials token source (audience gatehouse-authz,
// scope authz:check) and NewServiceTransport, restricted to the
// authorization service's origin:
//
//	ts, err := auth.NewClientCredentials(auth.ClientCredentialsConfig{
//		TokenURL: "https://login.example.com/oauth/token", ClientID: "orders", ClientSecret: secret,
//		Audience: []string{"gatehouse-authz"}, Scopes: []string{"authz:check"},
//	})
//	if err != nil { ... }
//	tr, err := auth.NewServiceTransport(nil, ts, "https://authz.example.com")
//	if err != nil { ... }
//	az, err := authz.New(authz.Config{URL: "https://authz.example.com", HTTPClient: &http.Client{Transport: tr}})
//	if err != nil { ... }
//	d := az.Authorize(ctx, authz.Request{
//		Principal: authz.Principal{Token: callerToken}, // or the claims: Type, ID, Roles, Tenant, Attrs
//		Action:    "delete",
//		Resource:  authz.Resource{Type: "order", ID: "o-1001", Tenant: "acme"},
//	})
//	if !d.Allow { http.Error(w, d.Reason, http.StatusForbidden); return }
//
// # Fail closed
//
// Authorize and AuthorizeBatch return a Decision, never an error: every
// failure — transport error, timeout (Config.Timeout, default 250ms), a
// status other than 200, a redirect (never followed), an answer larger than
// 1 MiB, not one JSON object, with a duplicate, case-variant or unknown
// member, without "allow" or with an "allow" that is not a JSON boolean —
// is a deny with Decision.Err set and Reason UnavailableReason. There is no
// option to fail open.
//
// # Cache
//
// Decisions are cached for Config.CacheTTL (default 1s, at most 10s: the
// AZ-05 freshness bound), in a bounded map (Config.CacheSize, default
// 10000). The key is the SHA-256 of the canonical JSON of everything that
// decides: the principal (its token included, so only the hash is kept),
// the action, the resource with its attributes, and the context. Allows and
// denies are cached; failures never are. A request with AtLeastAsFresh (a
// revision from WriteRelationships or PutEntity) bypasses the cache, so a
// service sees its own writes at once. Concurrent identical requests share
// one call.
//
// # Batches and writes
//
// AuthorizeBatch asks for many checks of one principal: cached checks are
// answered locally, the rest go in POST /authorize/batch calls of at most
// 100 checks, and a failed call denies exactly its checks. WriteRelationships
// (touch or delete tuples, one atomic call of at most 1000) and PutEntity
// (attributes with the owner's version) return the revision token to pass as
// AtLeastAsFresh.
//
// The package imports no Gatehouse server code; its dependencies are the
// standard library, golang.org/x/sync and sdk/jwtx (strict JSON checks).
package authz
