package keys

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"go.uber.org/goleak"

	"github.com/gatehouse/gatehouse/internal/storage"
	"github.com/gatehouse/gatehouse/sdk/jwtx"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// verify checks tok against m's published keys with the strict verifier.
func verify(t testing.TB, m *Manager, tok string) jwtx.Header {
	t.Helper()
	h, _, err := jwtx.Verify(tok, m.PublicKey, jwtx.Options{})
	if err != nil {
		t.Fatalf("token does not verify against the JWKS: %v", err)
	}
	return h
}

func TestSignAndJWKS(t *testing.T) {
	for _, alg := range []string{ES256, EdDSA, RS256} {
		t.Run(alg, func(t *testing.T) {
			clk := newClock()
			m := started(t, newMemStore(), testConfig(alg), clk)
			claims := map[string]any{"sub": "alice", "exp": clk.Now().Add(time.Hour).Unix()}
			tok, err := m.Sign("at+jwt", claims)
			if err != nil {
				t.Fatal(err)
			}
			h := verify(t, m, tok)
			if h.Alg != alg || h.Typ != "at+jwt" || h.Kid == "" {
				t.Errorf("header = %+v", h)
			}
			if m.Algorithm() != alg {
				t.Errorf("Algorithm() = %q", m.Algorithm())
			}

			// The reference implementation agrees, using the published JWKS.
			set, maxAge := m.JWKS()
			if maxAge != 15*time.Minute || len(set.Keys) != 1 {
				t.Fatalf("JWKS = %d keys, max-age %v", len(set.Keys), maxAge)
			}
			jws, err := jose.ParseSigned(tok, []jose.SignatureAlgorithm{jose.SignatureAlgorithm(alg)})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := jws.Verify(set.Key(h.Kid)[0].Public()); err != nil {
				t.Fatalf("go-jose rejects our token: %v", err)
			}

			t.Run("JWT-G01/kid-always-present", func(t *testing.T) {
				plain, err := m.Sign("", map[string]string{"sub": "x"})
				if err != nil {
					t.Fatal(err)
				}
				if h := verify(t, m, plain); h.Kid == "" || h.Typ != "" {
					t.Errorf("header = %+v", h)
				}
			})
			t.Run("JWT-G01/no-private-members", func(t *testing.T) {
				raw, err := json.Marshal(set)
				if err != nil {
					t.Fatal(err)
				}
				var doc struct{ Keys []map[string]any }
				if err := json.Unmarshal(raw, &doc); err != nil {
					t.Fatal(err)
				}
				for _, k := range doc.Keys {
					for _, priv := range []string{"d", "p", "q", "dp", "dq", "qi", "k", "oth"} {
						if _, ok := k[priv]; ok {
							t.Errorf("JWKS key carries private member %q", priv)
						}
					}
					if k["use"] != "sig" || k["alg"] != alg || k["kid"] == "" {
						t.Errorf("JWKS key = %v", k)
					}
				}
			})
		})
	}
}

func TestSignRejectsBadInput(t *testing.T) {
	m := started(t, newMemStore(), testConfig(ES256), newClock())
	for _, typ := range []string{`at+jwt","alg":"none`, "a b", "a\nb", strings.Repeat("a", 65)} {
		if _, err := m.Sign(typ, map[string]string{}); err == nil {
			t.Errorf("typ %q accepted", typ)
		}
	}
	if _, err := m.Sign("", func() {}); err == nil {
		t.Error("unencodable claims accepted")
	}
}

func TestConfigValidation(t *testing.T) {
	cases := []struct {
		name string
		mod  func(*Config)
	}{
		{"short KEK", func(c *Config) { c.KEK = make([]byte, 16) }},
		{"missing KEK", func(c *Config) { c.KEK = nil }},
		{"unknown algorithm", func(c *Config) { c.Algorithm = "HS256" }},
		{"none algorithm", func(c *Config) { c.Algorithm = "none" }},
		{"publish-ahead below max-age", func(c *Config) { c.PublishAhead = 10 * time.Minute }},
		{"publish-ahead equal to max-age plus refresh", func(c *Config) { c.PublishAhead = 20 * time.Minute }},
		{"rotation shorter than publish-ahead", func(c *Config) { c.RotationPeriod = 30 * time.Minute }},
		{"negative retain", func(c *Config) { c.RetainAfter = -time.Second }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(ES256)
			tc.mod(&cfg)
			if _, err := New(newMemStore(), cfg, time.Now, discard()); !errors.Is(err, ErrConfig) {
				t.Fatalf("err = %v, want ErrConfig", err)
			}
		})
	}
	t.Run("defaults", func(t *testing.T) {
		m, err := New(newMemStore(), Config{KEK: testKEK}, time.Now, discard())
		if err != nil {
			t.Fatal(err)
		}
		if m.cfg.Algorithm != RS256 || m.cfg.RotationPeriod != DefaultRotationPeriod || m.cfg.JWKSMaxAge != DefaultJWKSMaxAge {
			t.Errorf("defaults = %+v", m.cfg)
		}
	})
	t.Run("negative rotation disables it", func(t *testing.T) {
		cfg := testConfig(ES256)
		cfg.RotationPeriod = -1
		store, clk := newMemStore(), newClock()
		m := started(t, store, cfg, clk)
		clk.Advance(400 * 24 * time.Hour)
		if err := m.tick(context.Background()); err != nil {
			t.Fatal(err)
		}
		if store.count() != 1 {
			t.Fatalf("%d keys, want 1", store.count())
		}
	})
}

// TestRotationInvariants simulates two replicas over several rotation
// periods, advancing a fake clock by one refresh interval per step (RL-03):
//   - the signer is always in the signing replica's JWKS, and in the JWKS
//     that either replica served JWKSMaxAge ago (what a verifier may cache);
//   - no key signs before its ActivateAt;
//   - every token signed in the last RetainAfter still verifies;
//   - both replicas rotate once per period, never twice.
func TestRotationInvariants(t *testing.T) {
	cfg := testConfig(ES256)
	store, clk := newMemStore(), newClock()
	a := started(t, store, cfg, clk)
	b := started(t, store, cfg, clk)
	start := clk.Now()
	ctx := context.Background()

	type signed struct {
		at  time.Time
		tok string
	}
	var tokens []signed
	var histA, histB []map[string]bool // JWKS kid sets served per step
	kids := func(m *Manager) map[string]bool {
		set, _ := m.JWKS()
		out := map[string]bool{}
		for _, k := range set.Keys {
			out[k.KeyID] = true
		}
		return out
	}
	step := cfg.RefreshInterval
	cacheSteps := int(cfg.JWKSMaxAge / step)
	steps := int(3*24*time.Hour/step) + 10
	for i := 0; i < steps; i++ {
		clk.Advance(step)
		for _, m := range []*Manager{a, b} {
			if err := m.tick(ctx); err != nil {
				t.Fatal(err)
			}
		}
		histA, histB = append(histA, kids(a)), append(histB, kids(b))
		now := clk.Now()
		for _, m := range []*Manager{a, b} {
			tok, err := m.Sign("at+jwt", map[string]int64{"iat": now.Unix()})
			if err != nil {
				t.Fatal(err)
			}
			h := verify(t, m, tok)
			for _, k := range mustKeys(t, m) {
				if k.ID == h.Kid && k.ActivateAt.After(now) {
					t.Fatalf("step %d: signed with key %s before its ActivateAt", i, h.Kid)
				}
			}
			if j := i - cacheSteps; j >= 0 && (!histA[j][h.Kid] || !histB[j][h.Kid]) {
				t.Fatalf("step %d: signer %s was not in the JWKS served %v ago", i, h.Kid, cfg.JWKSMaxAge)
			}
			tokens = append(tokens, signed{now, tok})
		}
		// Drop tokens older than any lifetime we promise, then check the
		// oldest remaining one of each replica: it is the first to lose its key.
		for len(tokens) > 0 && now.Sub(tokens[0].at) >= cfg.RetainAfter {
			tokens = tokens[1:]
		}
		for _, s := range tokens[:2] {
			verify(t, a, s.tok)
			verify(t, b, s.tok)
		}
	}
	elapsed := clk.Now().Sub(start)
	want := 1 + int(elapsed/(cfg.RotationPeriod-cfg.PublishAhead))
	if got := store.count(); got != want {
		t.Errorf("%d keys after %v, want %d", got, elapsed, want)
	}
	infos := mustKeys(t, a)
	states := map[string]int{}
	for _, k := range infos {
		states[k.State]++
	}
	if states[StateActive] != 1 || states[StateExpired] < 1 {
		t.Errorf("states = %v", states)
	}
}

func mustKeys(t testing.TB, m *Manager) []KeyInfo {
	t.Helper()
	ks, err := m.Keys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return ks
}

// TestConcurrentManualRotationCreatesOneKey: two replicas whose manual
// rotations overlap (both read the same keys before either writes) create one
// key; the loser gets ErrConcurrentRotation and creates nothing.
func TestConcurrentManualRotationCreatesOneKey(t *testing.T) {
	cfg := testConfig(ES256)
	mem, clk := newMemStore(), newClock()
	ctx := context.Background()
	started(t, mem, cfg, clk) // the first key
	store := newOverlapStore(mem, 2)
	ms := make([]*Manager, 2)
	for i := range ms {
		m, err := New(store, cfg, clk.Now, discard())
		if err != nil {
			t.Fatal(err)
		}
		ms[i] = m
	}
	before := mem.count()
	errs := make([]error, len(ms))
	var wg sync.WaitGroup
	for i, m := range ms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = m.Rotate(ctx)
		}()
	}
	wg.Wait()
	if got := mem.count() - before; got != 1 {
		t.Fatalf("overlapping rotations created %d keys, want 1 (errs %v)", got, errs)
	}
	won, lost := 0, 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case errors.Is(err, ErrConcurrentRotation):
			lost++
		default:
			t.Fatalf("unexpected error: %v", err)
		}
	}
	if won != 1 || lost != 1 {
		t.Fatalf("%d rotations succeeded and %d got ErrConcurrentRotation; want 1 and 1", won, lost)
	}
}

func TestReplicasRotateOnce(t *testing.T) {
	cfg := testConfig(ES256)
	store, clk := newMemStore(), newClock()
	ctx := context.Background()
	// Concurrent cold start on an empty store: one first key.
	ms := make([]*Manager, 4)
	var wg sync.WaitGroup
	for i := range ms {
		m, err := New(store, cfg, clk.Now, discard())
		if err != nil {
			t.Fatal(err)
		}
		ms[i] = m
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := m.Start(ctx); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	for _, m := range ms {
		t.Cleanup(m.Stop)
	}
	if n := store.count(); n != 1 {
		t.Fatalf("cold start created %d keys, want 1", n)
	}
	// Scheduled rotation due on every replica at once.
	clk.Advance(cfg.RotationPeriod - cfg.PublishAhead)
	for _, m := range ms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := m.tick(ctx); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n := store.count(); n != 2 {
		t.Fatalf("rotation created %d keys in total, want 2", n)
	}
	// Every replica sees the pending key and still signs with the old one.
	for _, m := range ms {
		if err := m.tick(ctx); err != nil {
			t.Fatal(err)
		}
		set, _ := m.JWKS()
		if len(set.Keys) != 2 {
			t.Fatalf("JWKS has %d keys, want 2", len(set.Keys))
		}
	}
}

func TestManualRotation(t *testing.T) {
	cfg := testConfig(ES256)
	store, clk := newMemStore(), newClock()
	m := started(t, store, cfg, clk)
	ctx := context.Background()
	before := verify(t, m, mustSign(t, m)).Kid

	rec, err := m.Rotate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Sealed != nil || rec.Generation != 2 || !rec.ActivateAt.Equal(clk.Now().Add(cfg.PublishAhead)) {
		t.Fatalf("Rotate returned %+v", rec)
	}
	if _, _, ok := m.PublicKey(rec.ID); !ok {
		t.Fatal("rotated key is not published at once")
	}
	if kid := verify(t, m, mustSign(t, m)).Kid; kid != before {
		t.Fatal("rotated key signs before PublishAhead")
	}
	clk.Advance(cfg.PublishAhead - time.Second)
	if kid := verify(t, m, mustSign(t, m)).Kid; kid != before {
		t.Fatal("rotated key signs before its ActivateAt")
	}
	clk.Advance(time.Second) // exactly ActivateAt; no tick needed to switch
	if kid := verify(t, m, mustSign(t, m)).Kid; kid != rec.ID {
		t.Fatalf("signer = %s, want the rotated key", kid)
	}
	if err := m.tick(ctx); err != nil {
		t.Fatal(err)
	}
	old := keyInfo(t, m, before)
	if old.State != StateRetired || !old.RetiredAt.Equal(rec.ActivateAt) || !old.ExpiresAt.Equal(rec.ActivateAt.Add(cfg.RetainAfter)) {
		t.Fatalf("old key = %+v", old)
	}
	clk.Advance(cfg.RetainAfter)
	if _, _, ok := m.PublicKey(before); ok {
		t.Fatal("expired key still published")
	}
	if got := keyInfo(t, m, before).State; got != StateExpired {
		t.Fatalf("state = %s", got)
	}

	now, err := m.RotateNow(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if kid := verify(t, m, mustSign(t, m)).Kid; kid != now.ID {
		t.Fatal("RotateNow key does not sign at once")
	}
}

func mustSign(t testing.TB, m *Manager) string {
	t.Helper()
	tok, err := m.Sign("at+jwt", map[string]string{"sub": "alice"})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func keyInfo(t testing.TB, m *Manager, kid string) KeyInfo {
	t.Helper()
	for _, k := range mustKeys(t, m) {
		if k.ID == kid {
			return k
		}
	}
	t.Fatalf("key %s not listed", kid)
	return KeyInfo{}
}

func TestRevoke(t *testing.T) {
	cfg := testConfig(ES256)
	store, clk := newMemStore(), newClock()
	a := started(t, store, cfg, clk)
	b := started(t, store, cfg, clk)
	ctx := context.Background()
	first := verify(t, a, mustSign(t, a)).Kid

	t.Run("signer is replaced at once", func(t *testing.T) {
		tok := mustSign(t, a)
		if err := a.Revoke(ctx, first); err != nil {
			t.Fatal(err)
		}
		if _, _, ok := a.PublicKey(first); ok {
			t.Fatal("revoked key still published")
		}
		if _, _, err := jwtx.Verify(tok, a.PublicKey, jwtx.Options{}); !errors.Is(err, jwtx.ErrUnknownKey) {
			t.Fatalf("token of revoked key: err = %v", err)
		}
		kid := verify(t, a, mustSign(t, a)).Kid
		if kid == first || keyInfo(t, a, kid).State != StateActive {
			t.Fatal("no immediate replacement signer")
		}
		// The other replica drops the key at its next refresh.
		clk.Advance(cfg.RefreshInterval)
		if err := b.tick(ctx); err != nil {
			t.Fatal(err)
		}
		if _, _, ok := b.PublicKey(first); ok {
			t.Fatal("replica still publishes the revoked key")
		}
		if got := verify(t, b, mustSign(t, b)).Kid; got != kid {
			t.Fatalf("replica signs with %s, want %s", got, kid)
		}
		if keyInfo(t, a, first).State != StateRevoked {
			t.Fatal("state is not revoked")
		}
	})
	t.Run("pending key revoked: signer unchanged", func(t *testing.T) {
		cur := verify(t, a, mustSign(t, a)).Kid
		rec, err := a.Rotate(ctx)
		if err != nil {
			t.Fatal(err)
		}
		n := store.count()
		if err := a.Revoke(ctx, rec.ID); err != nil {
			t.Fatal(err)
		}
		if store.count() != n || verify(t, a, mustSign(t, a)).Kid != cur {
			t.Fatal("revoking a pending key changed the signer")
		}
		clk.Advance(cfg.PublishAhead)
		if err := a.tick(ctx); err != nil {
			t.Fatal(err)
		}
		if verify(t, a, mustSign(t, a)).Kid != cur {
			t.Fatal("revoked pending key became the signer")
		}
	})
	t.Run("unknown kid", func(t *testing.T) {
		if err := a.Revoke(ctx, "nope"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestSealedKeys(t *testing.T) {
	store, clk := newMemStore(), newClock()
	m := started(t, store, testConfig(ES256), clk)
	recs, _ := store.ListSigningKeys(context.Background())
	rec := recs[0]

	t.Run("ciphertext holds no plaintext", func(t *testing.T) {
		der, err := unseal(m.aead, rec.ID, rec.Sealed)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := x509.ParsePKCS8PrivateKey(der); err != nil {
			t.Fatal(err)
		}
		for _, w := range []int{len(der), 32, 16} {
			for i := 0; i+w <= len(der); i += w {
				if bytes.Contains(rec.Sealed, der[i:i+w]) {
					t.Fatalf("sealed bytes contain %d plaintext bytes at %d", w, i)
				}
			}
		}
		if bytes.Contains(rec.PublicJWK, []byte(`"d"`)) {
			t.Fatal("public JWK holds the private scalar")
		}
	})
	t.Run("wrong KEK fails to load", func(t *testing.T) {
		cfg := testConfig(ES256)
		cfg.KEK = bytes.Repeat([]byte{8}, 32)
		other, err := New(store, cfg, clk.Now, discard())
		if err != nil {
			t.Fatal(err)
		}
		err = other.Start(context.Background())
		if !errors.Is(err, ErrUnseal) || !strings.Contains(err.Error(), "wrong KEK") {
			t.Fatalf("err = %v, want ErrUnseal", err)
		}
		if other.Ready() {
			t.Fatal("ready without keys")
		}
		if _, err := other.Sign("", map[string]string{}); !errors.Is(err, ErrNoSigningKey) {
			t.Fatalf("Sign err = %v", err)
		}
	})
	t.Run("sealed key moved to another kid fails", func(t *testing.T) {
		moved := newMemStore()
		r := rec
		r.ID = "other-kid"
		if err := moved.CreateSigningKey(context.Background(), r); err != nil {
			t.Fatal(err)
		}
		other, err := New(moved, testConfig(ES256), clk.Now, discard())
		if err != nil {
			t.Fatal(err)
		}
		if err := other.Start(context.Background()); !errors.Is(err, ErrUnseal) {
			t.Fatalf("err = %v, want ErrUnseal", err)
		}
	})
	t.Run("tampered ciphertext fails", func(t *testing.T) {
		bad := newMemStore()
		r := rec
		r.Sealed = bytes.Clone(rec.Sealed)
		r.Sealed[len(r.Sealed)-1] ^= 1
		_ = bad.CreateSigningKey(context.Background(), r)
		other, _ := New(bad, testConfig(ES256), clk.Now, discard())
		if err := other.Start(context.Background()); !errors.Is(err, ErrUnseal) {
			t.Fatalf("err = %v, want ErrUnseal", err)
		}
	})
}

func TestFailClosed(t *testing.T) {
	down := errors.New("database down")
	t.Run("storage down at start", func(t *testing.T) {
		store := newMemStore()
		store.setFail(down)
		m, _ := New(store, testConfig(ES256), newClock().Now, discard())
		if err := m.Start(context.Background()); !errors.Is(err, down) {
			t.Fatalf("err = %v", err)
		}
		if m.Ready() {
			t.Fatal("ready")
		}
		if set, _ := m.JWKS(); len(set.Keys) != 0 {
			t.Fatal("JWKS not empty")
		}
	})
	t.Run("storage down later keeps the loaded keys", func(t *testing.T) {
		store, clk := newMemStore(), newClock()
		m := started(t, store, testConfig(ES256), clk)
		store.setFail(down)
		clk.Advance(time.Minute)
		if err := m.tick(context.Background()); !errors.Is(err, down) {
			t.Fatalf("err = %v", err)
		}
		verify(t, m, mustSign(t, m))
	})
}

func BenchmarkSignES256(b *testing.B) { benchSign(b, ES256) }
func BenchmarkSignRS256(b *testing.B) { benchSign(b, RS256) }
func BenchmarkSignEdDSA(b *testing.B) { benchSign(b, EdDSA) }

// BenchmarkBareES256 is the floor BenchmarkSignES256 is compared with:
// hashing and signing the same input with crypto/ecdsa directly.
func BenchmarkBareES256(b *testing.B) {
	m := started(b, newMemStore(), testConfig(ES256), newClock())
	priv := m.snap.Load().signing(m.now()).signer
	input := []byte(strings.Repeat("x", 300))
	b.ReportAllocs()
	for b.Loop() {
		d := sha256.Sum256(input)
		if _, err := priv.Sign(rand.Reader, d[:], crypto.SHA256); err != nil {
			b.Fatal(err)
		}
	}
}

func benchSign(b *testing.B, alg string) {
	m := started(b, newMemStore(), testConfig(alg), newClock())
	claims := map[string]any{"iss": "https://idp.example", "sub": "alice", "aud": "api",
		"exp": int64(1767229200), "iat": int64(1767225600), "scope": "openid profile"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.Sign("at+jwt", claims); err != nil {
			b.Fatal(err)
		}
	}
}
