package server

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func TestHealthReadyMetricsAndShutdown(t *testing.T) {
	var failing atomic.Bool
	checks := []Check{{Name: "storage", Fn: func(context.Context) error {
		if failing.Load() {
			return errors.New("db password=hunter2 unreachable")
		}
		return nil
	}}}
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: "gatehouse_test_total", Help: "x"}))
	addrs := make(chan string, 2)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, slog.New(slog.DiscardHandler), checks,
			Listener{Name: "idp", Addr: "127.0.0.1:0", Handler: http.NotFoundHandler(), Bound: func(a string) { addrs <- a }},
			Listener{Name: "admin", Addr: "127.0.0.1:0", Handler: http.NotFoundHandler(), Metrics: reg, Bound: func(a string) { addrs <- a }})
	}()
	idp, admin := "http://"+<-addrs, "http://"+<-addrs
	get := func(u string) (int, string) {
		t.Helper()
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if st, _ := get(idp + "/healthz"); st != 200 {
		t.Fatalf("healthz %d", st)
	}
	if st, _ := get(idp + "/readyz"); st != 200 {
		t.Fatalf("readyz %d", st)
	}
	failing.Store(true)
	st, body := get(admin + "/readyz")
	if st != 503 || !strings.Contains(body, "storage") || strings.Contains(body, "hunter2") {
		t.Fatalf("readyz while failing: %d %s", st, body)
	}
	if st, body := get(admin + "/metrics"); st != 200 || !strings.Contains(body, "gatehouse_test_total") {
		t.Fatalf("metrics %d", st)
	}
	if st, _ := get(idp + "/metrics"); st != 404 {
		t.Fatalf("metrics must only be on the admin listener, got %d", st)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no graceful shutdown")
	}
}

// TestTLSConfigListener serves TLS from a Listener's TLSConfig (the CA API
// uses GetCertificate with its own SVID) and refuses a listener with both a
// TLSConfig and certificate files.
func TestTLSConfigListener(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	var calls atomic.Int32
	tc := &tls.Config{GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
		calls.Add(1)
		return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
	}}
	bad := Run(context.Background(), slog.New(slog.DiscardHandler), nil,
		Listener{Name: "ca", Addr: "127.0.0.1:0", Handler: http.NotFoundHandler(), TLSConfig: tc, CertFile: "c.pem", KeyFile: "k.pem"})
	if bad == nil || !strings.Contains(bad.Error(), "not both") {
		t.Fatalf("TLSConfig with files: %v", bad)
	}
	addrs := make(chan string, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, slog.New(slog.DiscardHandler), nil,
			Listener{Name: "ca", Addr: "127.0.0.1:0", Handler: http.NotFoundHandler(), TLSConfig: tc, Bound: func(a string) { addrs <- a }})
	}()
	addr := <-addrs
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MaxVersion: tls.VersionTLS11}}}
	if _, err := client.Get("https://" + addr + "/healthz"); err == nil {
		t.Fatal("TLS 1.1 accepted")
	}
	client = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := client.Get("https://" + addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.TLS == nil || calls.Load() == 0 {
		t.Fatalf("status %d, tls %v, GetCertificate calls %d", resp.StatusCode, resp.TLS != nil, calls.Load())
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
