package e2e

import (
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/testutil/pgtest"
)

// tcpProxy forwards a local port to PostgreSQL and can cut every connection,
// simulating a database outage without touching the shared server.
type tcpProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	up     bool
	conns  []net.Conn
}

func newTCPProxy(t *testing.T, target string) *tcpProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{ln: ln, target: target, up: true}
	go p.serve()
	t.Cleanup(func() { _ = ln.Close(); p.setUp(false) })
	return p
}

func (p *tcpProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		up := p.up
		p.mu.Unlock()
		if !up {
			_ = c.Close()
			continue
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, s)
		p.mu.Unlock()
		go func() { _, _ = io.Copy(s, c); _ = s.Close() }()
		go func() { _, _ = io.Copy(c, s); _ = c.Close() }()
	}
}

func (p *tcpProxy) setUp(up bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.up = up
	if !up {
		for _, c := range p.conns {
			_ = c.Close()
		}
		p.conns = nil
	}
}

// TestDatabaseOutage: with PostgreSQL unreachable the token endpoint and the
// login page answer 503 with Retry-After (RL-04), tokens already issued keep
// introspecting from memory, and everything recovers by itself.
func TestDatabaseOutage(t *testing.T) {
	dsn := pgtest.SchemaDSN(t)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	proxy := newTCPProxy(t, u.Host)
	u.Host = proxy.ln.Addr().String()
	e := newEnv(t, "postgres", u.String(), nil)
	tok := e.codeFlow(t, "web")
	if e.introspect(t, str(tok["access_token"]))["active"] != true { // the resource server is known
		t.Fatal("inactive before the outage")
	}
	e.Clock.Advance(3 * time.Second) // past the client cache TTL: the next lookups hit the database

	proxy.setUp(false)
	st, out, h := e.postForm(t, "/oauth/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {str(tok["refresh_token"])}}, "web", e.Secrets["web"])
	if st != http.StatusServiceUnavailable || h.Get("Retry-After") == "" {
		t.Fatalf("RL-04/token: %d %v %v", st, out, h)
	}
	_, ch := pkce()
	resp, body := get(t, http.DefaultClient, e.Issuer+"/authorize?"+authParams("web", webRedirect, ch).Encode())
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || !strings.Contains(body, "unavailable") {
		t.Fatalf("RL-04/authorize: %d", resp.StatusCode)
	}
	// Verification of issued tokens needs no database; known clients are
	// served from the cache while the database is down.
	if e.introspect(t, str(tok["access_token"]))["active"] != true {
		t.Fatal("introspection failed during the outage")
	}
	resp, _ = get(t, http.DefaultClient, e.Issuer+"/.well-known/jwks.json")
	if resp.StatusCode != 200 {
		t.Fatal("JWKS unavailable during the outage")
	}

	proxy.setUp(true)
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, out, _ = e.postForm(t, "/oauth/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {str(tok["refresh_token"])}}, "web", e.Secrets["web"])
		if st == 200 {
			e.remember(str(out["access_token"]), str(out["refresh_token"]), str(out["id_token"]))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no recovery after the outage: %d %v", st, out)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
