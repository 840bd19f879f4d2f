package adminclient_test

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/admin"
	"github.com/gatehouse/gatehouse/internal/admin/admintest"
	"github.com/gatehouse/gatehouse/internal/adminclient"
	"github.com/gatehouse/gatehouse/internal/storage"
)

func TestEndToEnd(t *testing.T) {
	srv := admintest.NewServer(t)
	c := adminclient.New(srv.URL+"/", admintest.Token, nil)
	ctx := context.Background()

	// Clients.
	cr, err := c.CreateClient(ctx, admin.ClientRequest{
		ID: "web", Name: "Web", RedirectURIs: []string{"https://app.example.com/cb"}, Scopes: []string{"openid"},
	})
	if err != nil {
		t.Fatal(err)
	}
	stored, _ := srv.Store.Client("web")
	if !srv.Secrets.Verify(cr.ClientSecret, stored.SecretHash) {
		t.Fatal("returned secret does not verify")
	}
	got, err := c.GetClient(ctx, "web")
	if err != nil || got.Name != "Web" || got.ClientSecret != "" {
		t.Fatalf("GetClient = %+v, %v", got, err)
	}
	name := "Web app"
	if up, err := c.UpdateClient(ctx, "web", admin.ClientPatch{Name: &name}); err != nil || up.Name != name {
		t.Fatalf("UpdateClient = %+v, %v", up, err)
	}
	list, err := c.ListClients(ctx)
	if err != nil || len(list) != 1 {
		t.Fatalf("ListClients = %+v, %v", list, err)
	}
	rot, err := c.RotateClientSecret(ctx, "web")
	if err != nil || rot.ClientSecret == "" || rot.ClientSecret == cr.ClientSecret {
		t.Fatalf("RotateClientSecret = %+v, %v", rot, err)
	}
	if err := c.DeleteClient(ctx, "web"); err != nil {
		t.Fatal(err)
	}

	// Users.
	u, err := c.CreateUser(ctx, admin.UserRequest{Username: "Alice", Password: "long enough password", Roles: []string{"admin"}})
	if err != nil || u.Username != "alice" || !u.HasPassword {
		t.Fatalf("CreateUser = %+v, %v", u, err)
	}
	disabled := true
	if up, err := c.UpdateUser(ctx, u.ID, admin.UserPatch{Disabled: &disabled}); err != nil || !up.Disabled {
		t.Fatalf("UpdateUser = %+v, %v", up, err)
	}
	if srv.Store.EndedFor(u.ID) != 1 {
		t.Error("disabling did not end sessions")
	}
	if err := c.SetPassword(ctx, u.ID, "another long password"); err != nil {
		t.Fatal(err)
	}
	if g, err := c.GetUser(ctx, u.ID); err != nil || g.ID != u.ID {
		t.Fatalf("GetUser = %+v, %v", g, err)
	}
	if us, err := c.ListUsers(ctx); err != nil || len(us) != 1 {
		t.Fatalf("ListUsers = %+v, %v", us, err)
	}
	if err := c.DeleteUser(ctx, u.ID); err != nil {
		t.Fatal(err)
	}

	// Keys.
	k, err := c.RotateKey(ctx)
	if err != nil || k.ID == "" {
		t.Fatalf("RotateKey = %+v, %v", k, err)
	}
	if err := c.RevokeKey(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	ks, err := c.ListKeys(ctx)
	if err != nil || len(ks) != 1 || ks[0].State != "revoked" {
		t.Fatalf("ListKeys = %+v, %v", ks, err)
	}

	// Workload identity: a client's SPIFFE ID and join tokens.
	wl, err := c.CreateClient(ctx, admin.ClientRequest{
		ID: "orders", Name: "Orders", GrantTypes: []string{"client_credentials"}, SPIFFEID: "spiffe://gatehouse.local/orders",
	})
	if err != nil || wl.SPIFFEID != "spiffe://gatehouse.local/orders" {
		t.Fatalf("CreateClient with spiffe_id = %+v, %v", wl, err)
	}
	id := "spiffe://gatehouse.local/orders/v2"
	if up, err := c.UpdateClient(ctx, "orders", admin.ClientPatch{SPIFFEID: &id}); err != nil || up.SPIFFEID != id {
		t.Fatalf("UpdateClient spiffe_id = %+v, %v", up, err)
	}
	jt, err := c.CreateJoinToken(ctx, admin.JoinTokenRequest{SPIFFEID: id, TTL: "15m"})
	if err != nil || jt.Token == "" || jt.SPIFFEID != id || !jt.ExpiresAt.Equal(admintest.Now.Add(15*time.Minute)) {
		t.Fatalf("CreateJoinToken = %+v, %v", jt, err)
	}
	toks := srv.Store.JoinTokens()
	if len(toks) != 1 || toks[0].Hash != hex.EncodeToString(srv.Secrets.Sum(jt.Token)) {
		t.Fatalf("stored join tokens = %+v", toks)
	}
}

func TestErrors(t *testing.T) {
	srv := admintest.NewServer(t)
	ctx := context.Background()
	c := adminclient.New(srv.URL, admintest.Token, nil)

	tests := []struct {
		name   string
		call   func() error
		status int
		code   string
		desc   string
	}{
		{"not-found", func() error { _, err := c.GetClient(ctx, "nope"); return err }, 404, "not_found", ""},
		{"validation", func() error {
			_, err := c.CreateClient(ctx, admin.ClientRequest{Name: "x", RedirectURIs: []string{"https://a.example/#f"}, GrantTypes: []string{"password", "authorization_code"}})
			return err
		}, 400, "invalid_request", `"password" is not supported`},
		{"wrong-token", func() error {
			_, err := adminclient.New(srv.URL, "wrong", nil).ListKeys(ctx)
			return err
		}, 401, "unauthorized", ""},
		{"path-escaping", func() error { _, err := c.GetUser(ctx, "../clients"); return err }, 404, "not_found", ""},
		{"MT-01/join-token-no-path", func() error {
			_, err := c.CreateJoinToken(ctx, admin.JoinTokenRequest{SPIFFEID: "spiffe://gatehouse.local"})
			return err
		}, 400, "invalid_request", "must have a path"},
		{"MT-04/join-token-ttl-too-long", func() error {
			_, err := c.CreateJoinToken(ctx, admin.JoinTokenRequest{SPIFFEID: "spiffe://gatehouse.local/a", TTL: "48h"})
			return err
		}, 400, "invalid_request", "ttl"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			var e *adminclient.Error
			if !errors.As(err, &e) {
				t.Fatalf("err = %v, want *adminclient.Error", err)
			}
			if e.Status != tc.status || e.Code != tc.code || !strings.Contains(e.Description, tc.desc) {
				t.Errorf("err = %+v", e)
			}
			if !adminclient.IsStatus(err, tc.status) {
				t.Error("IsStatus false")
			}
		})
	}

	t.Run("RL-04/unavailable", func(t *testing.T) {
		srv.Store.SetFail(fmt.Errorf("db down: %w", storage.ErrUnavailable))
		defer srv.Store.SetFail(nil)
		_, err := c.ListUsers(ctx)
		if !adminclient.IsStatus(err, 503) {
			t.Fatalf("err = %v", err)
		}
	})
}

// TestTokenOnlyOverSafeTransport checks that the admin token is never sent
// over plain http to a non-loopback host, nor to malformed base URLs.
func TestTokenOnlyOverSafeTransport(t *testing.T) {
	var hits atomic.Int32
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer ts.Close()
	// Route every dial to the test server, whatever the URL says.
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", ts.Listener.Addr().String())
	}}
	hc := &http.Client{Transport: tr}
	for _, base := range []string{
		"http://gatehouse.internal:9000",
		"http://10.0.0.1",
		"ftp://127.0.0.1",
		"http://user:pw@127.0.0.1",
		"127.0.0.1:9000",
		"http://127.0.0.1?x=1",
	} {
		t.Run(base, func(t *testing.T) {
			_, err := adminclient.New(base, admintest.Token, hc).ListKeys(context.Background())
			if err == nil {
				t.Fatal("call succeeded")
			}
		})
	}
	if _, err := adminclient.New("https://127.0.0.1", "", hc).ListKeys(context.Background()); err == nil {
		t.Error("empty token accepted")
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("%d requests reached the network", n)
	}
}
