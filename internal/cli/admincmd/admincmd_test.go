package admincmd

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/gatehouse/gatehouse/internal/admin"
	"github.com/gatehouse/gatehouse/internal/admin/admintest"
	"github.com/gatehouse/gatehouse/internal/adminclient"
)

type result struct {
	stdout, stderr string
	err            error
}

// run executes one command line against srv with a fresh command tree.
func run(t *testing.T, srv *admintest.Server, stdin string, args ...string) result {
	t.Helper()
	root := &cobra.Command{Use: "gatehouse", SilenceUsage: true, SilenceErrors: true}
	root.AddCommand(Commands(func() (*adminclient.Client, error) {
		return adminclient.New(srv.URL, admintest.Token, nil), nil
	})...)
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetIn(strings.NewReader(stdin))
	root.SetArgs(args)
	err := root.Execute()
	return result{out.String(), errOut.String(), err}
}

func mustRun(t *testing.T, srv *admintest.Server, stdin string, args ...string) result {
	t.Helper()
	r := run(t, srv, stdin, args...)
	if r.err != nil {
		t.Fatalf("%v: %v\nstdout: %s\nstderr: %s", args, r.err, r.stdout, r.stderr)
	}
	return r
}

func TestClients(t *testing.T) {
	srv := admintest.NewServer(t)
	r := mustRun(t, srv, "", "clients", "create", "--id", "web", "--name", "Web",
		"--redirect-uri", "https://app.example.com/cb", "--redirect-uri", "http://127.0.0.1:8080/cb",
		"--scope", "openid", "--scope", "profile", "--audience", "api")
	stored, ok := srv.Store.Client("web")
	if !ok {
		t.Fatal("client not stored")
	}
	var secret string
	for _, line := range strings.Split(r.stdout, "\n") {
		if s, ok := strings.CutPrefix(line, "Client secret: "); ok {
			secret = s
		}
	}
	if !srv.Secrets.Verify(secret, stored.SecretHash) {
		t.Fatalf("printed secret %q does not verify; stdout:\n%s", secret, r.stdout)
	}
	if strings.Count(r.stdout, secret) != 1 {
		t.Error("secret printed more than once")
	}
	if !strings.Contains(r.stderr, "cannot be shown again") {
		t.Errorf("missing once-only note; stderr: %s", r.stderr)
	}
	for _, want := range []string{"web", "Web", "confidential", "https://app.example.com/cb,http://127.0.0.1:8080/cb", "openid,profile"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("create output lacks %q:\n%s", want, r.stdout)
		}
	}

	r = mustRun(t, srv, "", "clients", "list")
	if !strings.Contains(r.stdout, "ID") || !strings.Contains(r.stdout, "web") || strings.Contains(r.stdout, secret) {
		t.Errorf("list output:\n%s", r.stdout)
	}

	r = mustRun(t, srv, "", "clients", "get", "web", "--json")
	var got admin.ClientResponse
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || got.ID != "web" || got.ClientSecret != "" {
		t.Fatalf("get --json = %s (%v)", r.stdout, err)
	}

	r = mustRun(t, srv, "", "clients", "rotate-secret", "web", "--json")
	var rot admin.ClientResponse
	if err := json.Unmarshal([]byte(r.stdout), &rot); err != nil {
		t.Fatal(err)
	}
	stored, _ = srv.Store.Client("web")
	if !srv.Secrets.Verify(rot.ClientSecret, stored.SecretHash) || rot.ClientSecret == secret {
		t.Error("rotated secret in JSON does not verify")
	}

	t.Run("OA-G/password-grant-refused", func(t *testing.T) {
		r := run(t, srv, "", "clients", "create", "--name", "x", "--grant-type", "password")
		if !adminclient.IsStatus(r.err, 400) || !strings.Contains(r.err.Error(), "not supported") {
			t.Errorf("err = %v", r.err)
		}
	})
	t.Run("public-no-secret", func(t *testing.T) {
		r := mustRun(t, srv, "", "clients", "create", "--name", "SPA", "--public", "--redirect-uri", "https://spa.example.com/cb")
		if strings.Contains(r.stdout, "Client secret") || strings.Contains(r.stderr, "cannot be shown") || !strings.Contains(r.stdout, "public") {
			t.Errorf("public client output:\n%s\n%s", r.stdout, r.stderr)
		}
	})
	t.Run("name-required", func(t *testing.T) {
		if r := run(t, srv, "", "clients", "create"); r.err == nil {
			t.Error("create without --name succeeded")
		}
	})

	r = mustRun(t, srv, "", "clients", "delete", "web")
	if !strings.Contains(r.stdout, "Deleted client web") {
		t.Errorf("delete output: %s", r.stdout)
	}
	if r := run(t, srv, "", "clients", "get", "web"); !adminclient.IsStatus(r.err, 404) {
		t.Errorf("get after delete: %v", r.err)
	}
}

func TestUsers(t *testing.T) {
	srv := admintest.NewServer(t)
	r := mustRun(t, srv, "correct horse battery\n", "users", "create", "--username", "Alice", "--email", "alice@example.com",
		"--password-stdin", "--role", "admin", "--role", "dev", "--group", "eng", "--tenant", "acme", "--json")
	var u admin.UserResponse
	if err := json.Unmarshal([]byte(r.stdout), &u); err != nil {
		t.Fatal(err)
	}
	stored, ok := srv.Store.User(u.ID)
	if !ok || u.Username != "alice" || !u.HasPassword || strings.Join(stored.Roles, ",") != "admin,dev" {
		t.Fatalf("user = %+v / %+v", u, stored)
	}
	hash := stored.PasswordHash
	if want, _ := (admintest.Hasher{}).Hash("correct horse battery"); hash != want {
		t.Error("password read from stdin was not exactly the first line")
	}

	r = mustRun(t, srv, "", "users", "list")
	for _, want := range []string{"USERNAME", "alice", "alice@example.com", "admin,dev", "acme"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("list lacks %q:\n%s", want, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "argon2") {
		t.Error("list shows a password hash")
	}

	t.Run("SE-03/disable", func(t *testing.T) {
		r := mustRun(t, srv, "", "users", "disable", u.ID)
		if !strings.Contains(r.stdout, "Disabled") || !strings.Contains(r.stdout, "yes") {
			t.Errorf("disable output:\n%s", r.stdout)
		}
		if got, _ := srv.Store.User(u.ID); !got.Disabled || srv.Store.EndedFor(u.ID) != 1 {
			t.Error("user not disabled or sessions not ended")
		}
		mustRun(t, srv, "", "users", "enable", u.ID)
		if got, _ := srv.Store.User(u.ID); got.Disabled {
			t.Error("user not enabled")
		}
	})
	t.Run("set-password", func(t *testing.T) {
		r := mustRun(t, srv, "new passphrase here\r\nignored\n", "users", "set-password", u.ID)
		if !strings.Contains(r.stdout, "Password set") {
			t.Error(r.stdout)
		}
		got, _ := srv.Store.User(u.ID)
		if want, _ := (admintest.Hasher{}).Hash("new passphrase here"); got.PasswordHash != want {
			t.Error("password not set from the first stdin line")
		}
	})
	t.Run("set-password-empty-stdin", func(t *testing.T) {
		if r := run(t, srv, "", "users", "set-password", u.ID); !errors.Is(r.err, errNoPassword) {
			t.Errorf("err = %v", r.err)
		}
	})
	t.Run("PW-01/policy-error-shown", func(t *testing.T) {
		r := run(t, srv, "short\n", "users", "set-password", u.ID)
		if !adminclient.IsStatus(r.err, 400) || !strings.Contains(r.err.Error(), "at least 8") {
			t.Errorf("err = %v", r.err)
		}
	})
	t.Run("no-password-flag", func(t *testing.T) {
		if r := run(t, srv, "", "users", "create", "--username", "bob", "--password", "hunter22"); r.err == nil {
			t.Error("a --password flag was accepted")
		}
	})

	r = mustRun(t, srv, "", "users", "get", u.ID)
	if !strings.Contains(r.stdout, "alice") {
		t.Errorf("get output:\n%s", r.stdout)
	}
	mustRun(t, srv, "", "users", "delete", u.ID)
	if _, ok := srv.Store.User(u.ID); ok {
		t.Error("user not deleted")
	}
}

func TestKeys(t *testing.T) {
	srv := admintest.NewServer(t)
	r := mustRun(t, srv, "", "keys", "rotate")
	if !strings.Contains(r.stdout, "k1") || !strings.Contains(r.stdout, "ES256") || !strings.Contains(r.stdout, "active") {
		t.Errorf("rotate output:\n%s", r.stdout)
	}
	mustRun(t, srv, "", "keys", "rotate")
	r = mustRun(t, srv, "", "keys", "revoke", "k1")
	if !strings.Contains(r.stdout, "Revoked key k1") {
		t.Error(r.stdout)
	}
	r = mustRun(t, srv, "", "keys", "list", "--json")
	var l admin.KeyList
	if err := json.Unmarshal([]byte(r.stdout), &l); err != nil || len(l.Keys) != 2 || l.Keys[0].State != "revoked" {
		t.Fatalf("list --json = %s (%v)", r.stdout, err)
	}
	r = mustRun(t, srv, "", "keys", "list")
	if !strings.Contains(r.stdout, "KID") || !strings.Contains(r.stdout, "revoked") || !strings.Contains(r.stdout, "active") {
		t.Errorf("list output:\n%s", r.stdout)
	}
	if r := run(t, srv, "", "keys", "revoke", "nope"); !adminclient.IsStatus(r.err, 404) {
		t.Errorf("revoke unknown: %v", r.err)
	}
}

func TestJoinTokens(t *testing.T) {
	srv := admintest.NewServer(t)
	r := mustRun(t, srv, "", "join-tokens", "create", "--spiffe-id", "spiffe://gatehouse.local/orders", "--ttl", "30m")
	var tok string
	for _, line := range strings.Split(r.stdout, "\n") {
		if s, ok := strings.CutPrefix(line, "Join token: "); ok {
			tok = s
		}
	}
	stored := srv.Store.JoinTokens()
	if len(stored) != 1 || tok == "" || stored[0].Hash != hex.EncodeToString(srv.Secrets.Sum(tok)) {
		t.Fatalf("printed token %q does not match the stored hash; stdout:\n%s", tok, r.stdout)
	}
	if strings.Count(r.stdout, tok) != 1 {
		t.Error("token printed more than once")
	}
	for _, want := range []string{"spiffe://gatehouse.local/orders", admintest.Now.Add(30 * time.Minute).Format(time.RFC3339)} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, r.stdout)
		}
	}
	if !strings.Contains(r.stderr, "cannot be shown again") {
		t.Errorf("missing once-only note; stderr: %s", r.stderr)
	}

	t.Run("json-default-ttl", func(t *testing.T) {
		r := mustRun(t, srv, "", "join-tokens", "create", "--spiffe-id", "spiffe://gatehouse.local/pay", "--json")
		var got admin.JoinTokenResponse
		if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || got.Token == "" ||
			!got.ExpiresAt.Equal(admintest.Now.Add(admin.DefaultJoinTokenTTL)) {
			t.Fatalf("--json = %s (%v)", r.stdout, err)
		}
	})
	t.Run("spiffe-id-required", func(t *testing.T) {
		if r := run(t, srv, "", "join-tokens", "create"); r.err == nil {
			t.Error("create without --spiffe-id succeeded")
		}
	})
	t.Run("MT-01/no-path", func(t *testing.T) {
		r := run(t, srv, "", "join-tokens", "create", "--spiffe-id", "spiffe://gatehouse.local")
		if !adminclient.IsStatus(r.err, 400) || !strings.Contains(r.err.Error(), "must have a path") {
			t.Errorf("err = %v", r.err)
		}
	})
	t.Run("MT-04/ttl-too-long", func(t *testing.T) {
		r := run(t, srv, "", "join-tokens", "create", "--spiffe-id", "spiffe://gatehouse.local/a", "--ttl", "25h")
		if !adminclient.IsStatus(r.err, 400) || !strings.Contains(r.err.Error(), "ttl") {
			t.Errorf("err = %v", r.err)
		}
	})
	t.Run("client-spiffe-id", func(t *testing.T) {
		r := mustRun(t, srv, "", "clients", "create", "--id", "orders", "--name", "Orders",
			"--grant-type", "client_credentials", "--spiffe-id", "spiffe://gatehouse.local/orders")
		if c, _ := srv.Store.Client("orders"); c.SPIFFEID != "spiffe://gatehouse.local/orders" {
			t.Errorf("stored spiffe_id = %q", c.SPIFFEID)
		}
		if !strings.Contains(r.stdout, "SPIFFE ID") || !strings.Contains(r.stdout, "spiffe://gatehouse.local/orders") {
			t.Errorf("create output:\n%s", r.stdout)
		}
	})
}

func TestClientFuncError(t *testing.T) {
	boom := errors.New("no admin URL configured")
	root := &cobra.Command{Use: "gatehouse", SilenceUsage: true, SilenceErrors: true}
	root.AddCommand(Commands(func() (*adminclient.Client, error) { return nil, boom })...)
	root.SetOut(&bytes.Buffer{})
	root.SetArgs([]string{"keys", "list"})
	if err := root.Execute(); !errors.Is(err, boom) {
		t.Errorf("err = %v", err)
	}
}

func TestCleanTerminalOutput(t *testing.T) {
	if got := clean("a\x1b[2Jb\nc\td\u009b"); got != "a?[2Jb?c?d?" {
		t.Errorf("clean = %q", got)
	}
}

func TestReadPassword(t *testing.T) {
	tests := []struct {
		in, want string
		err      bool
	}{
		{"pw\n", "pw", false},
		{"pw", "pw", false},
		{"pw\r\n", "pw", false},
		{" spaced pw \n", " spaced pw ", false},
		{"\n", "", true},
		{"", "", true},
		{strings.Repeat("a", maxPasswordInput+1), "", true},
	}
	for _, tc := range tests {
		got, err := readPassword(strings.NewReader(tc.in))
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("readPassword(%q) = %q, %v", clip(tc.in), got, err)
		}
	}
}

func clip(s string) string {
	if len(s) > 20 {
		return s[:20] + "..."
	}
	return s
}
