package workload

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"go.uber.org/goleak"
	"golang.org/x/oauth2"
)

func startCASource(t *testing.T, cfg CAConfig, opt caOptions) *CASource {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := newCASource(ctx, cfg, opt)
	if err != nil {
		t.Fatalf("NewCASource: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func caSerialOf(t *testing.T, s *CASource) string {
	t.Helper()
	sv, err := s.GetX509SVID()
	if err != nil {
		t.Fatalf("GetX509SVID: %v", err)
	}
	return sv.Certificates[0].SerialNumber.String()
}

func TestCASourceConfigValidation(t *testing.T) {
	ok := CAConfig{URL: "https://ca.example.org:8443", TrustDomain: caTD,
		RootFingerprint: strings.Repeat("ab", 32), JoinToken: "jt"}
	tests := []struct {
		name string
		mod  func(c *CAConfig)
		want string
	}{
		{"http URL", func(c *CAConfig) { c.URL = "http://ca.example.org" }, "https"},
		{"empty URL", func(c *CAConfig) { c.URL = "" }, "URL is required"},
		{"user info", func(c *CAConfig) { c.URL = "https://u:p@ca.example.org" }, "user info"},
		{"query", func(c *CAConfig) { c.URL = "https://ca.example.org/?x=1" }, "query"},
		{"no trust domain", func(c *CAConfig) { c.TrustDomain = spiffeid.TrustDomain{} }, "TrustDomain"},
		{"both trust anchors", func(c *CAConfig) { c.BundleFile = "/tmp/b.json" }, "exactly one"},
		{"no trust anchor", func(c *CAConfig) { c.RootFingerprint = "" }, "RootFingerprint or BundleFile"},
		{"short fingerprint", func(c *CAConfig) { c.RootFingerprint = "abcd" }, "64 hex"},
		{"non-hex fingerprint", func(c *CAConfig) { c.RootFingerprint = strings.Repeat("zz", 32) }, "64 hex"},
		{"no credential", func(c *CAConfig) { c.JoinToken = "" }, "JoinToken or TokenSource"},
		{"negative timeout", func(c *CAConfig) { c.Timeout = -1 }, "Timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := ok
			tt.mod(&cfg)
			_, err := NewCASource(context.Background(), cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "jt") && cfg.JoinToken != "" {
				t.Fatalf("error leaks the join token: %v", err)
			}
		})
	}
}

// TestMT01CASourceBootstrapTrust: the pinned fingerprint decides trust in
// the CA; a wrong pin, a tampered bundle or a CA certificate that does not
// chain to the pinned root are all refused.
func TestMT01CASourceBootstrapTrust(t *testing.T) {
	t.Run("good pin", func(t *testing.T) {
		f := newFakeCA(t)
		s := startCASource(t, f.baseConfig("jt-good", nil), caFastOpts)
		sv, err := s.GetX509SVID()
		if err != nil || sv.ID.String() != "spiffe://example.org/orders" {
			t.Fatalf("svid %v, %v", sv, err)
		}
		b, err := s.GetX509BundleForTrustDomain(caTD)
		if err != nil || !b.HasX509Authority(f.root.cert) {
			t.Fatalf("bundle %v, %v", b, err)
		}
		if _, err := s.GetX509BundleForTrustDomain(spiffeid.RequireTrustDomainFromString("other.org")); err == nil {
			t.Fatal("bundle for another trust domain")
		}
	})
	t.Run("pin with prefix, colons and upper case", func(t *testing.T) {
		f := newFakeCA(t)
		cfg := f.baseConfig("jt-colons", nil)
		fp := strings.ToUpper(cfg.RootFingerprint)
		var parts []string
		for i := 0; i < len(fp); i += 2 {
			parts = append(parts, fp[i:i+2])
		}
		cfg.RootFingerprint = "SHA256:" + strings.Join(parts, ":")
		startCASource(t, cfg, caFastOpts)
	})
	other := caTestRoot(t, "Other Root")
	tests := []struct {
		name string
		mod  func(f *fakeCA, cfg *CAConfig)
		want string
	}{
		{"wrong pin", func(f *fakeCA, cfg *CAConfig) { cfg.RootFingerprint = caFingerprint(other.cert) }, "RootFingerprint"},
		{"all-zero pin", func(f *fakeCA, cfg *CAConfig) { cfg.RootFingerprint = strings.Repeat("0", 64) }, "RootFingerprint"},
		{"bundle root swapped", func(f *fakeCA, cfg *CAConfig) {
			f.set(func(f *fakeCA) { f.roots = []*x509.Certificate{other.cert} })
		}, "RootFingerprint"},
		{"bundle bytes tampered", func(f *fakeCA, cfg *CAConfig) {
			f.set(func(f *fakeCA) {
				f.bundleBody = func(b []byte) []byte { return bytes.Replace(b, []byte(`"x5c":["M`), []byte(`"x5c":["N`), 1) }
			})
		}, "bundle"},
		{"bundle without roots", func(f *fakeCA, cfg *CAConfig) {
			f.set(func(f *fakeCA) { f.bundleBody = func([]byte) []byte { return []byte(`{"keys":[]}`) } })
		}, "no X.509 root"},
		{"pinned root present but CA chains elsewhere (root injection)", func(f *fakeCA, cfg *CAConfig) {
			// A man in the middle adds its own root next to the genuine
			// one; its server certificate chains to its own root.
			cfg.RootFingerprint = caFingerprint(other.cert)
			f.set(func(f *fakeCA) { f.roots = []*x509.Certificate{f.root.cert, other.cert} })
		}, "does not chain to the pinned root"},
		{"redirect not followed", func(f *fakeCA, cfg *CAConfig) {
			f.set(func(f *fakeCA) { f.bundleBody = nil })
			cfg.URL += "/redirect"
		}, "302"},
		{"oversized bundle", func(f *fakeCA, cfg *CAConfig) {
			f.set(func(f *fakeCA) {
				f.bundleBody = func([]byte) []byte { return bytes.Repeat([]byte(" "), maxCABody+10) }
			})
		}, "larger than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeCA(t)
			cfg := f.baseConfig("jt-secret-value", nil)
			tt.mod(f, &cfg)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			s, err := newCASource(ctx, cfg, caFastOpts)
			if err == nil {
				_ = s.Close()
				t.Fatal("bootstrap accepted")
			}
			if !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "jt-secret-value") {
				t.Fatalf("err = %v, want %q and no token", err, tt.want)
			}
			if f.count("join_token") != 0 {
				t.Fatal("the join token was sent to an untrusted CA")
			}
		})
	}
}

func TestCASourceBundleFile(t *testing.T) {
	f := newFakeCA(t)
	dir := t.TempDir()
	jsonFile := filepath.Join(dir, "bundle.json")
	f.mu.Lock()
	data := f.bundleJSONLocked()
	f.mu.Unlock()
	if err := os.WriteFile(jsonFile, data, 0o600); err != nil {
		t.Fatal(err)
	}
	pemFile := filepath.Join(dir, "bundle.pem")
	if err := os.WriteFile(pemFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: f.root.cert.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	otherFile := filepath.Join(dir, "other.pem")
	other := caTestRoot(t, "Other Root")
	if err := os.WriteFile(otherFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: other.cert.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	emptyFile := filepath.Join(dir, "empty.json")
	if err := os.WriteFile(emptyFile, []byte(`{"keys":[]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, file, wantErr string
	}{
		{"SPIFFE JSON", jsonFile, ""},
		{"PEM", pemFile, ""},
		{"MT-01 wrong CA", otherFile, "does not verify"},
		{"no roots", emptyFile, "no X.509 root"},
		{"missing file", filepath.Join(dir, "nope"), "BundleFile"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := f.baseConfig("jt-"+tt.name, nil)
			cfg.RootFingerprint, cfg.BundleFile = "", tt.file
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			s, err := newCASource(ctx, cfg, caFastOpts)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				_ = s.Close()
				return
			}
			if err == nil {
				_ = s.Close()
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

// TestMT04CASourceJoinTokenUsedOnce: the join token serves the first SVID
// only; the next issuance is a renewal over mTLS without Authorization, and
// the token never appears in logs or errors.
func TestMT04CASourceJoinTokenUsedOnce(t *testing.T) {
	f := newFakeCA(t)
	f.set(func(f *fakeCA) { f.ttl = 3 * time.Second })
	var logs caLogBuffer
	const token = "jt-super-secret-0123456789"
	s := startCASource(t, f.baseConfig(token, &logs), caFastOpts)
	first := caSerialOf(t, s)
	caWaitFor(t, 10*time.Second, "two renewals", func() bool { return f.count("renewal") >= 2 })
	if n := f.count("join_token"); n != 1 {
		t.Fatalf("join token used %d times", n)
	}
	f.mu.Lock()
	recs := append([]renewalRec(nil), f.renewalsLog...)
	f.mu.Unlock()
	for i, r := range recs {
		if !r.clientCert || r.authorization != "" {
			t.Fatalf("renewal %d: client cert %v, Authorization %q", i, r.clientCert, r.authorization)
		}
	}
	if caSerialOf(t, s) == first {
		t.Fatal("SVID not swapped after renewal")
	}
	if s.cfg.JoinToken != "" {
		t.Fatal("the source keeps the join token")
	}
	if strings.Contains(logs.String(), token) {
		t.Fatal("the join token was logged")
	}
	// A second source with the spent token fails with the CA's description.
	_, err := newCASource(context.Background(), CAConfig{URL: f.srv.URL, TrustDomain: caTD,
		RootFingerprint: caFingerprint(f.root.cert), JoinToken: token, PolicyRefresh: -1}, caFastOpts)
	if err == nil || !strings.Contains(err.Error(), "invalid_token") ||
		!strings.Contains(err.Error(), "already used") || strings.Contains(err.Error(), token) {
		t.Fatalf("reuse: %v", err)
	}
}

func TestCASourceRenewalTiming(t *testing.T) {
	f := newFakeCA(t)
	var mu sync.Mutex
	var fracs []float64
	f.set(func(f *fakeCA) {
		f.ttl = 4 * time.Second
		f.onRenewal = func(nb, na, at time.Time) {
			mu.Lock()
			fracs = append(fracs, float64(at.Sub(nb))/float64(na.Sub(nb)))
			mu.Unlock()
		}
	})
	s := startCASource(t, f.baseConfig("jt-timing", nil), caFastOpts)
	caWaitFor(t, 12*time.Second, "two renewals", func() bool { return f.count("renewal") >= 2 })
	_ = s.Close()
	mu.Lock()
	defer mu.Unlock()
	// The fake sees the request after key generation and a TLS handshake,
	// which on a loaded CI machine (-race, other packages' tests) can take
	// most of a second: allow 1 s of latency past 0.6 (0.25 of a 4 s
	// lifetime). Never early, and well before expiry; the exact jitter
	// bounds are checked deterministically below.
	for i, fr := range fracs {
		if fr < 0.4 || fr > 0.6+1.0/4 {
			t.Errorf("renewal %d at %.3f of the lifetime, want [0.4, 0.6] plus up to 1 s of latency", i, fr)
		}
	}
	// The jitter bounds, deterministically.
	now := time.Now()
	leaf := &x509.Certificate{NotBefore: now, NotAfter: now.Add(100 * time.Second)}
	for _, r := range []float64{0, 0.5, 0.999999} {
		src := &CASource{opt: caOptions{now: func() time.Time { return now }, rand: func() float64 { return r }}}
		d := src.renewalDelay(caSVIDWith(leaf), now)
		if d < 40*time.Second || d > 60*time.Second {
			t.Errorf("rand %v: delay %v outside [40s, 60s]", r, d)
		}
	}
}

func TestCASourceRetryNeverBeyondExpiry(t *testing.T) {
	now := time.Now()
	leaf := &x509.Certificate{NotBefore: now.Add(-time.Minute), NotAfter: now.Add(4 * time.Second)}
	src := &CASource{opt: caOptions{now: func() time.Time { return now }, rand: func() float64 { return 0.99 }}}
	if d := src.retryDelay(30*time.Second, caSVIDWith(leaf)); d <= 0 || d >= 4*time.Second {
		t.Fatalf("retry after %v with 4s left", d)
	}
	if d := src.retryDelay(time.Second, caSVIDWith(leaf)); d < 500*time.Millisecond || d > time.Second {
		t.Fatalf("retry after %v, want jittered 1s", d)
	}
}

func TestCASourceHotSwap(t *testing.T) {
	f := newFakeCA(t)
	f.set(func(f *fakeCA) { f.ttl = 4 * time.Second })
	var logs caLogBuffer
	s := startCASource(t, f.baseConfig("jt-swap", &logs), caFastOpts)
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(logs.String())
		}
	})
	first := caSerialOf(t, s)
	caWaitFor(t, 8*time.Second, "new SVID", func() bool {
		sv, err := s.GetX509SVID()
		return err == nil && sv.Certificates[0].SerialNumber.String() != first
	})
	select { // the swap is signalled (coalesced with earlier signals)
	case <-s.Updated():
	case <-time.After(2 * time.Second):
		t.Fatal("no update signalled")
	}
}

func TestCASourceBundleFollow(t *testing.T) {
	f := newFakeCA(t)
	f.set(func(f *fakeCA) { f.hint = 1 })
	s := startCASource(t, f.baseConfig("jt-bundle", nil), caFastOpts)
	newRoot := caTestRoot(t, "Next Root")
	f.set(func(f *fakeCA) { f.roots = append(f.roots, newRoot.cert); f.seq++ })
	has := func(c *x509.Certificate) func() bool {
		return func() bool {
			b, err := s.GetX509BundleForTrustDomain(caTD)
			return err == nil && b.HasX509Authority(c)
		}
	}
	caWaitFor(t, 5*time.Second, "the new root", has(newRoot.cert))
	// Bad bundles (no roots, garbage, older sequence) are ignored.
	for _, body := range []string{`{"keys":[]}`, `garbage`, ``} {
		f.set(func(f *fakeCA) { f.bundleBody = func([]byte) []byte { return []byte(body) } })
		n := f.count("bundle")
		caWaitFor(t, 5*time.Second, "a bundle poll", func() bool { return f.count("bundle") > n })
		if !has(newRoot.cert)() || !has(f.root.cert)() {
			t.Fatalf("bundle %q replaced the good one", body)
		}
	}
	f.set(func(f *fakeCA) {
		f.bundleBody = nil
		f.roots = []*x509.Certificate{f.root.cert}
		f.seq = 0 // a stale replica
	})
	n := f.count("bundle")
	caWaitFor(t, 5*time.Second, "a bundle poll", func() bool { return f.count("bundle") > n })
	if !has(newRoot.cert)() {
		t.Fatal("an older bundle sequence was accepted")
	}
}

// TestCASourceCADownJoinToken: the CA is down; the SVID is served until it
// expires, then ErrExpired says a new join token is needed (RL).
func TestCASourceCADownJoinToken(t *testing.T) {
	f := newFakeCA(t)
	f.set(func(f *fakeCA) { f.ttl = 3 * time.Second })
	s := startCASource(t, f.baseConfig("jt-down", nil), caFastOpts)
	sv, _ := s.GetX509SVID()
	notAfter := sv.Certificates[0].NotAfter
	f.set(func(f *fakeCA) { f.down = true })
	// An error counts only if, after the call returned, the SVID still had
	// time left: a stall between the check and the call must not fail it.
	const epsilon = 50 * time.Millisecond
	served := 0
	for time.Until(notAfter) > 200*time.Millisecond {
		_, err := s.GetX509SVID()
		if err != nil {
			if time.Now().Before(notAfter.Add(-epsilon)) {
				t.Fatalf("SVID not served %v before expiry: %v", time.Until(notAfter), err)
			}
			break
		}
		served++
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("the SVID was served %d times with the CA down", served)
	time.Sleep(time.Until(notAfter) + 100*time.Millisecond)
	_, err := s.GetX509SVID()
	if !errors.Is(err, ErrExpired) {
		t.Fatalf("err = %v, want ErrExpired", err)
	}
	for _, want := range []string{"workload: SVID expired at " + notAfter.UTC().Format(time.RFC3339),
		"could not be renewed", "temporarily_unavailable", "new join token"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	f.set(func(f *fakeCA) { f.down = false })
	time.Sleep(500 * time.Millisecond)
	if _, err := s.GetX509SVID(); !errors.Is(err, ErrExpired) {
		t.Fatalf("a spent join token recovered: %v", err)
	}
}

// TestCASourceCADownTokenSource: with client credentials the source
// bootstraps again by itself once the CA is back.
func TestCASourceCADownTokenSource(t *testing.T) {
	f := newFakeCA(t)
	f.set(func(f *fakeCA) {
		f.ttl = 2 * time.Second
		f.bearers["at-secret"] = spiffeid.RequireFromString("spiffe://example.org/payments")
	})
	var logs caLogBuffer
	cfg := f.baseConfig("", &logs)
	cfg.JoinToken, cfg.TokenSource = "", oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "at-secret"})
	s := startCASource(t, cfg, caFastOpts)
	f.set(func(f *fakeCA) { f.down = true })
	caWaitFor(t, 5*time.Second, "expiry", func() bool { _, err := s.GetX509SVID(); return err != nil })
	_, err := s.GetX509SVID()
	if !errors.Is(err, ErrExpired) || !strings.Contains(err.Error(), "TokenSource") {
		t.Fatalf("err = %v", err)
	}
	f.set(func(f *fakeCA) { f.down = false })
	caWaitFor(t, 5*time.Second, "recovery", func() bool { _, err := s.GetX509SVID(); return err == nil })
	if n := f.count("client_credentials"); n < 2 {
		t.Fatalf("client credentials used %d times", n)
	}
	if strings.Contains(logs.String(), "at-secret") {
		t.Fatal("the access token was logged")
	}
}

// TestCASourceSVIDExpiredAnswer: the CA refuses renewal with svid_expired
// (e.g. clock skew) or svid_revoked (the SPIFFE ID was revoked); a
// TokenSource bootstraps again at once. "At once" is judged on the fake
// CA's clock: the new SVID's NotBefore (its issue time) is before the first
// SVID's NotAfter whenever the refusal left the source time to do so.
func TestCASourceSVIDExpiredAnswer(t *testing.T) {
	for _, code := range []string{"svid_expired", "svid_revoked"} {
		t.Run(code, func(t *testing.T) {
			f := newFakeCA(t)
			var refusedMu sync.Mutex
			var refusedAt time.Time     // the first refused renewal, on the fake CA's clock
			var presentedNB []time.Time // NotBefore of every SVID presented for renewal
			f.set(func(f *fakeCA) {
				f.ttl = 8 * time.Second // renewal at ~4 s leaves ~4 s to bootstrap before expiry
				f.bearers["at"] = spiffeid.RequireFromString("spiffe://example.org/payments")
				f.renewErr = &caError{Status: 401, Code: code, Description: "refused"}
				f.onRenewal = func(nb, _ time.Time, at time.Time) {
					refusedMu.Lock()
					presentedNB = append(presentedNB, nb)
					if refusedAt.IsZero() {
						refusedAt = at
					}
					refusedMu.Unlock()
				}
			})
			var logs caLogBuffer
			cfg := f.baseConfig("", &logs)
			t.Cleanup(func() {
				if t.Failed() {
					t.Log(logs.String())
				}
			})
			cfg.JoinToken, cfg.TokenSource = "", oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "at"})
			s := startCASource(t, cfg, caFastOpts)
			first := caSerialOf(t, s)
			firstSV, err := s.GetX509SVID()
			if err != nil {
				t.Fatal(err)
			}
			firstNA := firstSV.Certificates[0].NotAfter
			// Wait generously (a wrong source bootstrapping only at expiry
			// still gets there, and is caught on the CA's timestamps below).
			var second *x509.Certificate
			caWaitFor(t, time.Until(firstNA)+10*time.Second, "re-bootstrap and swap", func() bool {
				sv, err := s.GetX509SVID()
				if err != nil || sv.Certificates[0].SerialNumber.String() == first {
					return false
				}
				second = sv.Certificates[0]
				return true
			})
			if n := f.count("client_credentials"); n < 2 {
				t.Fatalf("client credentials used %d times, want a second bootstrap", n)
			}
			f.mu.Lock()
			renewals := len(f.renewalsLog)
			f.mu.Unlock()
			// The earliest SVID after the first: the one swapped in, or an
			// earlier one already presented for renewal if polling lagged.
			issued := second.NotBefore
			refusedMu.Lock()
			refused := refusedAt
			for _, nb := range presentedNB {
				if nb.After(firstSV.Certificates[0].NotBefore) && nb.Before(issued) {
					issued = nb
				}
			}
			refusedMu.Unlock()
			if renewals < 1 || refused.IsZero() {
				t.Fatal("no renewal attempted first")
			}
			// At once: the new SVID was issued (NotBefore, whole seconds,
			// no backdate here) before the first one expired. A refusal
			// that itself came within a second of expiry (a stalled
			// machine) leaves no room to judge that; it is only logged.
			switch {
			case issued.Before(firstNA):
			case firstNA.Sub(refused) >= time.Second:
				t.Errorf("the re-bootstrap came at %v, not before the first SVID's expiry %v, though the refusal came %v before it",
					issued, firstNA, firstNA.Sub(refused))
			default:
				t.Logf("the refusal came only %v before expiry (stalled machine); the re-bootstrap came at %v", firstNA.Sub(refused), issued)
			}
		})
	}
}

// TestMT01CASourceRefusesBadSVID: an issued SVID for another trust domain,
// not verifying against the bundle, or for another key is refused, at
// bootstrap and at renewal (where the current SVID stays).
func TestMT01CASourceRefusesBadSVID(t *testing.T) {
	for _, tamper := range []string{"wrong_td", "unverifiable", "wrong_key", "id_mismatch"} {
		t.Run("bootstrap/"+tamper, func(t *testing.T) {
			f := newFakeCA(t)
			f.set(func(f *fakeCA) { f.tamper = tamper })
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			s, err := newCASource(ctx, f.baseConfig("jt-"+tamper, nil), caFastOpts)
			if err == nil {
				_ = s.Close()
				t.Fatal("bad SVID installed")
			}
			if errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("retried until the deadline: %v", err)
			}
		})
		t.Run("renewal/"+tamper, func(t *testing.T) {
			f := newFakeCA(t)
			f.set(func(f *fakeCA) { f.ttl = 4 * time.Second })
			var logs caLogBuffer
			s := startCASource(t, f.baseConfig("jt-r-"+tamper, &logs), caFastOpts)
			t.Cleanup(func() {
				if t.Failed() {
					t.Log(logs.String())
				}
			})
			first := caSerialOf(t, s)
			f.set(func(f *fakeCA) { f.tamper = tamper })
			caWaitFor(t, 8*time.Second, "renewal attempts", func() bool { return f.count("renewal") >= 2 })
			if got := caSerialOf(t, s); got != first {
				t.Fatal("a bad SVID replaced the good one")
			}
		})
	}
}

func TestCASourceFirstSVIDTimeout(t *testing.T) {
	f := newFakeCA(t)
	f.set(func(f *fakeCA) { f.down = true })
	ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
	defer cancel()
	_, err := newCASource(ctx, f.baseConfig("jt-timeout", nil), caFastOpts)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "temporarily_unavailable") {
		t.Fatalf("err = %v", err)
	}
}

func TestCASourcePolicyFollow(t *testing.T) {
	f := newFakeCA(t)
	p1, err := NewPolicy([]Rule{{Name: "a", Effect: "allow", From: []string{"spiffe://example.org/orders"},
		To: []string{"spiffe://example.org/payments"}}})
	if err != nil {
		t.Fatal(err)
	}
	p2, err := NewPolicy([]Rule{{Name: "b", Effect: "allow", From: []string{"spiffe://example.org/*"},
		To: []string{"spiffe://example.org/payments"}}})
	if err != nil {
		t.Fatal(err)
	}
	f.set(func(f *fakeCA) { f.policy = p1 })
	cfg := f.baseConfig("jt-policy", nil)
	cfg.PolicyRefresh = 100 * time.Millisecond
	s := startCASource(t, cfg, caFastOpts)
	if got := s.Policy(); got == nil || got.Version() != p1.Version() {
		t.Fatalf("initial policy %v", got)
	}
	f.set(func(f *fakeCA) { f.policy = p2 })
	caWaitFor(t, 3*time.Second, "policy v2", func() bool { p := s.Policy(); return p != nil && p.Version() == p2.Version() })
	f.set(func(f *fakeCA) { f.policyFail = true })
	n := f.count("policy")
	caWaitFor(t, 3*time.Second, "failed polls", func() bool { return f.count("policy") > n+2 })
	if p := s.Policy(); p == nil || p.Version() != p2.Version() {
		t.Fatal("a failed poll dropped the policy")
	}
	// PolicyRefresh < 0: never fetched.
	cfg2 := f.baseConfig("jt-nopolicy", nil)
	s2 := startCASource(t, cfg2, caFastOpts)
	if s2.Policy() != nil {
		t.Fatal("policy fetched although disabled")
	}
}

func TestCASourceCloseNoLeak(t *testing.T) {
	opt := goleak.IgnoreCurrent()
	func() {
		f := newFakeCA(t)
		f.set(func(f *fakeCA) { f.ttl = 2 * time.Second; f.hint = 1 })
		cfg := f.baseConfig("jt-leak", nil)
		cfg.PolicyRefresh = 100 * time.Millisecond
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s, err := newCASource(ctx, cfg, caFastOpts)
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(300 * time.Millisecond)
		_ = s.Close()
		_ = s.Close()
		if _, err := s.GetX509SVID(); !errors.Is(err, ErrClosed) {
			t.Fatalf("after Close: %v", err)
		}
		f.srv.CloseClientConnections()
		f.srv.Close()
	}()
	goleak.VerifyNone(t, opt)
}
