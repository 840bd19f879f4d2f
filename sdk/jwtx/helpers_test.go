package jwtx

import (
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
	"math/big"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// testKeys are generated once per test binary (RSA generation is slow).
type testKeys struct {
	rsa     *rsa.PrivateKey
	ec      *ecdsa.PrivateKey
	ec384   *ecdsa.PrivateKey
	ed      ed25519.PrivateKey
	other   *ecdsa.PrivateKey // an attacker's key, never configured
	byKid   map[string]crypto.PublicKey
	algByID map[string]string
}

var loadKeys = sync.OnceValue(func() *testKeys {
	k := &testKeys{}
	var err error
	if k.rsa, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		panic(err)
	}
	if k.ec, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		panic(err)
	}
	if k.ec384, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader); err != nil {
		panic(err)
	}
	if _, k.ed, err = ed25519.GenerateKey(rand.Reader); err != nil {
		panic(err)
	}
	if k.other, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		panic(err)
	}
	k.byKid = map[string]crypto.PublicKey{
		"rs": &k.rsa.PublicKey, "ps": &k.rsa.PublicKey, "es": &k.ec.PublicKey,
		"es384": &k.ec384.PublicKey, "ed": k.ed.Public(),
	}
	k.algByID = map[string]string{"rs": RS256, "ps": PS256, "es": ES256, "es384": ES384, "ed": EdDSA}
	return k
})

// keyFunc serves the configured keys and records every kid it was asked for.
func (k *testKeys) keyFunc(seen *[]string) KeyFunc {
	return func(kid string) (crypto.PublicKey, string, bool) {
		if seen != nil {
			*seen = append(*seen, kid)
		}
		pub, ok := k.byKid[kid]
		return pub, k.algByID[kid], ok
	}
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

// validPayload returns claims valid for an hour.
func validPayload(t testing.TB) []byte {
	return mustJSON(t, map[string]any{
		"iss": "https://idp.example", "sub": "alice", "aud": "api",
		"exp": time.Now().Add(time.Hour).Unix(), "iat": time.Now().Unix(),
	})
}

// rawSign signs arbitrary header and payload bytes with our own code, so that
// tests can produce validly signed tokens with hostile headers.
func rawSign(t testing.TB, alg string, key crypto.Signer, header, payload []byte) string {
	t.Helper()
	input := b64(header) + "." + b64(payload)
	return input + "." + b64(rawSig(t, alg, key, []byte(input)))
}

func rawSig(t testing.TB, alg string, key any, input []byte) []byte {
	t.Helper()
	d := sha256.Sum256(input)
	switch alg {
	case RS256:
		s, err := rsa.SignPKCS1v15(rand.Reader, key.(*rsa.PrivateKey), crypto.SHA256, d[:])
		if err != nil {
			t.Fatal(err)
		}
		return s
	case ES256:
		r, s, err := ecdsa.Sign(rand.Reader, key.(*ecdsa.PrivateKey), d[:])
		if err != nil {
			t.Fatal(err)
		}
		out := make([]byte, 64)
		r.FillBytes(out[:32])
		s.FillBytes(out[32:])
		return out
	case EdDSA:
		return ed25519.Sign(key.(ed25519.PrivateKey), input)
	case "HS256":
		m := hmac.New(sha256.New, key.([]byte))
		m.Write(input)
		return m.Sum(nil)
	}
	t.Fatalf("rawSig: unsupported alg %s", alg)
	return nil
}

// joseSign signs payload with go-jose, the reference implementation.
func joseSign(t testing.TB, alg jose.SignatureAlgorithm, key any, kid, typ string, payload []byte) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithHeader("kid", kid)
	if typ != "" {
		opts = opts.WithType(jose.ContentType(typ))
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := s.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// fixedLen returns n as a big-endian byte slice of length size.
func fixedLen(n *big.Int, size int) []byte {
	out := make([]byte, size)
	n.FillBytes(out)
	return out
}
