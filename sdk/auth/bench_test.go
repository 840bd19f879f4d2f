package auth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// The benchmarks compare full token verification (strict parsing, claim
// checks, no cache) with the bare signature verification of the same token
// and key, run in the same process: bench/sdk.sh reports the ratios.

var benchAlgs = []func() signingKey{keyRSA, keyEC, keyEd}

func benchVerifier(b *testing.B, cacheSize int) (*Verifier, *fakeIssuer) {
	f := newFakeIssuer(b, keyRSA(), keyEC(), keyEd())
	v, err := NewVerifier(VerifierConfig{Issuers: []IssuerConfig{{Issuer: f.url(), Audience: testAudience}}, CacheSize: cacheSize})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(v.Close)
	if err := v.WaitReady(context.Background()); err != nil {
		b.Fatal(err)
	}
	return v, f
}

func BenchmarkVerify(b *testing.B) {
	v, f := benchVerifier(b, -1)
	for _, k := range benchAlgs {
		key := k()
		tok := mint(b, key, claimsFor(f.url()))
		b.Run(key.alg, func(b *testing.B) {
			b.ReportAllocs()
			ctx := context.Background()
			for b.Loop() {
				if _, err := v.Authenticate(ctx, tok); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkBareSignature is the floor: hash and verify the same token's
// signature with the standard library, nothing else.
func BenchmarkBareSignature(b *testing.B) {
	f := newFakeIssuer(b, keyEC())
	for _, k := range benchAlgs {
		key := k()
		tok := mint(b, key, claimsFor(f.url()))
		i := strings.LastIndexByte(tok, '.')
		input, sig := []byte(tok[:i]), mustDecode(b, tok[i+1:])
		verify := bareVerifier(b, key.alg, key.priv.Public(), sig)
		b.Run(key.alg, func(b *testing.B) {
			for b.Loop() {
				if !verify(input) {
					b.Fatal("bad signature")
				}
			}
		})
	}
}

func mustDecode(b *testing.B, s string) []byte {
	out, err := base64RawURL.DecodeString(s)
	if err != nil {
		b.Fatal(err)
	}
	return out
}

func bareVerifier(b *testing.B, alg string, pub crypto.PublicKey, sig []byte) func([]byte) bool {
	switch alg {
	case "RS256":
		return func(in []byte) bool {
			d := sha256.Sum256(in)
			return rsa.VerifyPKCS1v15(pub.(*rsa.PublicKey), crypto.SHA256, d[:], sig) == nil
		}
	case "ES256":
		r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
		return func(in []byte) bool {
			d := sha256.Sum256(in)
			return ecdsa.Verify(pub.(*ecdsa.PublicKey), d[:], r, s)
		}
	case "EdDSA":
		return func(in []byte) bool { return ed25519.Verify(pub.(ed25519.PublicKey), in, sig) }
	}
	b.Fatalf("alg %s", alg)
	return nil
}

func BenchmarkCacheHit(b *testing.B) {
	v, f := benchVerifier(b, DefaultCacheSize)
	tok := mint(b, keyEC(), claimsFor(f.url()))
	ctx := context.Background()
	if _, err := v.Authenticate(ctx, tok); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Authenticate(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMiddleware measures a request through Protect (cache hit, scope
// rule) against the same handler unprotected.
func BenchmarkMiddleware(b *testing.B) {
	v, f := benchVerifier(b, DefaultCacheSize)
	tok := mint(b, keyEC(), claimsFor(f.url()))
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	for name, handler := range map[string]http.Handler{
		"bare":      h,
		"protected": Protect(v, RequireScopes("orders:read"), h),
	} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			r := httptest.NewRequest("GET", "/orders", nil)
			r.Header.Set("Authorization", "Bearer "+tok)
			w := httptest.NewRecorder()
			for b.Loop() {
				handler.ServeHTTP(w, r)
				if w.Code != http.StatusNoContent {
					b.Fatal(w.Code)
				}
			}
		})
	}
}
