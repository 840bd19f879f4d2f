package workload_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptrace"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/sdk/workload"
)

// TestMiddlewareKeepAliveAcrossRenewal: a client keeps one connection
// alive while its short-lived SVIDs (3 s, NotBefore backdated 30 s like the
// CA's) renew at half-life. The server closes the connection gracefully
// once the presented SVID is in the last third of its life (Connection:
// close on HTTP/1.1, GOAWAY on HTTP/2), so no request meets the 401
// svid_expired backstop: zero failures, connections reused in between, and
// every renewed SVID reaches the server.
func TestMiddlewareKeepAliveAcrossRenewal(t *testing.T) {
	for _, proto := range []string{"HTTP/1.1", "HTTP/2.0"} {
		t.Run(proto, func(t *testing.T) {
			t.Parallel()
			e := newMTEnv(t)
			pol := &policyHolder{}
			pol.p.Store(mustPolicy(t, workload.Rule{Name: "all", Effect: "allow", From: []string{clientIDs}, To: []string{serverIDs}}))
			var mu sync.Mutex
			leaves := map[string]bool{}
			h := workload.Middleware(pol, serverID, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				leaves[r.TLS.PeerCertificates[0].SerialNumber.String()] = true
				mu.Unlock()
				_, _ = io.WriteString(w, r.Proto)
			}))
			scfg := mustServerConfig(t, e.source(e.inter.issue(t, nil, serverIDs)), workload.AuthorizePolicy(pol, serverID))
			scfg.NextProtos = []string{"h2", "http/1.1"}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, ErrorLog: log.New(io.Discard, "", 0)}
			go func() { _ = srv.Serve(tls.NewListener(ln, scfg)) }()
			t.Cleanup(func() { _ = srv.Close() })
			url := "https://" + ln.Addr().String() + "/x"

			csrc := e.source(nil)
			issue := func() {
				now := time.Now()
				csrc.svid.Store(e.inter.issue(t, func(c *x509.Certificate) {
					c.NotBefore, c.NotAfter = now.Add(-30*time.Second), now.Add(3*time.Second)
				}, clientIDs))
			}
			issue()
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			wg.Go(func() { // the client renews at half-life
				for {
					select {
					case <-ctx.Done():
						return
					case <-time.After(1500 * time.Millisecond):
						issue()
					}
				}
			})
			tr := &http.Transport{TLSClientConfig: mustClientConfig(t, csrc, workload.AuthorizeID(serverID)),
				ForceAttemptHTTP2: proto == "HTTP/2.0"}
			t.Cleanup(tr.CloseIdleConnections)
			client := &http.Client{Timeout: 5 * time.Second, Transport: tr}

			var sent, failed, reused int
			end := time.Now().Add(7 * time.Second)
			for time.Now().Before(end) {
				req, _ := http.NewRequest(http.MethodGet, url, nil)
				req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
					GotConn: func(i httptrace.GotConnInfo) {
						if i.Reused {
							reused++
						}
					}}))
				sent++
				resp, err := client.Do(req)
				if err != nil {
					failed++
					t.Errorf("request %d: %v", sent, err)
					continue
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK || string(body) != proto {
					failed++
					t.Errorf("request %d: %d %q", sent, resp.StatusCode, body)
				}
				time.Sleep(10 * time.Millisecond)
			}
			cancel()
			wg.Wait()
			mu.Lock()
			n := len(leaves)
			mu.Unlock()
			t.Logf("%s: %d requests, %d failed, %d on a reused connection, %d client SVIDs seen", proto, sent, failed, reused, n)
			if reused < sent/2 {
				t.Errorf("only %d of %d requests reused a connection: closed too eagerly", reused, sent)
			}
			if n < 3 {
				t.Errorf("the server saw %d client SVIDs across the renewals, want ≥ 3", n)
			}
		})
	}
}
