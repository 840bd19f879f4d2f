// Package server runs Gatehouse's HTTP listeners: each component's handler
// on its own address, plus /healthz (liveness) and /readyz (readiness) on
// every listener and /metrics where asked. It owns graceful shutdown.
package server

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"
)

// Check is one readiness probe (database ping, signing keys loaded...).
type Check struct {
	Name string
	Fn   func(ctx context.Context) error
}

// Listener is one address and what it serves.
type Listener struct {
	Name     string // "idp", "admin"
	Addr     string
	Handler  http.Handler
	CertFile string // TLS when both are set
	KeyFile  string
	// TLSConfig, when not nil, serves TLS with it (its certificates, e.g.
	// GetCertificate, and client-certificate settings); CertFile and
	// KeyFile must then be empty.
	TLSConfig *tls.Config
	Metrics   *prometheus.Registry // served at /metrics when not nil
	// Bound, when not nil, receives the actual address once listening
	// (useful with port 0).
	Bound func(addr string)
	// Bare hands every request to Handler as it arrived: no ServeMux path
	// cleaning or redirects (the gateway normalizes paths itself, GW-03).
	// Only the exact paths /healthz and /readyz are answered here.
	Bare bool
	// WriteTimeout overrides the default 30s; negative means none (the
	// gateway bounds each request by its route's timeout instead).
	WriteTimeout time.Duration
}

// Run serves every listener until ctx ends, then shuts down gracefully.
func Run(ctx context.Context, log *slog.Logger, checks []Check, ls ...Listener) error {
	for _, l := range ls {
		if l.TLSConfig != nil && (l.CertFile != "" || l.KeyFile != "") {
			return fmt.Errorf("server: listener %s: set TLSConfig or CertFile and KeyFile, not both", l.Name)
		}
	}
	g, ctx := errgroup.WithContext(ctx)
	for _, l := range ls {
		mux := http.NewServeMux()
		mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
			writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
		})
		mux.HandleFunc("GET /readyz", readyHandler(checks))
		if l.Metrics != nil {
			mux.Handle("GET /metrics", promhttp.HandlerFor(l.Metrics, promhttp.HandlerOpts{}))
		}
		mux.Handle("/", l.Handler)
		var handler http.Handler = mux
		if l.Bare {
			handler = bare(mux, l.Handler)
		}
		wt := 30 * time.Second
		if l.WriteTimeout != 0 {
			wt = max(l.WriteTimeout, 0)
		}
		srv := &http.Server{
			Handler:           handler,
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       30 * time.Second,
			WriteTimeout:      wt,
			IdleTimeout:       120 * time.Second,
			MaxHeaderBytes:    64 << 10,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		}
		tlsOn := l.CertFile != "" || l.TLSConfig != nil
		switch {
		case l.TLSConfig != nil:
			srv.TLSConfig = l.TLSConfig.Clone()
			if srv.TLSConfig.MinVersion < tls.VersionTLS12 {
				srv.TLSConfig.MinVersion = tls.VersionTLS12
			}
		case l.CertFile != "":
			srv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		ln, err := net.Listen("tcp", l.Addr)
		if err != nil {
			return fmt.Errorf("server: listen %s on %s: %w", l.Name, l.Addr, err)
		}
		if l.Bound != nil {
			l.Bound(ln.Addr().String())
		}
		log.Info("listening", "component", l.Name, "addr", ln.Addr().String(), "tls", tlsOn)
		l := l
		g.Go(func() error {
			var err error
			if tlsOn {
				err = srv.ServeTLS(ln, l.CertFile, l.KeyFile) // files empty: srv.TLSConfig's certificates
			} else {
				err = srv.Serve(ln)
			}
			if errors.Is(err, http.ErrServerClosed) {
				return nil
			}
			return fmt.Errorf("server %s: %w", l.Name, err)
		})
		g.Go(func() error {
			<-ctx.Done()
			sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			return srv.Shutdown(sctx)
		})
	}
	return g.Wait()
}

// bare sends the exact health paths to mux and everything else, untouched,
// to h.
func bare(mux, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.RawPath == "" && r.URL.RawQuery == "" && (r.URL.Path == "/healthz" || r.URL.Path == "/readyz" || r.URL.Path == "/metrics") {
			mux.ServeHTTP(w, r)
			return
		}
		h.ServeHTTP(w, r)
	})
}

func readyHandler(checks []Check) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		failed := map[string]string{}
		for _, c := range checks {
			if err := c.Fn(ctx); err != nil {
				failed[c.Name] = "not ready" // the cause is not exposed
			}
		}
		if len(failed) > 0 {
			w.Header().Set("Retry-After", "5")
			writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "not ready", "checks": failed})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
