package auth_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"

	"github.com/gatehouse/gatehouse/sdk/auth"
)

// exampleClientEcho is a downstream API that answers with the Authorization
// header it received.
func exampleClientEcho() *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, r.Header.Get("Authorization"))
	}))
}

func exampleClientGet(ctx context.Context, client *http.Client, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// A service forwards its caller's token to the inventory API, and to no
// other origin.
func ExampleNewPropagatingTransport() {
	inventory := exampleClientEcho()
	defer inventory.Close()
	elsewhere := exampleClientEcho()
	defer elsewhere.Close()

	rt, err := auth.NewPropagatingTransport(nil, inventory.URL)
	if err != nil {
		fmt.Println(err)
		return
	}
	client := &http.Client{Transport: rt}

	// In a handler behind auth.Protect, use r.Context(): it carries the
	// caller's claims, including the raw token.
	ctx := auth.ContextWithClaims(context.Background(), &auth.Claims{Subject: "alice", Token: "alice-token"})

	got, err := exampleClientGet(ctx, client, inventory.URL+"/items")
	fmt.Println("inventory received:", got, err)

	_, err = exampleClientGet(ctx, client, elsewhere.URL+"/steal")
	fmt.Println("other origin refused:", errors.Is(err, auth.ErrOriginNotAllowed))

	_, err = exampleClientGet(context.Background(), client, inventory.URL+"/items")
	fmt.Println("no caller token refused:", errors.Is(err, auth.ErrNoToken))
	// Output:
	// inventory received: Bearer alice-token <nil>
	// other origin refused: true
	// no caller token refused: true
}

// A service calls another API with its own token (client credentials
// grant). The token is fetched once and reused until shortly before it
// expires.
func ExampleNewClientCredentials() {
	var issued atomic.Int64
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		issued.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"access_token":"svc-token","token_type":"Bearer","expires_in":300}`)
	}))
	defer idp.Close()
	api := exampleClientEcho()
	defer api.Close()

	ts, err := auth.NewClientCredentials(auth.ClientCredentialsConfig{
		TokenURL:     idp.URL + "/oauth2/token",
		ClientID:     "orders-service",
		ClientSecret: "from-a-secret-store",
		Scopes:       []string{"inventory:read"},
		Audience:     []string{"https://inventory.example"},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	rt, err := auth.NewServiceTransport(nil, ts, api.URL)
	if err != nil {
		fmt.Println(err)
		return
	}
	client := &http.Client{Transport: rt}
	for range 3 {
		got, err := exampleClientGet(context.Background(), client, api.URL+"/items")
		fmt.Println("api received:", got, err)
	}
	fmt.Println("token requests:", issued.Load())
	// Output:
	// api received: Bearer svc-token <nil>
	// api received: Bearer svc-token <nil>
	// api received: Bearer svc-token <nil>
	// token requests: 1
}
