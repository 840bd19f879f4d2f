package auth

import (
	"bytes"
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/gatehouse/gatehouse/sdk/jwtx"
)

// ksServer is a fake IdP serving discovery and a configurable JWKS.
type ksServer struct {
	srv      *httptest.Server
	discHits atomic.Int64
	jwksHits atomic.Int64

	mu           sync.Mutex
	issuer       string // discovery "issuer"; "" means the server URL
	jwksURI      string // discovery "jwks_uri"; "" means <url>/jwks
	body         []byte
	status       int
	cacheControl string
	gate         chan struct{} // when set, JWKS requests wait for it to close
	etag         string        // when set, sent as ETag and honoured in If-None-Match
	notModified  int
	hitTimes     []time.Time
}

func newKSServer(t testing.TB, body []byte) *ksServer {
	t.Helper()
	s := &ksServer{body: body, status: http.StatusOK, cacheControl: "max-age=3600"}
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		s.discHits.Add(1)
		s.mu.Lock()
		iss, uri, status := s.issuer, s.jwksURI, s.status
		s.mu.Unlock()
		if status != http.StatusOK {
			http.Error(w, "down", status)
			return
		}
		if iss == "" {
			iss = s.srv.URL
		}
		if uri == "" {
			uri = s.srv.URL + "/jwks"
		}
		_ = json.NewEncoder(w).Encode(map[string]string{"issuer": iss, "jwks_uri": uri})
	})
	mux.HandleFunc("/jwks", func(w http.ResponseWriter, r *http.Request) {
		s.jwksHits.Add(1)
		s.mu.Lock()
		s.hitTimes = append(s.hitTimes, time.Now())
		body, status, cc, gate, etag := s.body, s.status, s.cacheControl, s.gate, s.etag
		if etag != "" && r.Header.Get("If-None-Match") == etag {
			s.notModified++
			s.mu.Unlock()
			w.WriteHeader(http.StatusNotModified)
			return
		}
		s.mu.Unlock()
		if gate != nil {
			select {
			case <-gate:
			case <-r.Context().Done():
				return
			}
		}
		if status != http.StatusOK {
			http.Error(w, "down", status)
			return
		}
		if cc != "" {
			w.Header().Set("Cache-Control", cc)
		}
		if etag != "" {
			w.Header().Set("ETag", etag)
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	})
	s.srv = httptest.NewServer(mux)
	t.Cleanup(s.srv.Close)
	return s
}

func (s *ksServer) set(f func(s *ksServer)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
}

func (s *ksServer) times() []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Time(nil), s.hitTimes...)
}

// ksClock is an injectable clock.
type ksClock struct{ ns atomic.Int64 }

func newKSClock() *ksClock {
	c := &ksClock{}
	c.ns.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	return c
}
func (c *ksClock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *ksClock) advance(d time.Duration) { c.ns.Add(int64(d)) }

// newTestKeySet builds (not starts) a key set for s; it is closed at cleanup.
func newTestKeySet(t testing.TB, s *ksServer, clk *ksClock, tweak func(*keySetConfig)) *keySet {
	t.Helper()
	cfg := keySetConfig{
		Issuer:          s.srv.URL,
		Algorithms:      ksAllAlgs,
		HTTPClient:      &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}},
		MinRefresh:      time.Minute,
		MaxRefresh:      time.Hour,
		RefetchInterval: 10 * time.Second,
		Logger:          slog.New(slog.DiscardHandler),
		Now:             clk.now,
	}
	if tweak != nil {
		tweak(&cfg)
	}
	k := newKeySet(cfg)
	t.Cleanup(k.close)
	return k
}

// ksEventually polls cond until it holds or a 10s deadline passes.
func ksEventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func ksAssertKey(t testing.TB, k *keySet, kid, wantAlg string, want crypto.PublicKey) {
	t.Helper()
	key, alg, ok := k.lookup(kid)
	if !ok {
		t.Fatalf("lookup(%q) failed", kid)
	}
	if alg != wantAlg {
		t.Fatalf("lookup(%q) alg = %q, want %q", kid, alg, wantAlg)
	}
	if !jwksSameKey(want, key) {
		t.Fatalf("lookup(%q) returned another key", kid)
	}
}

func TestKeySetDiscovery(t *testing.T) {
	keys := ksKeys()
	t.Run("loads-keys", func(t *testing.T) {
		s := newKSServer(t, ksStdDoc(t))
		k := newTestKeySet(t, s, newKSClock(), nil)
		if k.ready() {
			t.Fatal("ready before start")
		}
		k.start()
		ksEventually(t, "ready", k.ready)
		ksAssertKey(t, k, "rsa", jwtx.RS256, keys.rsa.Public())
		ksAssertKey(t, k, "ec", jwtx.ES256, keys.ec.Public())
		ksAssertKey(t, k, "ed", jwtx.EdDSA, keys.ed.Public())
		if _, _, ok := k.lookup("other"); ok {
			t.Fatal("unknown kid found")
		}
		if err := k.lastError(); err != nil {
			t.Fatalf("lastError = %v", err)
		}
		if s.discHits.Load() != 1 {
			t.Fatalf("discovery hits = %d, want 1", s.discHits.Load())
		}
	})
	t.Run("explicit-jwks-url-skips-discovery", func(t *testing.T) {
		s := newKSServer(t, ksStdDoc(t))
		k := newTestKeySet(t, s, newKSClock(), func(c *keySetConfig) { c.JWKSURL = s.srv.URL + "/jwks" })
		k.start()
		ksEventually(t, "ready", k.ready)
		if s.discHits.Load() != 0 {
			t.Fatalf("discovery hits = %d, want 0", s.discHits.Load())
		}
	})
	bad := []struct {
		name    string
		issuer  func(u string) string
		jwksURI func(u string) string
	}{
		{"JWT-C02/issuer-trailing-slash", func(u string) string { return u + "/" }, nil},
		{"JWT-C02/issuer-other-case", func(u string) string { return strings.ToUpper(u) }, nil},
		{"JWT-C02/issuer-suffix", func(u string) string { return u + ".evil" }, nil},
		{"JWT-C02/issuer-other-host", func(string) string { return "https://idp.example.com" }, nil},
		{"JWT-B02/jwks-uri-file-scheme", nil, func(string) string { return "file:///etc/passwd" }},
		{"JWT-B02/jwks-uri-relative", nil, func(string) string { return "/jwks" }},
		{"JWT-B02/jwks-uri-gopher", nil, func(string) string { return "gopher://169.254.169.254/" }},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			s := newKSServer(t, ksStdDoc(t))
			s.set(func(s *ksServer) {
				if tc.issuer != nil {
					s.issuer = tc.issuer(s.srv.URL)
				}
				if tc.jwksURI != nil {
					s.jwksURI = tc.jwksURI(s.srv.URL)
				}
			})
			k := newTestKeySet(t, s, newKSClock(), nil)
			k.start()
			ksEventually(t, "a failed fetch", func() bool { return k.lastError() != nil })
			if !errors.Is(k.lastError(), errJWKSDiscovery) {
				t.Fatalf("lastError = %v, want discovery error", k.lastError())
			}
			if k.ready() {
				t.Fatal("ready despite a bad discovery document")
			}
			if _, _, ok := k.lookup("rsa"); ok {
				t.Fatal("lookup succeeded")
			}
			if n := s.jwksHits.Load(); n != 0 {
				t.Fatalf("JWKS fetched %d times despite a bad discovery document", n)
			}
		})
	}
}

func TestKeySetCacheControl(t *testing.T) {
	// Gaps between background fetches are bounded below by the clamped
	// period (minus at most 10% jwksJitter); slowness only makes them longer.
	for _, tc := range []struct {
		name     string
		cc       string
		min, max time.Duration
		wantGap  time.Duration
	}{
		{"max-age-honoured", "max-age=1", 10 * time.Millisecond, time.Hour, time.Second},
		{"max-age-raised-to-min", "max-age=0", 300 * time.Millisecond, time.Hour, 300 * time.Millisecond},
		{"max-age-lowered-to-max", "max-age=3600", 10 * time.Millisecond, 200 * time.Millisecond, 200 * time.Millisecond},
		{"no-max-age-uses-max", "", 10 * time.Millisecond, 200 * time.Millisecond, 200 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newKSServer(t, ksStdDoc(t))
			s.set(func(s *ksServer) { s.cacheControl = tc.cc })
			k := newTestKeySet(t, s, newKSClock(), func(c *keySetConfig) { c.MinRefresh, c.MaxRefresh = tc.min, tc.max })
			k.start()
			ksEventually(t, "three fetches", func() bool { return s.jwksHits.Load() >= 3 })
			k.close()
			ts := s.times()
			for i := 1; i < len(ts); i++ {
				if gap := ts[i].Sub(ts[i-1]); gap < tc.wantGap*85/100 {
					t.Fatalf("fetch %d came %v after the previous one, want >= ~%v", i, gap, tc.wantGap)
				}
			}
		})
	}
}

func TestKeySetRefetch(t *testing.T) {
	t.Run("JWT-B05/unknown-kid-single-flight-rate-limited", func(t *testing.T) {
		s := newKSServer(t, ksStdDoc(t))
		clk := newKSClock()
		k := newTestKeySet(t, s, clk, nil)
		k.start()
		ksEventually(t, "ready", k.ready)
		ksEventually(t, "initial fetch done", func() bool { return k.sharedFetchIdle() })
		base := s.jwksHits.Load()

		gate := make(chan struct{})
		s.set(func(s *ksServer) { s.gate = gate })
		var returned atomic.Int64
		burst := func(n int) *sync.WaitGroup {
			var wg sync.WaitGroup
			for range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					k.refetch(context.Background())
					returned.Add(1)
				}()
			}
			return &wg
		}
		wg := burst(1000)
		ksEventually(t, "the refetch to reach the server", func() bool { return s.jwksHits.Load() == base+1 })
		if n := returned.Load(); n != 0 {
			t.Fatalf("%d callers returned before the shared fetch finished", n)
		}
		close(gate)
		wg.Wait()
		if got := s.jwksHits.Load() - base; got != 1 {
			t.Fatalf("1000 concurrent refetches made %d fetches, want 1", got)
		}

		clk.advance(9 * time.Second)
		burst(1000).Wait()
		if got := s.jwksHits.Load() - base; got != 1 {
			t.Fatalf("a burst inside the interval fetched: %d fetches in total, want 1", got)
		}

		clk.advance(time.Second)
		burst(1000).Wait()
		if got := s.jwksHits.Load() - base; got != 2 {
			t.Fatalf("after the interval: %d fetches in total, want 2", got)
		}
	})
	t.Run("caller-context-cancelled", func(t *testing.T) {
		s := newKSServer(t, ksStdDoc(t))
		gate := make(chan struct{})
		defer close(gate)
		s.set(func(s *ksServer) { s.gate = gate })
		k := newTestKeySet(t, s, newKSClock(), nil)
		k.start()
		ksEventually(t, "a blocked fetch", func() bool { return s.jwksHits.Load() == 1 })
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		k.refetch(ctx) // joins the blocked fetch; must return with ctx
		if ctx.Err() == nil {
			t.Fatal("refetch returned before its context ended while the fetch was blocked")
		}
	})
	t.Run("after-close-no-fetch", func(t *testing.T) {
		s := newKSServer(t, ksStdDoc(t))
		k := newTestKeySet(t, s, newKSClock(), nil)
		k.close()
		k.refetch(context.Background())
		k.start()
		if n := s.jwksHits.Load() + s.discHits.Load(); n != 0 {
			t.Fatalf("closed key set made %d requests", n)
		}
	})
}

// sharedFetchIdle reports whether no fetch is in flight (test helper).
func (k *keySet) sharedFetchIdle() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.inflight == nil
}

// ksRefetchNow advances clk past the refetch interval and refetches.
func ksRefetchNow(k *keySet, clk *ksClock) {
	clk.advance(k.cfg.RefetchInterval)
	k.refetch(context.Background())
}

func TestKeySetKeepsLastGoodSet(t *testing.T) {
	keys := ksKeys()
	s := newKSServer(t, ksStdDoc(t))
	clk := newKSClock()
	k := newTestKeySet(t, s, clk, nil)
	k.start()
	ksEventually(t, "ready", k.ready)
	ksEventually(t, "initial fetch done", k.sharedFetchIdle)
	gen := k.generation()
	for _, tc := range []struct {
		name    string
		prepare func(s *ksServer)
		wantErr error
	}{
		{"RL-01/server-500", func(s *ksServer) { s.status = http.StatusInternalServerError }, errJWKSFetch},
		{"RL-02/empty-jwks", func(s *ksServer) { s.status, s.body = http.StatusOK, []byte(`{"keys":[]}`) }, errJWKSNoKeys},
		{"RL-02/only-unusable-keys", func(s *ksServer) { s.body = ksDoc(t, ksJWK(t, "rsa", "RS256", keys.rsa)) }, errJWKSNoKeys},
		{"RL-01/garbage", func(s *ksServer) { s.body = []byte("<html>maintenance</html>") }, errJWKSDocument},
		{"RL-01/keys-null", func(s *ksServer) { s.body = []byte(`{"keys":null}`) }, errJWKSDocument},
		{"JWT-E02/duplicate-keys-member", func(s *ksServer) { s.body = []byte(`{"keys":[],"keys":[]}`) }, errJWKSDocument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s.set(tc.prepare)
			ksRefetchNow(k, clk)
			if err := k.lastError(); !errors.Is(err, tc.wantErr) {
				t.Fatalf("lastError = %v, want %v", err, tc.wantErr)
			}
			if !k.ready() {
				t.Fatal("no longer ready")
			}
			ksAssertKey(t, k, "rsa", jwtx.RS256, keys.rsa.Public())
			ksAssertKey(t, k, "ed", jwtx.EdDSA, keys.ed.Public())
			if k.generation() != gen {
				t.Fatal("generation changed although the set was kept")
			}
		})
	}
	t.Run("RL-01/server-gone", func(t *testing.T) {
		s.srv.Close()
		ksRefetchNow(k, clk)
		if !errors.Is(k.lastError(), errJWKSFetch) {
			t.Fatalf("lastError = %v", k.lastError())
		}
		ksAssertKey(t, k, "ec", jwtx.ES256, keys.ec.Public())
	})
}

func TestKeySetColdStart(t *testing.T) {
	t.Run("RL-02/unreachable-then-recovers", func(t *testing.T) {
		s := newKSServer(t, ksStdDoc(t))
		s.set(func(s *ksServer) { s.status = http.StatusServiceUnavailable })
		k := newTestKeySet(t, s, newKSClock(), func(c *keySetConfig) { c.MinRefresh = 20 * time.Millisecond })
		k.start()
		ksEventually(t, "a failed fetch", func() bool { return k.lastError() != nil })
		if k.ready() {
			t.Fatal("ready without keys")
		}
		if _, _, ok := k.lookup("rsa"); ok {
			t.Fatal("lookup succeeded without keys")
		}
		s.set(func(s *ksServer) { s.status = http.StatusOK })
		ksEventually(t, "recovery", k.ready)
		ksAssertKey(t, k, "rsa", jwtx.RS256, ksKeys().rsa.Public())
		ksEventually(t, "lastError cleared", func() bool { return k.lastError() == nil })
	})
	t.Run("RL-02/empty-jwks-never-ready", func(t *testing.T) {
		s := newKSServer(t, []byte(`{"keys":[]}`))
		cache := filepath.Join(t.TempDir(), "jwks.json")
		k := newTestKeySet(t, s, newKSClock(), func(c *keySetConfig) { c.CacheFile = cache })
		k.start()
		ksEventually(t, "a failed fetch", func() bool { return k.lastError() != nil })
		if k.ready() {
			t.Fatal("ready with an empty key set")
		}
		if _, err := os.Stat(cache); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("cache file written for an empty set: %v", err)
		}
	})
}

func TestKeySetGeneration(t *testing.T) {
	keys := ksKeys()
	rsaJWK := ksJWK(t, "rsa", "RS256", keys.rsa.Public())
	ecJWK := ksJWK(t, "ec", "ES256", keys.ec.Public())
	edJWK := ksJWK(t, "ed", "EdDSA", keys.ed.Public())
	s := newKSServer(t, ksDoc(t, rsaJWK, ecJWK))
	clk := newKSClock()
	k := newTestKeySet(t, s, clk, nil)
	k.start()
	ksEventually(t, "ready", k.ready)
	ksEventually(t, "initial fetch done", k.sharedFetchIdle)
	g0 := k.generation()
	steps := []struct {
		name  string
		doc   []byte
		delta uint64
	}{
		{"unchanged", ksDoc(t, rsaJWK, ecJWK), 0},
		{"reordered", ksDoc(t, ecJWK, rsaJWK), 0},
		{"key-added", ksDoc(t, rsaJWK, ecJWK, edJWK), 0},
		{"key-removed", ksDoc(t, rsaJWK, edJWK), 1},
		{"key-replaced-under-same-kid", ksDoc(t, ksJWK(t, "rsa", "RS256", keys.rsa2.Public()), edJWK), 2},
		{"alg-changed-under-same-kid", ksDoc(t, ksJWK(t, "rsa", "PS256", keys.rsa2.Public()), edJWK), 3},
		{"rejected-document", []byte(`{"keys":[]}`), 3},
	}
	for _, st := range steps {
		s.set(func(s *ksServer) { s.body = st.doc })
		ksRefetchNow(k, clk)
		if got := k.generation() - g0; got != st.delta {
			t.Fatalf("%s: generation delta %d, want %d", st.name, got, st.delta)
		}
	}
	ksAssertKey(t, k, "rsa", jwtx.PS256, keys.rsa2.Public())
}

func TestKeySetETag(t *testing.T) {
	s := newKSServer(t, ksStdDoc(t))
	s.set(func(s *ksServer) { s.etag = `"v1"` })
	clk := newKSClock()
	k := newTestKeySet(t, s, clk, nil)
	k.start()
	ksEventually(t, "ready", k.ready)
	ksEventually(t, "initial fetch done", k.sharedFetchIdle)
	gen := k.generation()
	ksRefetchNow(k, clk)
	var n int
	s.set(func(s *ksServer) { n = s.notModified })
	if n != 1 || k.lastError() != nil || !k.ready() || k.generation() != gen {
		t.Fatalf("notModified=%d lastError=%v ready=%v", n, k.lastError(), k.ready())
	}
	ksAssertKey(t, k, "ec", jwtx.ES256, ksKeys().ec.Public())
}

func TestKeySetLookupNoAlloc(t *testing.T) {
	s := newKSServer(t, ksStdDoc(t))
	k := newTestKeySet(t, s, newKSClock(), nil)
	k.start()
	ksEventually(t, "ready", k.ready)
	kid := strings.Clone("ec")
	if n := testing.AllocsPerRun(100, func() {
		if _, _, ok := k.lookup(kid); !ok {
			panic("lookup failed")
		}
		_, _, _ = k.lookup("missing")
	}); n != 0 {
		t.Fatalf("lookup allocates %v times", n)
	}
}

func TestKeySetNoGoroutineLeak(t *testing.T) {
	opt := goleak.IgnoreCurrent()
	func() {
		s := newKSServer(t, ksStdDoc(t))
		clk := newKSClock()
		k := newKeySet(keySetConfig{Issuer: s.srv.URL, Algorithms: ksAllAlgs,
			HTTPClient: &http.Client{Transport: &http.Transport{DisableKeepAlives: true}},
			MinRefresh: 10 * time.Millisecond, MaxRefresh: 20 * time.Millisecond,
			RefetchInterval: time.Second, Logger: slog.New(slog.DiscardHandler), Now: clk.now})
		k.start()
		ksEventually(t, "ready", k.ready)
		ksRefetchNow(k, clk)
		// A fetch blocked at close time is cancelled.
		gate := make(chan struct{})
		defer close(gate)
		s.set(func(s *ksServer) { s.gate = gate })
		clk.advance(time.Second)
		go k.refetch(context.Background())
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		k.refetch(ctx)
		k.close()
		k.close() // idempotent
		s.srv.Close()
	}()
	goleak.VerifyNone(t, opt)
}

func TestKeySetNeverLogsKeyMaterial(t *testing.T) {
	keys := ksKeys()
	priv := ksJWK(t, "leak", "ES256", keys.ec)
	var m map[string]any
	if err := json.Unmarshal(priv, &m); err != nil {
		t.Fatal(err)
	}
	d := m["d"].(string)
	s := newKSServer(t, ksDoc(t, priv, ksJWK(t, "ok", "", keys.ed.Public())))
	var buf ksLogBuffer
	k := newTestKeySet(t, s, newKSClock(), func(c *keySetConfig) {
		c.Logger = slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	k.start()
	ksEventually(t, "ready", k.ready)
	k.close()
	out := buf.String()
	if !strings.Contains(out, "private key member") {
		t.Fatalf("private key not reported in logs: %s", out)
	}
	if strings.Contains(out, d) || strings.Contains(out, m["x"].(string)) {
		t.Fatal("key material in logs")
	}
}

// ksLogBuffer is a goroutine-safe log sink.
type ksLogBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *ksLogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *ksLogBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

var _ io.Writer = (*ksLogBuffer)(nil)
