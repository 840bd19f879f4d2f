package auth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// signingKey is one private key of a fake issuer with its kid and alg.
type signingKey struct {
	kid  string
	alg  string
	priv crypto.Signer
}

var testKeyMaterial = sync.OnceValue(func() map[string]crypto.Signer {
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	m := map[string]crypto.Signer{"rsa": rk}
	for _, name := range []string{"ec", "ec-b", "ec-attacker", "ec-rotated"} {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic(err)
		}
		m[name] = k
	}
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	m["ed"] = ed
	return m
})

// fakeIssuer is an httptest IdP serving discovery and a JWKS it can change.
type fakeIssuer struct {
	srv      *httptest.Server
	mu       sync.Mutex
	keys     []signingKey
	jwksHits atomic.Int64
	down     atomic.Bool
	maxAge   int
}

func newFakeIssuer(t testing.TB, keys ...signingKey) *fakeIssuer {
	t.Helper()
	f := &fakeIssuer{keys: keys, maxAge: 300}
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		if f.down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"issuer": f.srv.URL, "jwks_uri": f.srv.URL + "/jwks"})
	})
	mux.HandleFunc("/jwks", func(w http.ResponseWriter, r *http.Request) {
		f.jwksHits.Add(1)
		if f.down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		f.mu.Lock()
		var set jose.JSONWebKeySet
		for _, k := range f.keys {
			set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.priv.Public(), KeyID: k.kid, Algorithm: k.alg, Use: "sig"})
		}
		maxAge := f.maxAge
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "public, max-age="+strconv.Itoa(maxAge))
		_ = json.NewEncoder(w).Encode(set)
	})
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeIssuer) setKeys(keys ...signingKey) {
	f.mu.Lock()
	f.keys = keys
	f.mu.Unlock()
}

func (f *fakeIssuer) url() string { return f.srv.URL }

func keyRSA() signingKey { return signingKey{"rs-1", "RS256", testKeyMaterial()["rsa"]} }
func keyEC() signingKey  { return signingKey{"es-1", "ES256", testKeyMaterial()["ec"]} }
func keyEd() signingKey  { return signingKey{"ed-1", "EdDSA", testKeyMaterial()["ed"]} }

const testAudience = "https://api.orders.example"

// newTestVerifier builds a verifier for one fake issuer and waits for keys.
func newTestVerifier(t testing.TB, f *fakeIssuer, tweak func(*IssuerConfig)) *Verifier {
	t.Helper()
	ic := IssuerConfig{Issuer: f.url(), Audience: testAudience, RefetchInterval: time.Hour}
	if tweak != nil {
		tweak(&ic)
	}
	v, err := NewVerifier(VerifierConfig{Issuers: []IssuerConfig{ic}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := v.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	return v
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// claimsFor returns valid access-token claims from iss for the test API.
func claimsFor(iss string) map[string]any {
	now := time.Now()
	return map[string]any{"iss": iss, "sub": "usr_alice", "aud": testAudience, "client_id": "demo-web",
		"scope": "orders:read orders:write", "roles": []string{"user"}, "groups": []string{"staff"}, "tenant": "acme",
		"exp": now.Add(10 * time.Minute).Unix(), "iat": now.Unix(), "jti": "j1"}
}

// mint signs claims as an RFC 9068 access token with k.
func mint(t testing.TB, k signingKey, claims map[string]any) string {
	t.Helper()
	return rawToken(t, k.alg, k.priv, mustJSON(t, map[string]string{"alg": k.alg, "kid": k.kid, "typ": "at+jwt"}), mustJSON(t, claims))
}

// rawToken signs arbitrary header and payload bytes with our own code, so
// that tests can produce validly signed tokens with hostile contents.
func rawToken(t testing.TB, alg string, key any, header, payload []byte) string {
	t.Helper()
	input := b64(header) + "." + b64(payload)
	return input + "." + b64(rawSig(t, alg, key, []byte(input)))
}

func rawSig(t testing.TB, alg string, key any, input []byte) []byte {
	t.Helper()
	d := sha256.Sum256(input)
	switch alg {
	case "RS256":
		s, err := rsa.SignPKCS1v15(rand.Reader, key.(*rsa.PrivateKey), crypto.SHA256, d[:])
		if err != nil {
			t.Fatal(err)
		}
		return s
	case "ES256":
		r, s, err := ecdsa.Sign(rand.Reader, key.(*ecdsa.PrivateKey), d[:])
		if err != nil {
			t.Fatal(err)
		}
		out := make([]byte, 64)
		r.FillBytes(out[:32])
		s.FillBytes(out[32:])
		return out
	case "EdDSA":
		return ed25519.Sign(key.(ed25519.PrivateKey), input)
	case "HS256":
		m := hmac.New(sha256.New, key.([]byte))
		m.Write(input)
		return m.Sum(nil)
	}
	t.Fatalf("rawSig: unsupported alg %s", alg)
	return nil
}

var base64RawURL = base64.RawURLEncoding
