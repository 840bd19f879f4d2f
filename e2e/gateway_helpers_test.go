package e2e

import (
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// needTool returns the path of an external program the gateway tests drive
// (nginx, redis-server): from env when set, else from PATH or fallback. A
// missing tool fails the test under CI and skips it otherwise.
func needTool(t *testing.T, env, name, fallback string) string {
	t.Helper()
	if p := os.Getenv(env); p != "" {
		return p
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if _, err := os.Stat(fallback); err == nil {
		return fallback
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is required (install it or set %s)", name, env)
	}
	t.Skipf("%s not installed (set %s)", name, env)
	return ""
}

// waitListening waits until something accepts TCP connections on addr.
func waitListening(t *testing.T, addr string, within time.Duration, diag func() string) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing listens on %s after %s: %v\n%s", addr, within, err, diag())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// seenRequest is what a recording upstream received.
type seenRequest struct {
	URI    string
	Header http.Header
}

// recordingUpstream is a demo upstream that answers 200 "upstream" and
// records every request it receives.
type recordingUpstream struct {
	*httptest.Server
	mu   sync.Mutex
	seen []seenRequest
}

func newRecordingUpstream(t *testing.T) *recordingUpstream {
	t.Helper()
	u := &recordingUpstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.seen = append(u.seen, seenRequest{URI: r.RequestURI, Header: r.Header.Clone()})
		u.mu.Unlock()
		_, _ = w.Write([]byte("upstream"))
	}))
	t.Cleanup(u.Close)
	return u
}

// take returns and forgets what the upstream has received so far.
func (u *recordingUpstream) take() []seenRequest {
	u.mu.Lock()
	defer u.mu.Unlock()
	s := u.seen
	u.seen = nil
	return s
}

// identityValues returns every value the request carried under name,
// matching case-insensitively and treating '_' as '-' (the variants GW-01
// covers).
func identityValues(h http.Header, name string) []string {
	var out []string
	for k, vs := range h {
		if strings.EqualFold(strings.ReplaceAll(k, "_", "-"), name) {
			out = append(out, vs...)
		}
	}
	return out
}

// scopedToken gets a client-credentials token for the seeded "service"
// client with the given scope, for apiAudience.
func (e *Env) scopedToken(t *testing.T, scope string) string {
	t.Helper()
	status, tok, _ := e.postForm(t, "/oauth/token", url.Values{"grant_type": {"client_credentials"}, "scope": {scope},
		"resource": {apiAudience}}, "service", e.Secrets["service"])
	if status != 200 {
		t.Fatalf("token: %d %v", status, tok)
	}
	at := str(tok["access_token"])
	e.remember(at)
	return at
}
