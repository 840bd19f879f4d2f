package workload_test

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/sdk/workload"
)

// serveHTTPS serves h over TLS with cfg on a loopback port.
func serveHTTPS(t testing.TB, cfg *tls.Config, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, ErrorLog: log.New(io.Discard, "", 0)}
	go func() { _ = srv.Serve(tls.NewListener(ln, cfg)) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "https://" + ln.Addr().String()
}

func httpsClient(cfg *tls.Config) *http.Client {
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg, DisableKeepAlives: true}}
}

func TestMiddlewareEndToEnd(t *testing.T) {
	e := newMTEnv(t)
	pol := &policyHolder{}
	pol.p.Store(mustPolicy(t,
		workload.Rule{Name: "client-orders", Effect: "allow", From: []string{clientIDs}, To: []string{serverIDs}, Paths: []string{"/orders", "/orders/*"}},
		workload.Rule{Name: "no-delete", Effect: "deny", From: []string{clientIDs}, To: []string{serverIDs}, Methods: []string{"DELETE"}},
	))
	var reached atomic.Int64
	h := workload.Middleware(pol, serverID, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached.Add(1)
		id, ok := workload.PeerID(r.Context())
		if !ok {
			t.Error("no peer ID in context")
		}
		_, _ = io.WriteString(w, id.String())
	}))
	url := serveHTTPS(t, mustServerConfig(t, e.source(e.inter.issue(t, nil, serverIDs)), workload.AuthorizePolicy(pol, serverID)), h)
	client := httpsClient(mustClientConfig(t, e.source(e.inter.issue(t, nil, clientIDs)), workload.AuthorizeID(serverID)))

	tests := []struct {
		method, path string
		status       int
	}{
		{"GET", "/orders", 200},
		{"POST", "/orders/1", 200},
		{"GET", "/orders-admin", 403},
		{"GET", "/admin", 403},
		{"DELETE", "/orders/1", 403},
		{"GET", "/orders/%2e%2e/admin", 403},
		{"GET", "/orders/..%2Fadmin", 403},
		{"GET", "//orders", 403},
		{"GET", "/orders/../admin", 403},
		{"GET", "/%6Frders", 403},
	}
	for _, tc := range tests {
		before := reached.Load()
		req, err := http.NewRequest(tc.method, url+tc.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", tc.method, tc.path, err)
		}
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Errorf("%s %s: status %d (%s), want %d", tc.method, tc.path, resp.StatusCode, body, tc.status)
			continue
		}
		if tc.status == 200 {
			if string(body) != clientIDs {
				t.Errorf("%s %s: handler saw peer %q", tc.method, tc.path, body)
			}
			continue
		}
		if reached.Load() != before {
			t.Errorf("%s %s: denied request reached the handler", tc.method, tc.path)
		}
		var eb struct {
			Error       string `json:"error"`
			Description string `json:"error_description"`
		}
		if err := json.Unmarshal(body, &eb); err != nil || eb.Error != "access_denied" || eb.Description == "" {
			t.Errorf("%s %s: body %s", tc.method, tc.path, body)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("content type %q", ct)
		}
	}

	// A caller the policy does not know cannot even connect.
	other := httpsClient(mustClientConfig(t, e.source(e.inter.issue(t, nil, "spiffe://example.org/stranger")), workload.AuthorizeID(serverID)))
	if resp, err := other.Get(url + "/orders"); err == nil {
		_ = resp.Body.Close()
		t.Fatalf("stranger connected: %d", resp.StatusCode)
	}
	// Hot policy change: the next request is decided by the new policy.
	pol.p.Store(mustPolicy(t, workload.Rule{Name: "client-all", Effect: "allow", From: []string{clientIDs}, To: []string{serverIDs}}))
	resp, err := client.Get(url + "/admin")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("after policy change: %d", resp.StatusCode)
	}
}

func TestMiddlewareDeniesWithoutPeer(t *testing.T) {
	e := newMTEnv(t)
	pol := &policyHolder{}
	pol.p.Store(mustPolicy(t, workload.Rule{Name: "all", Effect: "allow", From: []string{"spiffe://example.org/*"}, To: []string{serverIDs}}))
	next := http.HandlerFunc(func(http.ResponseWriter, *http.Request) { t.Error("handler reached") })
	leaf := e.inter.issue(t, nil, clientIDs).Certificates[0]
	noID := e.inter.issue(t, nil).Certificates[0]

	tests := []struct {
		name string
		ps   workload.PolicySource
		tls  *tls.ConnectionState
	}{
		{"no TLS", pol, nil},
		{"no peer certificate", pol, &tls.ConnectionState{}},
		{"certificate without SPIFFE ID", pol, &tls.ConnectionState{PeerCertificates: []*x509.Certificate{noID}}},
		{"nil policy source", nil, &tls.ConnectionState{PeerCertificates: []*x509.Certificate{leaf}}},
		{"no policy yet", &policyHolder{}, &tls.ConnectionState{PeerCertificates: []*x509.Certificate{leaf}}},
	}
	for _, tc := range tests {
		r := httptest.NewRequest("GET", "/orders", nil)
		r.TLS = tc.tls
		w := httptest.NewRecorder()
		workload.Middleware(tc.ps, serverID, next).ServeHTTP(w, r)
		if w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), `"access_denied"`) {
			t.Errorf("%s: %d %s", tc.name, w.Code, w.Body)
		}
	}
	if _, ok := workload.PeerID(httptest.NewRequest("GET", "/", nil).Context()); ok {
		t.Error("PeerID without middleware")
	}
}
