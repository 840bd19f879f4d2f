package jwtx

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/go-jose/go-jose/v4"
)

func TestVerifyValid(t *testing.T) {
	k := loadKeys()
	payload := validPayload(t)
	tests := []struct {
		name string
		alg  jose.SignatureAlgorithm
		key  any
		kid  string
		typ  string
	}{
		{"RS256", jose.RS256, k.rsa, "rs", "at+jwt"},
		{"PS256", jose.PS256, k.rsa, "ps", "application/at+jwt"},
		{"ES256", jose.ES256, k.ec, "es", "AT+JWT"},
		{"ES384", jose.ES384, k.ec384, "es384", "at+jwt"},
		{"EdDSA", jose.EdDSA, k.ed, "ed", "at+jwt"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok := joseSign(t, tc.alg, tc.key, tc.kid, tc.typ, payload)
			h, got, err := Verify(tok, k.keyFunc(nil), Options{Typ: []string{"at+jwt"}})
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if h.Alg != string(tc.alg) || h.Kid != tc.kid || h.Typ != tc.typ {
				t.Errorf("header = %+v", h)
			}
			if string(got) != string(payload) {
				t.Errorf("payload = %s", got)
			}
		})
	}
	t.Run("no typ policy accepts missing typ", func(t *testing.T) {
		tok := joseSign(t, jose.ES256, k.ec, "es", "", payload)
		if _, _, err := Verify(tok, k.keyFunc(nil), Options{}); err != nil {
			t.Fatal(err)
		}
	})
}

type attack struct {
	name  string
	token string
	opt   Options
	want  error
}

func runAttacks(t *testing.T, cases []attack) {
	t.Helper()
	k := loadKeys()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h, p, err := Verify(tc.token, k.keyFunc(nil), tc.opt)
			if err == nil {
				t.Fatalf("accepted: header %+v payload %q", h, p)
			}
			if !errors.Is(err, tc.want) {
				t.Errorf("err = %v, want %v", err, tc.want)
			}
			if p != nil || h != (Header{}) {
				t.Errorf("returned data with an error")
			}
			if len(tc.token) > 20 && strings.Contains(err.Error(), tc.token[:20]) {
				t.Errorf("error echoes the token: %v", err)
			}
		})
	}
}

func hdr(alg, kid string, extra string) []byte {
	s := `{"alg":"` + alg + `","kid":"` + kid + `"`
	if extra != "" {
		s += "," + extra
	}
	return []byte(s + "}")
}

func TestVerifyAttacks(t *testing.T) {
	k := loadKeys()
	p := validPayload(t)
	valid := rawSign(t, ES256, k.ec, hdr(ES256, "es", ""), p)
	dot := strings.LastIndexByte(valid, '.')
	input, sig := valid[:dot], valid[dot+1:]
	sigBytes, _ := base64Decode(sig)

	pubDER, _ := x509.MarshalPKIXPublicKey(&k.rsa.PublicKey)
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	pubJWK, _ := json.Marshal(jose.JSONWebKey{Key: &k.rsa.PublicKey, KeyID: "rs"})
	hs := func(secret []byte) string {
		in := b64(hdr("HS256", "rs", "")) + "." + b64(p)
		return in + "." + b64(rawSig(t, "HS256", secret, []byte(in)))
	}
	withSig := func(s []byte) string { return input + "." + b64(s) }
	n := k.ec.Curve.Params().N
	r, s, _ := ecdsa.Sign(rand.Reader, k.ec, sha256d(input))
	der, _ := asn1.Marshal(struct{ R, S *big.Int }{r, s})
	flipped := append([]byte(nil), sigBytes...)
	flipped[10] ^= 1
	other := rawSign(t, ES256, k.ec, hdr(ES256, "es", ""), []byte(`{"sub":"admin","exp":9999999999}`))
	otherPayload := other[strings.IndexByte(other, '.')+1 : strings.LastIndexByte(other, '.')]
	attackerJWK, _ := json.Marshal(jose.JSONWebKey{Key: &k.other.PublicKey})

	cases := []attack{
		{"JWT-A01/none-without-signature", b64([]byte(`{"alg":"none","kid":"es"}`)) + "." + b64(p) + ".", Options{}, ErrSignature},
		{"JWT-A01/none-with-signature", rawSign(t, ES256, k.ec, hdr("none", "es", ""), p), Options{}, ErrAlgorithm},
		{"JWT-A01/none-no-kid", b64([]byte(`{"alg":"none"}`)) + "." + b64(p) + "." + sig, Options{}, ErrHeader},
		{"JWT-A02/None", rawSign(t, ES256, k.ec, hdr("None", "es", ""), p), Options{}, ErrAlgorithm},
		{"JWT-A02/NONE", rawSign(t, ES256, k.ec, hdr("NONE", "es", ""), p), Options{}, ErrAlgorithm},
		{"JWT-A02/nOnE", rawSign(t, ES256, k.ec, hdr("nOnE", "es", ""), p), Options{}, ErrAlgorithm},
		{"JWT-A03/empty-signature", input + ".", Options{}, ErrSignature},
		{"JWT-A04/HS256-key-is-PEM", hs(pubPEM), Options{}, ErrAlgorithm},
		{"JWT-A04/HS256-key-is-PEM-no-newline", hs([]byte(strings.TrimSuffix(string(pubPEM), "\n"))), Options{}, ErrAlgorithm},
		{"JWT-A04/HS256-key-is-DER", hs(pubDER), Options{}, ErrAlgorithm},
		{"JWT-A04/HS256-key-is-JWK", hs(pubJWK), Options{}, ErrAlgorithm},
		{"JWT-A05/RS256-on-EC-key", rawSign(t, ES256, k.ec, hdr(RS256, "es", ""), p), Options{}, ErrAlgorithm},
		{"JWT-A05/PS256-on-EC-key", rawSign(t, ES256, k.ec, hdr(PS256, "es", ""), p), Options{}, ErrAlgorithm},
		{"JWT-A05/ES384-on-P256-key", rawSign(t, ES256, k.ec, hdr(ES384, "es", ""), p), Options{}, ErrAlgorithm},
		{"JWT-A05/EdDSA-on-EC-key", rawSign(t, ES256, k.ec, hdr(EdDSA, "es", ""), p), Options{}, ErrAlgorithm},
		{"JWT-A05/lower-case-es256", rawSign(t, ES256, k.ec, hdr("es256", "es", ""), p), Options{}, ErrAlgorithm},
		{"JWT-A05/RS256-sig-with-ES256-label-on-RSA-key", rawSign(t, RS256, k.rsa, hdr(ES256, "rs", ""), p), Options{}, ErrAlgorithm},
		{"JWT-A05/alg-missing", rawSign(t, ES256, k.ec, []byte(`{"kid":"es"}`), p), Options{}, ErrAlgorithm},
		{"JWT-A05/alg-empty", rawSign(t, ES256, k.ec, hdr("", "es", ""), p), Options{}, ErrAlgorithm},
		{"JWT-A05/alg-array", rawSign(t, ES256, k.ec, []byte(`{"alg":["ES256"],"kid":"es"}`), p), Options{}, ErrHeader},
		{"JWT-A05/alg-number", rawSign(t, ES256, k.ec, []byte(`{"alg":256,"kid":"es"}`), p), Options{}, ErrHeader},
		{"JWT-A05/alg-null", rawSign(t, ES256, k.ec, []byte(`{"alg":null,"kid":"es"}`), p), Options{}, ErrHeader},
		{"JWT-A06/psychic-zero-signature", withSig(make([]byte, 64)), Options{}, ErrSignature},
		{"JWT-A06/r-equals-s-equals-n", withSig(append(fixedLen(n, 32), fixedLen(n, 32)...)), Options{}, ErrSignature},
		{"JWT-A06/r-zero-s-valid", withSig(append(make([]byte, 32), sigBytes[32:]...)), Options{}, ErrSignature},
		{"JWT-A06/DER-encoded", withSig(der), Options{}, ErrSignature},
		{"JWT-A06/63-bytes", withSig(sigBytes[:63]), Options{}, ErrSignature},
		{"JWT-A06/65-bytes", withSig(append(append([]byte(nil), sigBytes...), 0)), Options{}, ErrSignature},
		{"JWT-A06/truncated", withSig(sigBytes[:60]), Options{}, ErrSignature},
		{"JWT-A06/signature-of-other-key", rawSign(t, ES256, k.other, hdr(ES256, "es", ""), p), Options{}, ErrSignature},
		{"JWT-A06/bit-flipped", withSig(flipped), Options{}, ErrSignature},
		{"JWT-A06/payload-swapped", b64(hdr(ES256, "es", "")) + "." + otherPayload + "." + sig, Options{}, ErrSignature},
		{"JWT-A06/RSA-signature-bit-flipped", flipLast(rawSign(t, RS256, k.rsa, hdr(RS256, "rs", ""), p)), Options{}, ErrSignature},
		{"JWT-A06/Ed25519-signature-bit-flipped", flipLast(rawSign(t, EdDSA, k.ed, hdr(EdDSA, "ed", ""), p)), Options{}, ErrSignature},
		{"JWT-A07/JWE-5-segments", "eyJhbGciOiJSU0EtT0FFUCIsImVuYyI6IkEyNTZHQ00ifQ.a.b.c.d", Options{}, ErrMalformed},
		{"JWT-B01/embedded-jwk-attacker-signed", rawSign(t, ES256, k.other, hdr(ES256, "es", `"jwk":`+string(attackerJWK)), p), Options{}, ErrHeader},
		{"JWT-B01/embedded-jwk-no-kid", rawSign(t, ES256, k.other, []byte(`{"alg":"ES256","jwk":`+string(attackerJWK)+`}`), p), Options{}, ErrHeader},
		{"JWT-B02/jku-metadata", rawSign(t, ES256, k.ec, hdr(ES256, "es", `"jku":"http://169.254.169.254/latest"`), p), Options{}, ErrHeader},
		{"JWT-B02/x5u-file", rawSign(t, ES256, k.ec, hdr(ES256, "es", `"x5u":"file:///etc/passwd"`), p), Options{}, ErrHeader},
		{"JWT-B03/x5c", rawSign(t, ES256, k.ec, hdr(ES256, "es", `"x5c":["MIIB"]`), p), Options{}, ErrHeader},
		{"JWT-B03/x5t", rawSign(t, ES256, k.ec, hdr(ES256, "es", `"x5t":"abc"`), p), Options{}, ErrHeader},
		{"JWT-B04/kid-empty", rawSign(t, ES256, k.ec, hdr(ES256, "", ""), p), Options{}, ErrHeader},
		{"JWT-B04/kid-10KB", rawSign(t, ES256, k.ec, hdr(ES256, strings.Repeat("a", 10240), ""), p), Options{MaxLen: 1 << 16}, ErrHeader},
		{"JWT-B04/kid-number", rawSign(t, ES256, k.ec, []byte(`{"alg":"ES256","kid":1}`), p), Options{}, ErrHeader},
		{"JWT-B04/kid-null", rawSign(t, ES256, k.ec, []byte(`{"alg":"ES256","kid":null}`), p), Options{}, ErrHeader},
		{"JWT-B04/kid-missing", rawSign(t, ES256, k.ec, []byte(`{"alg":"ES256"}`), p), Options{}, ErrHeader},
		{"JWT-B04/kid-path", rawSign(t, ES256, k.ec, hdr(ES256, "../../../../dev/null", ""), p), Options{}, ErrUnknownKey},
		{"JWT-B04/kid-sql", rawSign(t, ES256, k.ec, hdr(ES256, "x' UNION SELECT '1';--", ""), p), Options{}, ErrUnknownKey},
		{"JWT-B04/kid-shell", rawSign(t, ES256, k.ec, hdr(ES256, "|sleep 10", ""), p), Options{}, ErrUnknownKey},
		{"JWT-B04/kid-NUL", rawSign(t, ES256, k.ec, hdr(ES256, `es\u0000`, ""), p), Options{}, ErrUnknownKey},
		{"JWT-B04/kid-CRLF", rawSign(t, ES256, k.ec, hdr(ES256, `es\r\n`, ""), p), Options{}, ErrUnknownKey},
		{"JWT-B04/kid-case-variant", rawSign(t, ES256, k.ec, hdr(ES256, "ES", ""), p), Options{}, ErrUnknownKey},
		{"JWT-B07/crit-unknown", rawSign(t, ES256, k.ec, hdr(ES256, "es", `"crit":["exp"]`), p), Options{}, ErrHeader},
		{"JWT-B07/crit-empty", rawSign(t, ES256, k.ec, hdr(ES256, "es", `"crit":[]`), p), Options{}, ErrHeader},
		{"JWT-B07/crit-b64", rawSign(t, ES256, k.ec, hdr(ES256, "es", `"crit":["b64"],"b64":false`), p), Options{}, ErrHeader},
		{"JWT-B07/cty", rawSign(t, ES256, k.ec, hdr(ES256, "es", `"cty":"JWT"`), p), Options{}, ErrHeader},
		{"JWT-B07/zip", rawSign(t, ES256, k.ec, hdr(ES256, "es", `"zip":"DEF"`), p), Options{}, ErrHeader},
	}
	runAttacks(t, cases)
}

func TestVerifyFormatAttacks(t *testing.T) {
	k := loadKeys()
	p := validPayload(t)
	at := Options{Typ: []string{"at+jwt"}}
	valid := rawSign(t, ES256, k.ec, hdr(ES256, "es", ""), p)
	if _, _, err := Verify(valid, k.keyFunc(nil), Options{}); err != nil {
		t.Fatalf("baseline token rejected: %v", err)
	}
	h, rest, _ := strings.Cut(valid, ".")
	pl, sig, _ := strings.Cut(rest, ".")
	// A header whose encoding ends in a character with spare low bits.
	hb := []byte(`{"alg":"ES256","kid":"es"}`) // 26 bytes: 2 spare bits in the last char
	h2 := b64(hb)
	nonCanon := h2[:len(h2)-1] + string(h2[len(h2)-1]+1)

	cases := []attack{
		{"JWT-D01/typ-JWT-as-access-token", rawSign(t, ES256, k.ec, hdr(ES256, "es", `"typ":"JWT"`), p), at, ErrType},
		{"JWT-D01/typ-logout", rawSign(t, ES256, k.ec, hdr(ES256, "es", `"typ":"logout+jwt"`), p), at, ErrType},
		{"JWT-D01/typ-dpop", rawSign(t, ES256, k.ec, hdr(ES256, "es", `"typ":"dpop+jwt"`), p), at, ErrType},
		{"JWT-D01/typ-missing", valid, at, ErrType},
		{"JWT-D01/typ-suffix", rawSign(t, ES256, k.ec, hdr(ES256, "es", `"typ":"at+jwt.evil"`), p), at, ErrType},
		{"JWT-D01/typ-number", rawSign(t, ES256, k.ec, hdr(ES256, "es", `"typ":1`), p), at, ErrHeader},
		{"JWT-D01/json-serialization", `{"payload":"` + pl + `","protected":"` + h + `","signature":"` + sig + `"}`, Options{}, ErrMalformed},
		{"JWT-D01/json-serialization-with-dots", `{"payload":"a.b","signature":"c"}`, Options{}, ErrMalformed},
		{"JWT-E01/padding", h + "==." + pl + "." + sig, Options{}, ErrMalformed},
		{"JWT-E01/padding-signature", valid + "=", Options{}, ErrMalformed},
		{"JWT-E01/std-alphabet-plus", h + "." + pl + "." + strings.NewReplacer("-", "+", "_", "/").Replace(sig) + "+", Options{}, ErrMalformed},
		{"JWT-E01/std-alphabet-slash", "/" + valid[1:], Options{}, ErrMalformed},
		{"JWT-E01/non-canonical-trailing-bits", nonCanon + "." + pl + "." + sig, Options{}, ErrMalformed},
		{"JWT-E01/CRLF-inside", h[:4] + "\r\n" + h[4:] + "." + pl + "." + sig, Options{}, ErrMalformed},
		{"JWT-E01/LF-inside-signature", h + "." + pl + "." + sig[:5] + "\n" + sig[5:], Options{}, ErrMalformed},
		{"JWT-E01/space-inside", h + " ." + pl + "." + sig, Options{}, ErrMalformed},
		{"JWT-E01/leading-space", " " + valid, Options{}, ErrMalformed},
		{"JWT-E01/Bearer-prefix", "Bearer " + valid, Options{}, ErrMalformed},
		{"JWT-E01/two-segments", h + "." + pl, Options{}, ErrMalformed},
		{"JWT-E01/four-segments", valid + ".x", Options{}, ErrMalformed},
		{"JWT-E01/dots-only", "..", Options{}, ErrMalformed},
		{"JWT-E01/empty", "", Options{}, ErrMalformed},
		{"JWT-E01/impossible-length", "a." + pl + "." + sig, Options{}, ErrMalformed},
		{"JWT-E02/duplicate-alg", rawSign(t, ES256, k.ec, []byte(`{"alg":"ES256","alg":"none","kid":"es"}`), p), Options{}, ErrMalformed},
		{"JWT-E02/case-variant-alg", rawSign(t, ES256, k.ec, []byte(`{"alg":"ES256","Alg":"none","kid":"es"}`), p), Options{}, ErrMalformed},
		{"JWT-E02/case-variant-only", rawSign(t, ES256, k.ec, []byte(`{"ALG":"ES256","kid":"es"}`), p), Options{}, ErrHeader},
		{"JWT-E02/kelvin-sign-kid", rawSign(t, ES256, k.ec, []byte(`{"alg":"ES256","kid":"es","\u212Aid":"x"}`), p), Options{}, ErrMalformed},
		{"JWT-E02/duplicate-sub", rawSign(t, ES256, k.ec, hdr(ES256, "es", ""), []byte(`{"sub":"alice","sub":"admin","exp":9999999999}`)), Options{}, ErrMalformed},
		{"JWT-E02/case-variant-sub", rawSign(t, ES256, k.ec, hdr(ES256, "es", ""), []byte(`{"sub":"alice","Sub":"admin","exp":9999999999}`)), Options{}, ErrMalformed},
		{"JWT-E02/nested-duplicate", rawSign(t, ES256, k.ec, hdr(ES256, "es", ""), []byte(`{"cnf":{"jkt":"a","jkt":"b"}}`)), Options{}, ErrMalformed},
		{"JWT-E02/payload-trailing-garbage", rawSign(t, ES256, k.ec, hdr(ES256, "es", ""), []byte(`{"sub":"alice"}x`)), Options{}, ErrMalformed},
		{"JWT-E02/payload-second-object", rawSign(t, ES256, k.ec, hdr(ES256, "es", ""), []byte(`{"sub":"alice"} {"sub":"admin"}`)), Options{}, ErrMalformed},
		{"JWT-E02/header-trailing-garbage", rawSign(t, ES256, k.ec, []byte(`{"alg":"ES256","kid":"es"},`), p), Options{}, ErrMalformed},
		{"JWT-E02/payload-array", rawSign(t, ES256, k.ec, hdr(ES256, "es", ""), []byte(`[{"sub":"alice"}]`)), Options{}, ErrMalformed},
		{"JWT-E02/payload-string", rawSign(t, ES256, k.ec, hdr(ES256, "es", ""), []byte(`"alice"`)), Options{}, ErrMalformed},
		{"JWT-E02/payload-empty", rawSign(t, ES256, k.ec, hdr(ES256, "es", ""), nil), Options{}, ErrMalformed},
		{"JWT-E02/payload-non-UTF-8", rawSign(t, ES256, k.ec, hdr(ES256, "es", ""), []byte("{\"sub\":\"al\xffice\"}")), Options{}, ErrMalformed},
		{"JWT-E02/header-non-UTF-8", rawSign(t, ES256, k.ec, []byte("{\"alg\":\"ES256\",\"kid\":\"e\xc0s\"}"), p), Options{}, ErrMalformed},
		{"JWT-F01/million-dots", "Bearer " + strings.Repeat(".", 1_000_000), Options{}, ErrMalformed},
		{"JWT-F01/million-dots-large-cap", strings.Repeat(".", 1_000_000), Options{MaxLen: 2_000_000}, ErrMalformed},
		{"JWT-F01/1MB-header", b64(make([]byte, 1<<20)) + "." + pl + "." + sig, Options{}, ErrMalformed},
		{"JWT-F01/deeply-nested-header", rawSign(t, ES256, k.ec, []byte(`{"alg":"ES256","kid":"es","x":`+strings.Repeat("[", 100)+strings.Repeat("]", 100)+`}`), p), Options{}, ErrMalformed},
		{"JWT-F01/deeply-nested-payload", rawSign(t, ES256, k.ec, hdr(ES256, "es", ""), []byte(`{"a":`+strings.Repeat(`{"a":`, 50)+`1`+strings.Repeat("}", 51))), Options{}, ErrMalformed},
		{"JWT-F01/huge-aud", rawSign(t, ES256, k.ec, hdr(ES256, "es", ""), []byte(`{"aud":[`+strings.Repeat(`"a",`, 1_000_000)+`"a"]}`)), Options{}, ErrMalformed},
	}
	runAttacks(t, cases)
}

// TestVerifyNeverFetches shows that URL-bearing headers are rejected without
// any outbound request (JWT-B02).
func TestVerifyNeverFetches(t *testing.T) {
	k := loadKeys()
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer srv.Close()
	for _, member := range []string{"jku", "x5u"} {
		t.Run("JWT-B02/"+member, func(t *testing.T) {
			tok := rawSign(t, ES256, k.ec, hdr(ES256, "es", `"`+member+`":"`+srv.URL+`/jwks"`), validPayload(t))
			if _, _, err := Verify(tok, k.keyFunc(nil), Options{}); !errors.Is(err, ErrHeader) {
				t.Fatalf("err = %v, want ErrHeader", err)
			}
		})
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("verifier made %d outbound requests", n)
	}
}

// TestVerifyKidOpaque: the kid reaches the KeyFunc byte for byte and is never
// interpreted (JWT-B04).
func TestVerifyKidOpaque(t *testing.T) {
	k := loadKeys()
	for _, kid := range []string{"../../../../dev/null", "x' UNION SELECT '1';--", "|sleep 10", "a\x00b", "a\r\nb"} {
		kj, _ := json.Marshal(kid)
		tok := rawSign(t, ES256, k.ec, []byte(`{"alg":"ES256","kid":`+string(kj)+`}`), validPayload(t))
		var seen []string
		_, _, err := Verify(tok, k.keyFunc(&seen), Options{})
		if !errors.Is(err, ErrUnknownKey) {
			t.Errorf("kid %q: err = %v, want ErrUnknownKey", kid, err)
		}
		if len(seen) != 1 || seen[0] != kid {
			t.Errorf("kid %q: KeyFunc saw %q", kid, seen)
		}
	}
}

// TestVerifyKeyMisconfigured: an allow-list entry that does not suit the key
// (HS256 bound to a public key, RS256 bound to an EC key) fails closed.
func TestVerifyKeyMisconfigured(t *testing.T) {
	k := loadKeys()
	p := validPayload(t)
	pubDER, _ := x509.MarshalPKIXPublicKey(&k.rsa.PublicKey)
	in := b64(hdr("HS256", "k", "")) + "." + b64(p)
	hsTok := in + "." + b64(rawSig(t, "HS256", pubDER, []byte(in)))
	cases := []struct {
		name  string
		token string
		key   crypto.PublicKey
		alg   string
	}{
		{"JWT-A04/HS256-bound-to-RSA-key", hsTok, &k.rsa.PublicKey, "HS256"},
		{"JWT-A05/RS256-bound-to-EC-key", rawSign(t, ES256, k.ec, hdr(RS256, "k", ""), p), &k.ec.PublicKey, RS256},
		{"JWT-A05/ES384-bound-to-P256-key", rawSign(t, ES256, k.ec, hdr(ES384, "k", ""), p), &k.ec.PublicKey, ES384},
		{"JWT-A05/EdDSA-bound-to-EC-key", rawSign(t, ES256, k.ec, hdr(EdDSA, "k", ""), p), &k.ec.PublicKey, EdDSA},
		{"JWT-A05/empty-alg-binding", rawSign(t, ES256, k.ec, hdr("", "k", ""), p), &k.ec.PublicKey, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			kf := func(string) (crypto.PublicKey, string, bool) { return tc.key, tc.alg, true }
			_, _, err := Verify(tc.token, kf, Options{})
			if err == nil {
				t.Fatal("accepted")
			}
			if !errors.Is(err, ErrKey) && !errors.Is(err, ErrAlgorithm) {
				t.Errorf("err = %v", err)
			}
		})
	}
}

func flipLast(tok string) string {
	dot := strings.LastIndexByte(tok, '.')
	s, _ := base64Decode(tok[dot+1:])
	s[len(s)-1] ^= 0x80
	return tok[:dot+1] + b64(s)
}

func base64Decode(s string) ([]byte, error) { return decodeSegment(s) }

func sha256d(s string) []byte {
	d := sha256.Sum256([]byte(s))
	return d[:]
}
