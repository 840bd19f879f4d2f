package auth

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestVerifierAcceptsValidTokens(t *testing.T) {
	f := newFakeIssuer(t, keyRSA(), keyEC(), keyEd())
	v := newTestVerifier(t, f, nil)
	now := time.Now()
	cases := []struct {
		name   string
		key    signingKey
		edits  map[string]any
		header map[string]any
	}{
		{name: "RS256", key: keyRSA()},
		{name: "ES256", key: keyEC()},
		{name: "EdDSA", key: keyEd()},
		{name: "JWT-C03/aud-string", key: keyEC(), edits: map[string]any{"aud": testAudience}},
		{name: "JWT-C03/aud-array", key: keyEC(), edits: map[string]any{"aud": []string{"other", testAudience}}},
		{name: "JWT-C01/exp-inside-leeway-by-1s", key: keyEC(), edits: map[string]any{"exp": now.Add(-DefaultLeeway + 2*time.Second).Unix()}},
		{name: "JWT-C01/nbf-inside-leeway", key: keyEC(), edits: map[string]any{"nbf": now.Add(DefaultLeeway - 5*time.Second).Unix()}},
		{name: "typ-application-at+jwt", key: keyEC(), header: map[string]any{"alg": "ES256", "kid": "es-1", "typ": "application/at+jwt"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			claims := withClaims(f, c.edits)
			var tok string
			if c.header != nil {
				tok = rawToken(t, c.key.alg, c.key.priv, mustJSON(t, c.header), mustJSON(t, claims))
			} else {
				tok = mint(t, c.key, claims)
			}
			got, err := v.Authenticate(context.Background(), tok)
			if err != nil {
				t.Fatal(err)
			}
			if got.Subject != "usr_alice" || got.ClientID != "demo-web" || got.Tenant != "acme" || got.Token != tok ||
				!got.HasScope("orders:write") || !got.HasRole("user") || !got.HasGroup("staff") || !got.EndUser() {
				t.Fatalf("claims = %+v", got)
			}
		})
	}
}

// TestVerifierLeewayBoundary checks exp exactly at the leeway boundary ±1 s
// with an injected clock (JWT-C01).
func TestVerifierLeewayBoundary(t *testing.T) {
	f := newFakeIssuer(t, keyEC())
	var now atomic.Int64
	base := time.Now().Truncate(time.Second)
	now.Store(base.Unix())
	v, err := NewVerifier(VerifierConfig{Issuers: []IssuerConfig{{Issuer: f.url(), Audience: testAudience, Leeway: 10 * time.Second}},
		CacheSize: -1, Now: func() time.Time { return time.Unix(now.Load(), 0) }})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if err := v.WaitReady(context.Background()); err != nil {
		t.Fatal(err)
	}
	exp := base.Add(time.Minute)
	tok := mint(t, keyEC(), withClaims(f, map[string]any{"exp": exp.Unix(), "iat": base.Unix()}))
	for _, c := range []struct {
		name string
		at   time.Time
		ok   bool
	}{
		{"JWT-C01/exp+leeway-1s", exp.Add(9 * time.Second), true},
		{"JWT-C01/exp+leeway", exp.Add(10 * time.Second), false},
		{"JWT-C01/exp+leeway+1s", exp.Add(11 * time.Second), false},
	} {
		t.Run(c.name, func(t *testing.T) {
			now.Store(c.at.Unix())
			_, err := v.Authenticate(context.Background(), tok)
			if (err == nil) != c.ok {
				t.Fatalf("err = %v, want ok=%v", err, c.ok)
			}
		})
	}
}

// TestVerifierKeysBoundToIssuer: with two issuers, a token claiming issuer A
// signed by issuer B's key is refused, even when B reuses A's kid (JWT-B06).
func TestVerifierKeysBoundToIssuer(t *testing.T) {
	a := newFakeIssuer(t, keyEC())
	bKey := signingKey{"es-1", "ES256", testKeyMaterial()["ec-b"]} // same kid as A's key
	b := newFakeIssuer(t, bKey, signingKey{"only-b", "ES256", testKeyMaterial()["ec-b"]})
	v, err := NewVerifier(VerifierConfig{Issuers: []IssuerConfig{
		{Issuer: a.url(), Audience: testAudience, RefetchInterval: time.Hour},
		{Issuer: b.url(), Audience: testAudience, RefetchInterval: time.Hour},
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if err := v.WaitReady(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := v.Authenticate(ctx, mint(t, keyEC(), claimsFor(a.url()))); err != nil {
		t.Fatalf("A's own token: %v", err)
	}
	if _, err := v.Authenticate(ctx, mint(t, bKey, claimsFor(b.url()))); err != nil {
		t.Fatalf("B's own token: %v", err)
	}
	for name, tok := range map[string]string{
		"JWT-B06/b-key-same-kid-claims-a": mint(t, bKey, claimsFor(a.url())),
		"JWT-B06/b-only-kid-claims-a":     mint(t, signingKey{"only-b", "ES256", testKeyMaterial()["ec-b"]}, claimsFor(a.url())),
		"JWT-B06/untrusted-issuer":        mint(t, keyEC(), claimsFor("https://evil.example")),
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := v.Authenticate(ctx, tok); !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("err = %v", err)
			}
		})
	}
}

func TestSymmetricMode(t *testing.T) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	const iss = "https://internal.example"
	v, err := NewVerifier(VerifierConfig{Issuers: []IssuerConfig{{Issuer: iss, Audience: testAudience, HMACKey: key}}})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if err := v.Ready(); err != nil {
		t.Fatalf("symmetric verifier must be ready at once: %v", err)
	}
	claims := mustJSON(t, claimsFor(iss))
	good := rawToken(t, "HS256", key, []byte(`{"alg":"HS256","typ":"at+jwt"}`), claims)
	if _, err := v.Authenticate(context.Background(), good); err != nil {
		t.Fatal(err)
	}
	other := make([]byte, 32)
	bad := map[string]string{
		"wrong-key":         rawToken(t, "HS256", other, []byte(`{"alg":"HS256","typ":"at+jwt"}`), claims),
		"JWT-A05/rs256-alg": rawToken(t, "HS256", key, []byte(`{"alg":"RS256","typ":"at+jwt"}`), claims),
		"JWT-A01/none":      b64([]byte(`{"alg":"none","typ":"at+jwt"}`)) + "." + b64(claims) + ".",
	}
	for name, tok := range bad {
		t.Run(name, func(t *testing.T) {
			if _, err := v.Authenticate(context.Background(), tok); !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("err = %v", err)
			}
		})
	}
}

func TestNewVerifierRejectsBadConfig(t *testing.T) {
	key := make([]byte, 32)
	cases := map[string]IssuerConfig{
		"no-audience":           {Issuer: "https://idp.example"},
		"no-issuer":             {Audience: "a"},
		"http-non-loopback":     {Issuer: "http://idp.example", Audience: "a"},
		"short-hmac-key":        {Issuer: "https://i.example", Audience: "a", HMACKey: key[:31]},
		"symmetric-and-rs256":   {Issuer: "https://i.example", Audience: "a", HMACKey: key, Algorithms: []string{"RS256"}},
		"symmetric-and-jwks":    {Issuer: "https://i.example", Audience: "a", HMACKey: key, JWKSURL: "https://i.example/jwks"},
		"asymmetric-with-hs256": {Issuer: "https://i.example", Audience: "a", Algorithms: []string{"HS256"}},
		"alg-none":              {Issuer: "https://i.example", Audience: "a", Algorithms: []string{"none"}},
		"leeway-too-big":        {Issuer: "https://i.example", Audience: "a", Leeway: 2 * time.Minute},
		"query-in-issuer":       {Issuer: "https://i.example/?x=1", Audience: "a"},
	}
	for name, ic := range cases {
		t.Run(name, func(t *testing.T) {
			if v, err := NewVerifier(VerifierConfig{Issuers: []IssuerConfig{ic}}); err == nil {
				v.Close()
				t.Fatal("accepted")
			}
		})
	}
	t.Run("all-errors-at-once", func(t *testing.T) {
		_, err := NewVerifier(VerifierConfig{Issuers: []IssuerConfig{cases["no-audience"], cases["short-hmac-key"]}})
		if err == nil || !strings.Contains(err.Error(), "issuers[0]") || !strings.Contains(err.Error(), "issuers[1]") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("duplicate-issuer", func(t *testing.T) {
		ic := IssuerConfig{Issuer: "https://i.example", Audience: "a", HMACKey: key}
		if _, err := NewVerifier(VerifierConfig{Issuers: []IssuerConfig{ic, ic}}); err == nil {
			t.Fatal("accepted")
		}
	})
	t.Run("none", func(t *testing.T) {
		if _, err := NewVerifier(VerifierConfig{}); err == nil {
			t.Fatal("accepted")
		}
	})
}

// TestVerifierNotReadyWithoutKeys: cold start with the IdP down is not ready
// and refuses every token with ErrUnavailable (RL-02).
func TestVerifierNotReadyWithoutKeys(t *testing.T) {
	f := newFakeIssuer(t, keyEC())
	f.down.Store(true)
	v, err := NewVerifier(VerifierConfig{Issuers: []IssuerConfig{{Issuer: f.url(), Audience: testAudience}}})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := v.WaitReady(ctx); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("WaitReady = %v", err)
	}
	if _, err := v.Authenticate(context.Background(), mint(t, keyEC(), claimsFor(f.url()))); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Authenticate = %v", err)
	}
}

// TestVerifierUnknownKidFlood: a flood of tokens with random kids costs at
// most one JWKS fetch per RefetchInterval, and valid tokens keep verifying
// meanwhile (JWT-B05).
func TestVerifierUnknownKidFlood(t *testing.T) {
	f := newFakeIssuer(t, keyEC())
	v := newTestVerifier(t, f, func(ic *IssuerConfig) { ic.RefetchInterval = time.Hour })
	before := f.jwksHits.Load()
	att := testKeyMaterial()["ec-attacker"]
	ctx := context.Background()
	var wg sync.WaitGroup
	var accepted atomic.Int64
	for i := range 500 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tok := mint(t, signingKey{fmt.Sprintf("random-%d", i), "ES256", att}, claimsFor(f.url()))
			if _, err := v.Authenticate(ctx, tok); err == nil {
				accepted.Add(1)
			}
		}()
	}
	good := mint(t, keyEC(), claimsFor(f.url()))
	for range 50 {
		if _, err := v.Authenticate(ctx, good); err != nil {
			t.Fatalf("valid token refused during the flood: %v", err)
		}
	}
	wg.Wait()
	if accepted.Load() != 0 {
		t.Fatalf("%d forged tokens accepted", accepted.Load())
	}
	if n := f.jwksHits.Load() - before; n > 1 {
		t.Fatalf("%d JWKS fetches for one flood, want at most 1", n)
	}
}
