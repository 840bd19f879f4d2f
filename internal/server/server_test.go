package server

import (
	"context"
	"errors"
	"io"
	"log/slog"
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
