package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// attack is one attacker input: a token built against a fake issuer whose
// configured keys are keyRSA, keyEC and keyEd.
type attack struct {
	name  string
	token func(t *testing.T, f *fakeIssuer) string
}

func hdr(t *testing.T, m map[string]any) []byte { return mustJSON(t, m) }

// withClaims returns valid claims for f with edits applied (nil deletes).
func withClaims(f *fakeIssuer, edits map[string]any) map[string]any {
	c := claimsFor(f.url())
	for k, v := range edits {
		if v == nil {
			delete(c, k)
			continue
		}
		c[k] = v
	}
	return c
}

// rawPayload signs a hand-written payload with the EC key under a valid header.
func rawPayload(payload string) func(t *testing.T, f *fakeIssuer) string {
	return func(t *testing.T, f *fakeIssuer) string {
		k := keyEC()
		return rawToken(t, k.alg, k.priv, hdr(t, map[string]any{"alg": k.alg, "kid": k.kid, "typ": "at+jwt"}), []byte(payload))
	}
}

// edited mints a valid EC token with claim edits.
func edited(edits map[string]any) func(t *testing.T, f *fakeIssuer) string {
	return func(t *testing.T, f *fakeIssuer) string { return mint(t, keyEC(), withClaims(f, edits)) }
}

// withHeader signs valid claims with the EC key under a hand-written header.
func withHeader(h map[string]any) func(t *testing.T, f *fakeIssuer) string {
	return func(t *testing.T, f *fakeIssuer) string {
		k := keyEC()
		return rawToken(t, k.alg, k.priv, hdr(t, h), mustJSON(t, claimsFor(f.url())))
	}
}

func segments(tok string) (string, string, string) {
	p := strings.SplitN(tok, ".", 3)
	return p[0], p[1], p[2]
}

func jwtAttacks() []attack {
	ec := func(extra map[string]any) map[string]any {
		h := map[string]any{"alg": "ES256", "kid": "es-1", "typ": "at+jwt"}
		for k, v := range extra {
			h[k] = v
		}
		return h
	}
	pubPEM := func(t *testing.T, nl bool) []byte {
		der, err := x509.MarshalPKIXPublicKey(keyEC().priv.Public())
		if err != nil {
			t.Fatal(err)
		}
		b := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
		if !nl {
			b = []byte(strings.TrimRight(string(b), "\n"))
		}
		return b
	}
	hsWith := func(key func(t *testing.T) []byte, kid string) func(t *testing.T, f *fakeIssuer) string {
		return func(t *testing.T, f *fakeIssuer) string {
			return rawToken(t, "HS256", key(t), hdr(t, map[string]any{"alg": "HS256", "kid": kid, "typ": "at+jwt"}), mustJSON(t, claimsFor(f.url())))
		}
	}
	unsigned := func(alg string, sig string) func(t *testing.T, f *fakeIssuer) string {
		return func(t *testing.T, f *fakeIssuer) string {
			return b64(hdr(t, map[string]any{"alg": alg, "kid": "es-1", "typ": "at+jwt"})) + "." + b64(mustJSON(t, claimsFor(f.url()))) + "." + sig
		}
	}
	valid := func(t *testing.T, f *fakeIssuer) string { return mint(t, keyEC(), claimsFor(f.url())) }
	resign := func(mut func(h, p, s string) string) func(t *testing.T, f *fakeIssuer) string {
		return func(t *testing.T, f *fakeIssuer) string { return mut(segments(valid(t, f))) }
	}
	now := time.Now()
	var a []attack
	add := func(name string, fn func(t *testing.T, f *fakeIssuer) string) { a = append(a, attack{name, fn}) }

	add("JWT-A01/none-unsigned", unsigned("none", ""))
	add("JWT-A01/none-with-signature", unsigned("none", b64([]byte("sig"))))
	for _, v := range []string{"None", "NONE", "nOnE"} {
		add("JWT-A02/"+v, unsigned(v, ""))
	}
	add("JWT-A03/empty-signature", resign(func(h, p, _ string) string { return h + "." + p + "." }))
	add("JWT-A04/hs256-pem-newline", hsWith(func(t *testing.T) []byte { return pubPEM(t, true) }, "es-1"))
	add("JWT-A04/hs256-pem-no-newline", hsWith(func(t *testing.T) []byte { return pubPEM(t, false) }, "es-1"))
	add("JWT-A04/hs256-der", hsWith(func(t *testing.T) []byte {
		der, _ := x509.MarshalPKIXPublicKey(keyEC().priv.Public())
		return der
	}, "es-1"))
	add("JWT-A04/hs256-jwk-text", hsWith(func(t *testing.T) []byte {
		b, _ := json.Marshal(jose.JSONWebKey{Key: keyEC().priv.Public(), KeyID: "es-1"})
		return b
	}, "es-1"))
	add("JWT-A04/hs256-rsa-pem", hsWith(func(t *testing.T) []byte {
		der, _ := x509.MarshalPKIXPublicKey(keyRSA().priv.Public())
		return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	}, "rs-1"))
	for _, alg := range []string{"RS256", "PS256", "ES384", "EdDSA", "HS256"} {
		add("JWT-A05/es256-key-token-says-"+alg, withHeader(ec(map[string]any{"alg": alg})))
	}
	add("JWT-A05/alg-missing", withHeader(map[string]any{"kid": "es-1", "typ": "at+jwt"}))
	add("JWT-A05/alg-empty", withHeader(ec(map[string]any{"alg": ""})))
	add("JWT-A05/alg-array", withHeader(ec(map[string]any{"alg": []string{"ES256"}})))
	add("JWT-A05/alg-number", withHeader(ec(map[string]any{"alg": 256})))
	add("JWT-A06/psychic-zero-signature", resign(func(h, p, _ string) string { return h + "." + p + "." + b64(make([]byte, 64)) }))
	add("JWT-A06/r-equals-s-equals-n", resign(func(h, p, _ string) string {
		n := keyEC().priv.(*ecdsa.PrivateKey).Curve.Params().N.FillBytes(make([]byte, 32))
		return h + "." + p + "." + b64(append(append([]byte{}, n...), n...))
	}))
	add("JWT-A06/der-encoded", resign(func(h, p, s string) string {
		raw, _ := jwtDecode(s)
		der := derSig(raw)
		return h + "." + p + "." + b64(der)
	}))
	add("JWT-A06/truncated", resign(func(h, p, s string) string { raw, _ := jwtDecode(s); return h + "." + p + "." + b64(raw[:63]) }))
	add("JWT-A06/bit-flipped", resign(func(h, p, s string) string {
		raw, _ := jwtDecode(s)
		raw[10] ^= 1
		return h + "." + p + "." + b64(raw)
	}))
	add("JWT-A06/payload-swapped", func(t *testing.T, f *fakeIssuer) string {
		h, _, s := segments(valid(t, f))
		_, p2, _ := segments(mint(t, keyEC(), withClaims(f, map[string]any{"sub": "usr_admin"})))
		return h + "." + p2 + "." + s
	})
	add("JWT-A07/jwe-five-segments", func(t *testing.T, f *fakeIssuer) string {
		return b64([]byte(`{"alg":"RSA-OAEP","enc":"A256GCM","kid":"rs-1"}`)) + ".a.b.c.d"
	})
	add("JWT-B01/embedded-jwk", func(t *testing.T, f *fakeIssuer) string {
		att := testKeyMaterial()["ec-attacker"]
		jwk, _ := json.Marshal(jose.JSONWebKey{Key: att.Public()})
		return rawToken(t, "ES256", att, hdr(t, ec(map[string]any{"jwk": json.RawMessage(jwk)})), mustJSON(t, claimsFor(f.url())))
	})
	add("JWT-B03/x5c-unanchored", withHeader(ec(map[string]any{"x5c": []string{"MIIB"}})))
	for name, kid := range map[string]any{"path": "../../../../dev/null", "sql": "x' UNION SELECT '1';--", "shell": "|sleep 10",
		"empty": "", "10kb": strings.Repeat("k", 10<<10), "nul": "es-1\x00", "crlf": "es-1\r\n", "number": 1} {
		add("JWT-B04/kid-"+name, withHeader(ec(map[string]any{"kid": kid})))
	}
	add("JWT-B07/crit-unknown", withHeader(ec(map[string]any{"crit": []string{"exp2"}, "exp2": 1})))
	add("JWT-B07/crit-empty", withHeader(ec(map[string]any{"crit": []string{}})))
	add("JWT-B07/crit-b64", withHeader(ec(map[string]any{"crit": []string{"b64"}, "b64": false})))
	add("JWT-C01/exp-missing", edited(map[string]any{"exp": nil}))
	add("JWT-C01/exp-string", edited(map[string]any{"exp": "9999999999"}))
	add("JWT-C01/exp-1e300", rawPayload(`{"iss":"ISS","aud":"`+testAudience+`","exp":1e300}`))
	add("JWT-C01/exp-negative", edited(map[string]any{"exp": -1}))
	add("JWT-C01/exp-null", rawPayload(`{"aud":"`+testAudience+`","exp":null}`))
	add("JWT-C01/exp-maxint", rawPayload(`{"aud":"`+testAudience+`","exp":9223372036854775807}`))
	add("JWT-C01/exp-past-leeway-plus-1s", edited(map[string]any{"exp": now.Add(-DefaultLeeway - 2*time.Second).Unix()}))
	add("JWT-C01/nbf-future-beyond-leeway", edited(map[string]any{"nbf": now.Add(DefaultLeeway + 5*time.Second).Unix()}))
	add("JWT-C01/iat-future-beyond-leeway", edited(map[string]any{"iat": now.Add(DefaultLeeway + 5*time.Second).Unix()}))
	add("JWT-C02/iss-missing", edited(map[string]any{"iss": nil}))
	add("JWT-C02/iss-array", func(t *testing.T, f *fakeIssuer) string {
		return mint(t, keyEC(), withClaims(f, map[string]any{"iss": []string{f.url()}}))
	})
	add("JWT-C02/iss-trailing-slash", func(t *testing.T, f *fakeIssuer) string {
		return mint(t, keyEC(), withClaims(f, map[string]any{"iss": f.url() + "/"}))
	})
	add("JWT-C02/iss-other-case", func(t *testing.T, f *fakeIssuer) string {
		return mint(t, keyEC(), withClaims(f, map[string]any{"iss": strings.ToUpper(f.url())}))
	})
	add("JWT-C02/iss-suffix", func(t *testing.T, f *fakeIssuer) string {
		return mint(t, keyEC(), withClaims(f, map[string]any{"iss": f.url() + ".evil"}))
	})
	for name, aud := range map[string]any{"empty-array": []string{}, "empty-string": "", "number": 5, "mixed": []any{"a", 5},
		"other-case": []string{strings.ToUpper(testAudience)}, "other-api": "https://api.payments.example"} {
		add("JWT-C03/aud-"+name, edited(map[string]any{"aud": aud}))
	}
	add("JWT-C03/aud-missing", edited(map[string]any{"aud": nil}))
	add("JWT-C04/scope-array", edited(map[string]any{"scope": []string{"orders:read"}}))
	add("JWT-C04/scope-and-scp", edited(map[string]any{"scp": []string{"admin"}}))
	add("JWT-C04/roles-string", edited(map[string]any{"roles": "admin"}))
	add("JWT-C04/tenant-array", edited(map[string]any{"tenant": []string{"acme"}}))
	for name, typ := range map[string]any{"id-token-JWT": "JWT", "logout": "logout+jwt", "dpop": "dpop+jwt", "missing": nil} {
		add("JWT-D01/typ-"+name, func(t *testing.T, f *fakeIssuer) string {
			h := ec(nil)
			if typ == nil {
				delete(h, "typ")
			} else {
				h["typ"] = typ
			}
			k := keyEC()
			return rawToken(t, k.alg, k.priv, hdr(t, h), mustJSON(t, claimsFor(f.url())))
		})
	}
	add("JWT-D01/id-token-audience", edited(map[string]any{"aud": "demo-web"}))
	add("JWT-D01/refresh-token-opaque", func(*testing.T, *fakeIssuer) string { return "ghr_0123456789abcdefABCDEF" })
	add("JWT-D01/json-serialized-jws", func(t *testing.T, f *fakeIssuer) string {
		h, p, s := segments(valid(t, f))
		b, _ := json.Marshal(map[string]string{"protected": h, "payload": p, "signature": s})
		return string(b)
	})
	add("JWT-E01/padding", resign(func(h, p, s string) string { return h + "=." + p + "." + s }))
	add("JWT-E01/std-alphabet", resign(func(h, p, s string) string {
		return h + "." + p + "." + strings.NewReplacer("-", "+", "_", "/").Replace(s) + "+/"
	}))
	add("JWT-E01/non-canonical-trailing-bits", resign(func(h, p, s string) string { return h + "." + p + "." + flipTrailingBits(s) }))
	add("JWT-E01/crlf-inside", resign(func(h, p, s string) string { return h + "." + p[:4] + "\r\n" + p[4:] + "." + s }))
	add("JWT-E01/space-inside", resign(func(h, p, s string) string { return h + "." + p + " ." + s }))
	for name, tok := range map[string]string{"two": "a.b", "four": "a.b.c.d", "dots": "..", "one": "abc"} {
		add("JWT-E01/segments-"+name, func(*testing.T, *fakeIssuer) string { return tok })
	}
	add("JWT-E02/duplicate-alg", func(t *testing.T, f *fakeIssuer) string {
		k := keyEC()
		return rawToken(t, k.alg, k.priv, []byte(`{"alg":"ES256","alg":"none","kid":"es-1","typ":"at+jwt"}`), mustJSON(t, claimsFor(f.url())))
	})
	add("JWT-E02/duplicate-sub", func(t *testing.T, f *fakeIssuer) string {
		c := mustJSON(t, claimsFor(f.url()))
		return rawPayload(string(c[:len(c)-1])+`,"sub":"usr_admin"}`)(t, f)
	})
	add("JWT-E02/case-variant-sub", func(t *testing.T, f *fakeIssuer) string {
		c := mustJSON(t, claimsFor(f.url()))
		return rawPayload(string(c[:len(c)-1])+`,"Sub":"usr_admin"}`)(t, f)
	})
	add("JWT-E02/trailing-garbage", func(t *testing.T, f *fakeIssuer) string {
		return rawPayload(string(mustJSON(t, claimsFor(f.url())))+`{}`)(t, f)
	})
	add("JWT-E02/payload-array", rawPayload(`["not","an","object"]`))
	add("JWT-E02/payload-not-utf8", rawPayload("{\"sub\":\"\xff\"}"))
	add("JWT-F01/million-dots", func(*testing.T, *fakeIssuer) string { return strings.Repeat(".", 1_000_000) })
	add("JWT-F01/1mb-header", func(t *testing.T, f *fakeIssuer) string {
		return withHeader(ec(map[string]any{"x": strings.Repeat("a", 1<<20)}))(t, f)
	})
	add("JWT-F01/deep-json", rawPayload(strings.Repeat(`{"a":`, 5000)+"1"+strings.Repeat("}", 5000)))
	add("JWT-F01/million-aud", func(t *testing.T, f *fakeIssuer) string {
		return rawPayload(`{"aud":[`+strings.Repeat(`"a",`, 1_000_000)+`"`+testAudience+`"]}`)(t, f)
	})
	return a
}

func jwtDecode(s string) ([]byte, error) { return base64RawURL.DecodeString(s) }

// derSig encodes a raw r||s ECDSA signature as ASN.1 DER.
func derSig(raw []byte) []byte {
	type sig struct{ R, S []byte }
	enc := func(b []byte) []byte {
		for len(b) > 1 && b[0] == 0 {
			b = b[1:]
		}
		if b[0]&0x80 != 0 {
			b = append([]byte{0}, b...)
		}
		return append([]byte{0x02, byte(len(b))}, b...)
	}
	body := append(enc(raw[:32]), enc(raw[32:])...)
	return append([]byte{0x30, byte(len(body))}, body...)
}

// flipTrailingBits changes the unused low bits of the last base64url
// character: a different string that Go's lenient decoder maps to the same
// bytes.
func flipTrailingBits(s string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	last := strings.IndexByte(alphabet, s[len(s)-1])
	return s[:len(s)-1] + string(alphabet[last^1])
}

// TestVerifierRejectsAttacks runs every JWT-* attacker input of the security
// checklist through a Verifier configured with RS256, ES256 and EdDSA keys.
// Every one must fail with ErrInvalidToken, and none may reach a
// non-configured URL.
func TestVerifierRejectsAttacks(t *testing.T) {
	f := newFakeIssuer(t, keyRSA(), keyEC(), keyEd())
	v := newTestVerifier(t, f, func(ic *IssuerConfig) { ic.RefetchInterval = time.Hour })
	// Positive control: the unmodified token verifies.
	good := mint(t, keyEC(), claimsFor(f.url()))
	if _, err := v.Authenticate(context.Background(), good); err != nil {
		t.Fatalf("positive control: %v", err)
	}
	for _, a := range jwtAttacks() {
		t.Run(a.name, func(t *testing.T) {
			tok := a.token(t, f)
			start := time.Now()
			c, err := v.Authenticate(context.Background(), tok)
			if err == nil {
				t.Fatalf("accepted: %+v", c)
			}
			if !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("error %v does not wrap ErrInvalidToken", err)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Fatalf("took %v", d)
			}
		})
	}
}

// TestVerifierNeverFollowsHeaderURLs: jku and x5u name an attacker's server;
// the token is refused and that server never hears from us (JWT-B02).
func TestVerifierNeverFollowsHeaderURLs(t *testing.T) {
	var hits atomic.Int64
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer evil.Close()
	f := newFakeIssuer(t, keyEC())
	v := newTestVerifier(t, f, nil)
	att := testKeyMaterial()["ec-attacker"]
	for _, c := range []struct{ name, member, url string }{
		{"JWT-B02/jku-attacker", "jku", evil.URL + "/jwks"},
		{"JWT-B02/x5u-attacker", "x5u", evil.URL + "/cert"},
		{"JWT-B02/jku-metadata", "jku", "http://169.254.169.254/latest/meta-data/"},
		{"JWT-B02/jku-file", "jku", "file:///etc/passwd"},
	} {
		t.Run(c.name, func(t *testing.T) {
			tok := rawToken(t, "ES256", att, mustJSON(t, map[string]any{"alg": "ES256", "kid": "att", "typ": "at+jwt", c.member: c.url}), mustJSON(t, claimsFor(f.url())))
			if _, err := v.Authenticate(context.Background(), tok); !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("err = %v", err)
			}
		})
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("attacker server got %d requests", n)
	}
}
