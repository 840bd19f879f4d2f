package e2e

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/admin"
	"github.com/gatehouse/gatehouse/internal/adminclient"
	"github.com/gatehouse/gatehouse/internal/cli"
)

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// runAsGatehouse makes the test binary behave as the gatehouse command, so
// crash tests run the real CLI in a real process without a separate build.
const runAsGatehouse = "GATEHOUSE_E2E_RUN_AS_GATEHOUSE"

func TestMain(m *testing.M) {
	if os.Getenv(runAsGatehouse) == "1" {
		os.Exit(cli.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Environ()))
	}
	os.Exit(m.Run())
}

// startBinary runs `gatehouse dev` as a real process and waits until ready.
func startBinary(t *testing.T, bin, dataDir, idp, adm string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(bin, "dev", "--data-dir", dataDir, "--listen", idp, "--admin-listen", adm, "--demo-listen", "", "--orders-listen", "",
		"--signing-algorithm", "ES256")
	cmd.Env = append(os.Environ(), runAsGatehouse+"=1")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _, _ = cmd.Process.Wait() })
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + idp + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return cmd
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("gatehouse dev did not become ready")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestKillNineLosesNothing: data committed before a kill -9 is there after
// a restart: clients, users, the signing key (RL-05).
func TestKillNineLosesNothing(t *testing.T) {
	bin, err := os.Executable() // this test binary runs as gatehouse (see TestMain)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	idp, adm := freePort(t), freePort(t)
	cmd := startBinary(t, bin, dir, idp, adm)

	var st struct {
		AdminToken string `json:"admin_token"`
	}
	b, _ := os.ReadFile(filepath.Join(dir, "dev-secrets.json"))
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ac := adminclient.New("http://"+adm, st.AdminToken, nil)
	cl, err := ac.CreateClient(ctx, admin.ClientRequest{Name: "crash", GrantTypes: []string{"client_credentials"}, Scopes: []string{"x"}})
	if err != nil {
		t.Fatal(err)
	}
	u, err := ac.CreateUser(ctx, admin.UserRequest{Username: "crashy", Email: "crashy@example.com", Password: "a-long-enough-passphrase"})
	if err != nil {
		t.Fatal(err)
	}
	kidsBefore := jwksKids(t, "http://"+idp)

	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_, _ = cmd.Process.Wait()

	startBinary(t, bin, dir, idp, adm)
	if _, err := ac.GetUser(ctx, u.ID); err != nil {
		t.Fatalf("RL-05: user lost: %v", err)
	}
	kidsAfter := jwksKids(t, "http://"+idp)
	for k := range kidsBefore {
		if !kidsAfter[k] {
			t.Fatal("RL-05: signing key lost")
		}
	}
	req, _ := http.NewRequest("POST", "http://"+idp+"/oauth/token", strings.NewReader(url.Values{"grant_type": {"client_credentials"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(cl.ID, cl.ClientSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("RL-05: client lost: %d", resp.StatusCode)
	}
}
