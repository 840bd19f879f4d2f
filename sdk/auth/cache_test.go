package auth

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

func TestTokenCache(t *testing.T) {
	f := newFakeIssuer(t, keyEC(), keyEd())
	var clock atomic.Int64
	clock.Store(time.Now().Unix())
	v, err := NewVerifier(VerifierConfig{Issuers: []IssuerConfig{{Issuer: f.url(), Audience: testAudience, NoLeeway: true,
		MinRefresh: time.Millisecond, MaxRefresh: time.Hour, RefetchInterval: time.Millisecond}},
		CacheSize: 8, Now: func() time.Time { return time.Unix(clock.Load(), 0) }})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if err := v.WaitReady(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	exp := time.Unix(clock.Load(), 0).Add(time.Minute)
	tok := mint(t, keyEC(), withClaims(f, map[string]any{"exp": exp.Unix(), "iat": clock.Load()}))

	t.Run("hit-returns-same-claims", func(t *testing.T) {
		a, err := v.Authenticate(ctx, tok)
		if err != nil {
			t.Fatal(err)
		}
		b, err := v.Authenticate(ctx, tok)
		if err != nil || a != b {
			t.Fatalf("second call: %v, same=%v", err, a == b)
		}
	})
	t.Run("hit-does-not-allocate", func(t *testing.T) {
		if n := testing.AllocsPerRun(100, func() { _, _ = v.Authenticate(ctx, tok) }); n != 0 {
			t.Fatalf("%v allocations per hit", n)
		}
	})
	t.Run("JWT-E01/non-canonical-variant-misses-cache", func(t *testing.T) {
		if _, err := v.Authenticate(ctx, tok[:len(tok)-1]+flipTrailingBits(tok[len(tok)-1:])); !errors.Is(err, ErrInvalidToken) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("never-past-exp", func(t *testing.T) {
		clock.Store(exp.Unix())
		defer clock.Store(exp.Add(-time.Minute).Unix())
		if _, err := v.Authenticate(ctx, tok); !errors.Is(err, ErrInvalidToken) {
			t.Fatalf("expired token served: %v", err)
		}
	})
	t.Run("bounded", func(t *testing.T) {
		for i := 0; i < 50; i++ {
			tk := mint(t, keyEC(), withClaims(f, map[string]any{"jti": string(rune('a' + i)), "exp": exp.Unix(), "iat": clock.Load()}))
			if _, err := v.Authenticate(ctx, tk); err != nil {
				t.Fatal(err)
			}
			if n := v.cache.len(); n > 8 {
				t.Fatalf("cache holds %d > 8", n)
			}
		}
	})
	t.Run("withdrawn-key-drops-entries", func(t *testing.T) {
		edTok := mint(t, keyEd(), withClaims(f, map[string]any{"exp": exp.Unix(), "iat": clock.Load()}))
		if _, err := v.Authenticate(ctx, edTok); err != nil {
			t.Fatal(err)
		}
		f.setKeys(keyEC()) // the IdP revokes the Ed25519 key
		// An unknown kid makes the key set refetch (RefetchInterval is tiny).
		unknown := mint(t, signingKey{"new", "ES256", testKeyMaterial()["ec-rotated"]}, withClaims(f, nil))
		deadline := time.Now().Add(5 * time.Second)
		for {
			_, _ = v.Authenticate(ctx, unknown)
			if _, err := v.Authenticate(ctx, edTok); errors.Is(err, ErrInvalidToken) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatal("token signed by a withdrawn key still accepted")
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}
