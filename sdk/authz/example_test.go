package authz_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/gatehouse/gatehouse/sdk/auth"
	"github.com/gatehouse/gatehouse/sdk/authz"
)

// fakeGatehouse stands in for the IdP's token endpoint and the
// authorization service: it allows "read" and denies everything else.
func fakeGatehouse() *httptest.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /oauth/token", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": "svc-token", "token_type": "Bearer", "expires_in": 300})
	})
	mux.HandleFunc("POST /authorize", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer svc-token" {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		var req struct {
			Action string `json:"action"`
		}
		_ = json.NewDecoder(r.Body).Decode(&req)
		allow := req.Action == "read"
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"allow": allow, "reason": "policy says " + fmt.Sprint(allow),
			"decision_id": "dec_1", "policy_version": "3f2a9c0d5e6b7a81", "revision": "57"})
	})
	return httptest.NewServer(mux)
}

func Example() {
	srv := fakeGatehouse() // in production: your IdP and authz URLs
	defer srv.Close()

	// The service's own credentials, for the authz audience.
	ts, err := auth.NewClientCredentials(auth.ClientCredentialsConfig{
		TokenURL: srv.URL + "/oauth/token", ClientID: "orders", ClientSecret: "s3cret",
		Audience: []string{"gatehouse-authz"}, Scopes: []string{"authz:check"},
	})
	if err != nil {
		panic(err)
	}
	tr, err := auth.NewServiceTransport(nil, ts, srv.URL)
	if err != nil {
		panic(err)
	}
	az, err := authz.New(authz.Config{URL: srv.URL, HTTPClient: &http.Client{Transport: tr}, Timeout: time.Second})
	if err != nil {
		panic(err)
	}

	ctx := context.Background()
	for _, action := range []string{"read", "delete", "read"} {
		d := az.Authorize(ctx, authz.Request{
			Principal: authz.Principal{Token: "caller-access-token"},
			Action:    action,
			Resource:  authz.Resource{Type: "order", ID: "o-1001", Tenant: "acme"},
		})
		fmt.Printf("%s: allow=%v reason=%q cached=%v\n", action, d.Allow, d.Reason, d.Cached)
	}

	srv.Close() // the service goes away: decisions fail closed
	d := az.Authorize(ctx, authz.Request{Principal: authz.Principal{Token: "caller-access-token"},
		Action: "list", Resource: authz.Resource{Type: "order", ID: "o-1001"}})
	fmt.Printf("list: allow=%v reason=%q error=%v\n", d.Allow, d.Reason, d.Err != nil)
	// Output:
	// read: allow=true reason="policy says true" cached=false
	// delete: allow=false reason="policy says false" cached=false
	// read: allow=true reason="policy says true" cached=true
	// list: allow=false reason="authorization service unavailable" error=true
}
