package auth

// Tests of keyset_disk.go: the JWKS document parser (table and fuzz target),
// the refresh period, and the on-disk cache. Shared key material and JWK
// helpers live here too.

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/gatehouse/gatehouse/sdk/jwtx"
)

// ksTestKeys is the key material of the key set tests, generated once.
type ksTestKeys struct {
	rsa, rsa2, rsa1024 *rsa.PrivateKey
	ec, ec384, ec521   *ecdsa.PrivateKey
	ed                 ed25519.PrivateKey
}

var ksKeys = sync.OnceValue(func() *ksTestKeys {
	must := func(err error) {
		if err != nil {
			panic(err)
		}
	}
	var k ksTestKeys
	var err error
	k.rsa, err = rsa.GenerateKey(rand.Reader, 2048)
	must(err)
	k.rsa2, err = rsa.GenerateKey(rand.Reader, 2048)
	must(err)
	k.rsa1024, err = rsa.GenerateKey(rand.Reader, 1024)
	must(err)
	k.ec, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(err)
	k.ec384, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	must(err)
	k.ec521, err = ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	must(err)
	_, k.ed, err = ed25519.GenerateKey(rand.Reader)
	must(err)
	return &k
})

var ksAllAlgs = []string{jwtx.RS256, jwtx.PS256, jwtx.ES256, jwtx.ES384, jwtx.EdDSA}

// ksJWK marshals one JWK (public or private, as given) to JSON.
func ksJWK(t testing.TB, kid, alg string, key any) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(jose.JSONWebKey{Key: key, KeyID: kid, Algorithm: alg, Use: "sig"})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// ksDoc builds a JWKS document from marshalled JWKs.
func ksDoc(t testing.TB, keys ...json.RawMessage) []byte {
	t.Helper()
	if keys == nil {
		keys = []json.RawMessage{}
	}
	b, err := json.Marshal(map[string]any{"keys": keys})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// ksStdDoc is the usual three-key document: rsa (RS256), ec (ES256), ed (EdDSA).
func ksStdDoc(t testing.TB) []byte {
	k := ksKeys()
	return ksDoc(t, ksJWK(t, "rsa", "RS256", k.rsa.Public()), ksJWK(t, "ec", "", k.ec.Public()), ksJWK(t, "ed", "", k.ed.Public()))
}

// ksEdit returns jwk with members changed (nil value deletes the member).
func ksEdit(t testing.TB, jwk json.RawMessage, edits map[string]any) json.RawMessage {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(jwk, &m); err != nil {
		t.Fatal(err)
	}
	for k, v := range edits {
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseJWKS(t *testing.T) {
	k := ksKeys()
	rsaPub := ksJWK(t, "rsa", "", k.rsa.Public())
	ecPub := ksJWK(t, "ec", "", k.ec.Public())
	edPub := ksJWK(t, "ed", "", k.ed.Public())
	var ecMap map[string]any
	if err := json.Unmarshal(ecPub, &ecMap); err != nil {
		t.Fatal(err)
	}
	doc := func(keys ...json.RawMessage) []byte { return ksDoc(t, keys...) }
	for _, tc := range []struct {
		name    string
		doc     []byte
		allowed []string
		want    map[string]string // kid -> alg
		wantErr error
	}{
		{"inferred-algorithms", doc(rsaPub, ecPub, edPub, ksJWK(t, "ec384", "", k.ec384.Public())), nil,
			map[string]string{"rsa": jwtx.RS256, "ec": jwtx.ES256, "ed": jwtx.EdDSA, "ec384": jwtx.ES384}, nil},
		{"explicit-PS256", doc(ksJWK(t, "ps", "PS256", k.rsa.Public()), ecPub), nil,
			map[string]string{"ps": jwtx.PS256, "ec": jwtx.ES256}, nil},
		{"use-absent-accepted", doc(ksEdit(t, ecPub, map[string]any{"use": nil})), nil, map[string]string{"ec": jwtx.ES256}, nil},
		{"key-ops-verify-accepted", doc(ksEdit(t, ecPub, map[string]any{"key_ops": []string{"verify"}})), nil, map[string]string{"ec": jwtx.ES256}, nil},
		{"unknown-members-ignored", doc(ksEdit(t, ecPub, map[string]any{"x-custom": 5}), edPub), nil,
			map[string]string{"ec": jwtx.ES256, "ed": jwtx.EdDSA}, nil},

		{"JWT-G01/private-rsa-ignored", doc(ksJWK(t, "rsa", "RS256", k.rsa), ecPub), nil, map[string]string{"ec": jwtx.ES256}, nil},
		{"JWT-G01/private-ec-ignored", doc(ksJWK(t, "ecp", "", k.ec), edPub), nil, map[string]string{"ed": jwtx.EdDSA}, nil},
		{"JWT-G01/private-ed25519-ignored", doc(ksJWK(t, "edp", "", k.ed), ecPub), nil, map[string]string{"ec": jwtx.ES256}, nil},
		{"JWT-G01/private-member-case-variant-ignored", doc(ksEdit(t, ecPub, map[string]any{"D": "AAAA"}), edPub), nil,
			map[string]string{"ed": jwtx.EdDSA}, nil},
		{"JWT-G01/only-private-key", doc(ksJWK(t, "ecp", "", k.ec)), nil, nil, errJWKSNoKeys},
		{"JWT-G01/oct-key-ignored", doc(ksJWK(t, "hs", "HS256", []byte(strings.Repeat("s", 32))), ecPub),
			[]string{jwtx.HS256, jwtx.ES256}, map[string]string{"ec": jwtx.ES256}, nil},
		{"JWT-B06/alg-not-allowed", doc(rsaPub, ecPub, edPub), []string{jwtx.ES256}, map[string]string{"ec": jwtx.ES256}, nil},
		{"JWT-B06/explicit-alg-not-allowed", doc(ksJWK(t, "ps", "PS256", k.rsa.Public()), ecPub), []string{jwtx.RS256, jwtx.ES256},
			map[string]string{"ec": jwtx.ES256}, nil},
		{"JWT-A05/alg-does-not-fit-key", doc(ksJWK(t, "rs-on-ec", "RS256", k.ec.Public()), ksJWK(t, "es384-on-p256", "ES384", k.ec.Public()),
			ksJWK(t, "hs-on-rsa", "HS256", k.rsa.Public()), ksJWK(t, "none", "none", k.ed.Public()), edPub), nil,
			map[string]string{"ed": jwtx.EdDSA}, nil},
		{"rsa-1024-ignored", doc(ksJWK(t, "weak", "RS256", k.rsa1024.Public()), ecPub), nil, map[string]string{"ec": jwtx.ES256}, nil},
		{"p521-ignored", doc(ksJWK(t, "p521", "", k.ec521.Public()), ecPub), nil, map[string]string{"ec": jwtx.ES256}, nil},
		{"duplicate-kid-both-ignored", doc(ksJWK(t, "dup", "", k.ec.Public()), ksJWK(t, "dup", "", k.ed.Public()), rsaPub), nil,
			map[string]string{"rsa": jwtx.RS256}, nil},
		{"duplicate-kid-only", doc(ksJWK(t, "dup", "", k.ec.Public()), ksJWK(t, "dup", "", k.ec.Public())), nil, nil, errJWKSNoKeys},
		{"JWT-G01/missing-kid-ignored", doc(ksJWK(t, "", "", k.ec.Public()), edPub), nil, map[string]string{"ed": jwtx.EdDSA}, nil},
		{"kid-not-a-string-ignored", doc(ksEdit(t, ecPub, map[string]any{"kid": 5}), edPub), nil, map[string]string{"ed": jwtx.EdDSA}, nil},
		{"JWT-B04/long-kid-ignored", doc(ksEdit(t, ecPub, map[string]any{"kid": strings.Repeat("k", 10000)}), edPub), nil,
			map[string]string{"ed": jwtx.EdDSA}, nil},
		{"JWT-B04/odd-kids-are-opaque", doc(ksEdit(t, ecPub, map[string]any{"kid": "../../../../dev/null"}), ksEdit(t, edPub, map[string]any{"kid": "x' UNION SELECT '1';--"})), nil,
			map[string]string{"../../../../dev/null": jwtx.ES256, "x' UNION SELECT '1';--": jwtx.EdDSA}, nil},
		{"use-enc-ignored", doc(ksEdit(t, rsaPub, map[string]any{"use": "enc"}), ecPub), nil, map[string]string{"ec": jwtx.ES256}, nil},
		{"key-ops-without-verify-ignored", doc(ksEdit(t, rsaPub, map[string]any{"key_ops": []string{"encrypt"}}), ecPub), nil,
			map[string]string{"ec": jwtx.ES256}, nil},
		{"case-variant-kty-ignored", doc(ksEdit(t, ecPub, map[string]any{"kty": nil, "KTY": "EC"}), edPub), nil,
			map[string]string{"ed": jwtx.EdDSA}, nil},
		{"point-not-on-curve-ignored", doc(ksEdit(t, ecPub, map[string]any{"x": ecMap["y"]}), edPub), nil, map[string]string{"ed": jwtx.EdDSA}, nil},
		{"not-an-object-ignored", doc(json.RawMessage(`"ec"`), json.RawMessage(`null`), json.RawMessage(`[1]`), edPub), nil,
			map[string]string{"ed": jwtx.EdDSA}, nil},

		{"RL-02/empty", []byte(`{"keys":[]}`), nil, nil, errJWKSNoKeys},
		{"keys-missing", []byte(`{"Keys":[]}`), nil, nil, errJWKSDocument},
		{"keys-not-array", []byte(`{"keys":{}}`), nil, nil, errJWKSDocument},
		{"keys-null", []byte(`{"keys":null}`), nil, nil, errJWKSDocument},
		{"not-json", []byte(`keys`), nil, nil, errJWKSDocument},
		{"array-top-level", []byte(`[{"keys":[]}]`), nil, nil, errJWKSDocument},
		{"JWT-E02/trailing-data", append(doc(ecPub), []byte(`{}`)...), nil, nil, errJWKSDocument},
		{"JWT-E02/duplicate-member", []byte(`{"keys":[` + string(ecPub) + `],"keys":[]}`), nil, nil, errJWKSDocument},
		{"JWT-E02/duplicate-member-in-key", []byte(`{"keys":[` + strings.Replace(string(ecPub), `{`, `{"kid":"other",`, 1) + `]}`), nil, nil, errJWKSDocument},
		{"JWT-E02/case-variant-member", []byte(`{"keys":[` + strings.Replace(string(ecPub), `{`, `{"KID":"other",`, 1) + `]}`), nil, nil, errJWKSDocument},
		{"JWT-E02/invalid-utf8", []byte("{\"keys\":[],\"x\":\"\xff\"}"), nil, nil, errJWKSDocument},
		{"JWT-F01/deep-nesting", []byte(`{"keys":[],"x":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}`), nil, nil, errJWKSDocument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			allowed := tc.allowed
			if allowed == nil {
				allowed = ksAllAlgs
			}
			keys, _, err := parseJWKS(tc.doc, allowed)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) || keys != nil {
					t.Fatalf("got %d keys, err %v; want %v", len(keys), err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := make(map[string]string, len(keys))
			for kid, e := range keys {
				got[kid] = e.alg
				if e.key == nil {
					t.Fatalf("kid %q has no key", kid)
				}
			}
			if !maps.Equal(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func FuzzParseJWKS(f *testing.F) {
	k := ksKeys()
	f.Add(ksStdDoc(f))
	f.Add(ksDoc(f, ksJWK(f, "ps", "PS256", k.rsa.Public()), ksJWK(f, "e384", "", k.ec384.Public())))
	f.Add(ksDoc(f, ksJWK(f, "p", "", k.ec), ksJWK(f, "w", "", k.rsa1024.Public())))
	f.Add([]byte(`{"keys":[]}`))
	f.Add([]byte(`{"keys":[{"kty":"oct","kid":"a","k":"c2VjcmV0"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"a","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"EC","crv":"P-256","kid":"a","x":"","y":""}],"keys":1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		allowed := []string{jwtx.RS256, jwtx.ES256, jwtx.EdDSA}
		keys, _, err := parseJWKS(data, allowed)
		if err != nil {
			if keys != nil {
				t.Fatal("keys returned with an error")
			}
			return
		}
		if len(keys) == 0 {
			t.Fatal("empty key set without an error")
		}
		for kid, e := range keys {
			if kid == "" || len(kid) > jwksMaxKidLen || e.key == nil || !slices.Contains(allowed, e.alg) {
				t.Fatalf("bad entry kid=%q alg=%q", kid, e.alg)
			}
		}
	})
}

func TestKeySetRefreshPeriod(t *testing.T) {
	lo, hi := time.Minute, time.Hour
	for _, tc := range []struct {
		cc   string
		want time.Duration
	}{
		{"", hi},
		{"public", hi},
		{"max-age=300", 5 * time.Minute},
		{"public, max-age=300, must-revalidate", 5 * time.Minute},
		{"Max-Age=120", 2 * time.Minute},
		{"max-age=5", lo},
		{"max-age=0", lo},
		{"max-age=86400", hi},
		{"max-age=99999999999999999999", hi},
		{"max-age=-5", hi},
		{"max-age=abc", hi},
		{"no-store", lo},
		{"max-age=600, no-cache", lo},
	} {
		if got := jwksRefreshPeriod(tc.cc, lo, hi); got != tc.want {
			t.Errorf("jwksRefreshPeriod(%q) = %v, want %v", tc.cc, got, tc.want)
		}
	}
}

func TestKeySetDiskCache(t *testing.T) {
	keys := ksKeys()
	dir := t.TempDir()
	cache := filepath.Join(dir, "sub", "jwks.json")
	s := newKSServer(t, ksStdDoc(t))
	k1 := newTestKeySet(t, s, newKSClock(), func(c *keySetConfig) { c.CacheFile = cache })
	k1.start()
	ksEventually(t, "ready", k1.ready)
	ksEventually(t, "cache file", func() bool { _, err := os.Stat(cache); return err == nil })
	k1.close()

	fi, err := os.Stat(cache)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Fatalf("cache file mode %v, want 0600", perm)
	}
	data, err := os.ReadFile(cache)
	if err != nil {
		t.Fatal(err)
	}
	var wrapper jwksCacheFile
	if err := json.Unmarshal(data, &wrapper); err != nil || wrapper.Issuer != s.srv.URL || wrapper.FetchedAt.IsZero() {
		t.Fatalf("cache wrapper %+v, err %v", wrapper, err)
	}
	if bytes.Contains(data, []byte(`"d"`)) {
		t.Fatal("cache contains private key members")
	}
	if entries, _ := os.ReadDir(filepath.Dir(cache)); len(entries) != 1 {
		t.Fatalf("temp files left behind: %d entries", len(entries))
	}

	t.Run("RL-01/server-down-uses-cache", func(t *testing.T) {
		down := newKSServer(t, nil)
		down.set(func(s *ksServer) { s.status = http.StatusBadGateway })
		k := newTestKeySet(t, down, newKSClock(), func(c *keySetConfig) {
			c.Issuer, c.CacheFile, c.JWKSURL = s.srv.URL, cache, down.srv.URL+"/jwks"
		})
		k.start()
		if !k.ready() {
			t.Fatal("not ready right after start with a cache file")
		}
		ksAssertKey(t, k, "rsa", jwtx.RS256, keys.rsa.Public())
		ksAssertKey(t, k, "ed", jwtx.EdDSA, keys.ed.Public())
		ksEventually(t, "the network fetch to fail", func() bool { return k.lastError() != nil })
		ksAssertKey(t, k, "ec", jwtx.ES256, keys.ec.Public())
	})
	t.Run("JWT-B06/cache-of-another-issuer-ignored", func(t *testing.T) {
		down := newKSServer(t, nil)
		down.set(func(s *ksServer) { s.status = http.StatusBadGateway })
		k := newTestKeySet(t, down, newKSClock(), func(c *keySetConfig) { c.CacheFile = cache })
		k.start()
		if k.ready() {
			t.Fatal("ready from another issuer's cache")
		}
	})
	for _, tc := range []struct{ name, content string }{
		{"corrupt", "{not json"},
		{"empty-file", ""},
		{"empty-set", `{"issuer":"` + s.srv.URL + `","fetched_at":"2026-01-01T00:00:00Z","jwks":{"keys":[]}}`},
		{"private-keys-only", `{"issuer":"` + s.srv.URL + `","jwks":` + string(ksDoc(t, ksJWK(t, "x", "", keys.ec))) + `}`},
	} {
		t.Run("cache-"+tc.name+"-ignored", func(t *testing.T) {
			bad := filepath.Join(t.TempDir(), "jwks.json")
			if err := os.WriteFile(bad, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			down := newKSServer(t, nil)
			down.set(func(s *ksServer) { s.status = http.StatusBadGateway })
			k := newTestKeySet(t, down, newKSClock(), func(c *keySetConfig) {
				c.Issuer, c.CacheFile, c.JWKSURL = s.srv.URL, bad, down.srv.URL+"/jwks"
			})
			k.start()
			if k.ready() {
				t.Fatal("ready from a bad cache file")
			}
			ksEventually(t, "the network fetch to fail", func() bool { return k.lastError() != nil })
		})
	}
}
