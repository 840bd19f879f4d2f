package workload_test

import (
	"crypto/x509"
	"encoding/json"
	"net/http"
	"net/http/httptrace"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/sdk/workload"
)

// TestMiddlewareExpiredPeerOnKeepAlive: a keep-alive connection outlives the
// client's SVID; the next request on it gets 401 svid_expired with
// Connection: close and never reaches the handler.
func TestMiddlewareExpiredPeerOnKeepAlive(t *testing.T) {
	e := newMTEnv(t)
	pol := &policyHolder{}
	pol.p.Store(mustPolicy(t, workload.Rule{Name: "all", Effect: "allow", From: []string{clientIDs}, To: []string{serverIDs}}))
	var reached atomic.Int64
	h := workload.Middleware(pol, serverID, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		reached.Add(1)
	}))
	url := serveHTTPS(t, mustServerConfig(t, e.source(e.inter.issue(t, nil, serverIDs)), workload.AuthorizePolicy(pol, serverID)), h)
	notAfter := time.Now().Add(2 * time.Second)
	short := e.inter.issue(t, func(c *x509.Certificate) { c.NotAfter = notAfter }, clientIDs)
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: mustClientConfig(t, e.source(short), workload.AuthorizeID(serverID))}}

	get := func() (*http.Response, bool) {
		t.Helper()
		var reused bool
		req, err := http.NewRequest(http.MethodGet, url+"/x", nil)
		if err != nil {
			t.Fatal(err)
		}
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
			GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused }}))
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp, reused
	}
	resp, _ := get()
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || reached.Load() != 1 {
		t.Fatalf("first request: %d", resp.StatusCode)
	}
	time.Sleep(time.Until(short.Certificates[0].NotAfter) + 1100*time.Millisecond)
	resp, reused := get()
	defer resp.Body.Close()
	var body struct{ Error string }
	_ = json.NewDecoder(resp.Body).Decode(&body)
	if !reused {
		t.Fatal("the second request did not reuse the keep-alive connection")
	}
	if resp.StatusCode != http.StatusUnauthorized || body.Error != "svid_expired" || !resp.Close {
		t.Fatalf("expired peer: %d %q close=%v", resp.StatusCode, body.Error, resp.Close)
	}
	if reached.Load() != 1 {
		t.Fatal("the handler was reached with an expired peer SVID")
	}
}
