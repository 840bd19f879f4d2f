package gateway

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/gatehouse/gatehouse/internal/config"
)

// Hand-made tokens: the same ideas as sdk/auth's attack tests, rebuilt
// against the gateway's fake issuer (ES256, kid "test-key-1").

func b64u(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func jsonOf(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// signRaw signs arbitrary header and payload bytes: ES256 with an ECDSA key
// or HS256 with a byte key.
func signRaw(t *testing.T, key any, header, payload []byte) string {
	t.Helper()
	input := b64u(header) + "." + b64u(payload)
	d := sha256.Sum256([]byte(input))
	var sig []byte
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		r, s, err := ecdsa.Sign(rand.Reader, k, d[:])
		if err != nil {
			t.Fatal(err)
		}
		sig = make([]byte, 64)
		r.FillBytes(sig[:32])
		s.FillBytes(sig[32:])
	case []byte:
		m := hmac.New(sha256.New, k)
		m.Write([]byte(input))
		sig = m.Sum(nil)
	default:
		t.Fatalf("signRaw: key %T", key)
	}
	return input + "." + b64u(sig)
}

// claimsOf returns valid access-token claims of is with edits (nil deletes).
func claimsOf(is *testIssuer, edits map[string]any) map[string]any {
	now := time.Now()
	c := map[string]any{"iss": is.URL, "aud": testAudience, "sub": "usr_alice", "client_id": "web", "scope": "read",
		"exp": now.Add(5 * time.Minute).Unix(), "iat": now.Unix(), "jti": "j1"}
	for k, v := range edits {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

// tokenCase builds one attacker token; the wanted answer is 401 (or 400 /
// 431 for what cannot be a bearer token) unless want is set.
type tokenCase struct {
	name  string
	token func(t *testing.T) string
	want  int // 0: refused
}

func jwtCases(is, isB *testIssuer, attacker *ecdsa.PrivateKey, evilURL string) []tokenCase {
	hdr := func(extra map[string]any) map[string]any {
		h := map[string]any{"alg": "ES256", "kid": is.kid, "typ": "at+jwt"}
		for k, v := range extra {
			if v == nil {
				delete(h, k)
			} else {
				h[k] = v
			}
		}
		return h
	}
	withHeader := func(h map[string]any) func(t *testing.T) string {
		return func(t *testing.T) string { return signRaw(t, is.key, jsonOf(t, h), jsonOf(t, claimsOf(is, nil))) }
	}
	edited := func(edits map[string]any) func(t *testing.T) string {
		return func(t *testing.T) string {
			return signRaw(t, is.key, jsonOf(t, hdr(nil)), jsonOf(t, claimsOf(is, edits)))
		}
	}
	payload := func(p func(t *testing.T) string) func(t *testing.T) string {
		return func(t *testing.T) string { return signRaw(t, is.key, jsonOf(t, hdr(nil)), []byte(p(t))) }
	}
	validJSON := func(t *testing.T) string { return string(jsonOf(t, claimsOf(is, nil))) }
	unsigned := func(alg, sig string) func(t *testing.T) string {
		return func(t *testing.T) string {
			return b64u(jsonOf(t, hdr(map[string]any{"alg": alg}))) + "." + b64u(jsonOf(t, claimsOf(is, nil))) + "." + sig
		}
	}
	resign := func(mut func(h, p, s string) string) func(t *testing.T) string {
		return func(t *testing.T) string {
			parts := strings.SplitN(edited(nil)(t), ".", 3)
			return mut(parts[0], parts[1], parts[2])
		}
	}
	pub := func(t *testing.T) []byte {
		der, err := x509.MarshalPKIXPublicKey(&is.key.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	hs := func(key func(t *testing.T) []byte) func(t *testing.T) string {
		return func(t *testing.T) string {
			return signRaw(t, key(t), jsonOf(t, hdr(map[string]any{"alg": "HS256"})), jsonOf(t, claimsOf(is, nil)))
		}
	}
	pemKey := func(t *testing.T) []byte { return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub(t)}) }
	now := time.Now()
	const leeway = 30 * time.Second
	var cs []tokenCase
	add := func(name string, fn func(t *testing.T) string) { cs = append(cs, tokenCase{name: name, token: fn}) }
	ok := func(name string, fn func(t *testing.T) string) {
		cs = append(cs, tokenCase{name: name, token: fn, want: 200})
	}

	ok("control/valid", edited(nil))
	add("JWT-A01/none-unsigned", unsigned("none", ""))
	add("JWT-A01/none-with-signature", unsigned("none", b64u([]byte("sig"))))
	for _, v := range []string{"None", "NONE", "nOnE"} {
		add("JWT-A02/"+v, unsigned(v, ""))
	}
	add("JWT-A03/empty-signature", resign(func(h, p, _ string) string { return h + "." + p + "." }))
	add("JWT-A04/hs256-pem", hs(pemKey))
	add("JWT-A04/hs256-pem-no-newline", hs(func(t *testing.T) []byte { return []byte(strings.TrimSpace(string(pemKey(t)))) }))
	add("JWT-A04/hs256-der", hs(pub))
	add("JWT-A04/hs256-jwk-text", hs(func(t *testing.T) []byte {
		return jsonOf(t, jose.JSONWebKey{Key: &is.key.PublicKey, KeyID: is.kid})
	}))
	for _, alg := range []string{"RS256", "PS256", "ES384", "ES512", "EdDSA", "HS256"} {
		add("JWT-A05/es256-key-token-says-"+alg, withHeader(hdr(map[string]any{"alg": alg})))
	}
	add("JWT-A05/alg-missing", withHeader(hdr(map[string]any{"alg": nil})))
	add("JWT-A05/alg-empty", withHeader(hdr(map[string]any{"alg": ""})))
	add("JWT-A05/alg-array", withHeader(hdr(map[string]any{"alg": []string{"ES256"}})))
	add("JWT-A05/alg-number", withHeader(hdr(map[string]any{"alg": 256})))
	add("JWT-A06/psychic-zero-signature", resign(func(h, p, _ string) string { return h + "." + p + "." + b64u(make([]byte, 64)) }))
	add("JWT-A06/r-equals-s-equals-n", resign(func(h, p, _ string) string {
		n := elliptic.P256().Params().N.FillBytes(make([]byte, 32))
		return h + "." + p + "." + b64u(append(append([]byte{}, n...), n...))
	}))
	add("JWT-A06/truncated", resign(func(h, p, s string) string { return h + "." + p + "." + s[:len(s)-4] }))
	add("JWT-A06/bit-flipped", resign(func(h, p, s string) string {
		raw, _ := base64.RawURLEncoding.DecodeString(s)
		raw[10] ^= 1
		return h + "." + p + "." + b64u(raw)
	}))
	add("JWT-A06/payload-swapped", func(t *testing.T) string {
		a := strings.SplitN(edited(nil)(t), ".", 3)
		b := strings.SplitN(edited(map[string]any{"sub": "usr_admin", "scope": "admin"})(t), ".", 3)
		return a[0] + "." + b[1] + "." + a[2]
	})
	add("JWT-A07/jwe-five-segments", func(t *testing.T) string {
		return b64u([]byte(`{"alg":"RSA-OAEP","enc":"A256GCM","kid":"test-key-1"}`)) + ".YQ.Yg.Yw.ZA"
	})
	add("JWT-B01/embedded-jwk", func(t *testing.T) string {
		jwk := jsonOf(t, jose.JSONWebKey{Key: &attacker.PublicKey})
		return signRaw(t, attacker, jsonOf(t, hdr(map[string]any{"jwk": json.RawMessage(jwk)})), jsonOf(t, claimsOf(is, nil)))
	})
	for name, h := range map[string]map[string]any{
		"jku-attacker": {"jku": evilURL + "/jwks", "kid": "att"}, "x5u-attacker": {"x5u": evilURL + "/cert", "kid": "att"},
		"jku-metadata": {"jku": "http://169.254.169.254/latest/meta-data/", "kid": "att"}, "jku-file": {"jku": "file:///etc/passwd"},
		"jku-with-known-kid": {"jku": evilURL + "/jwks"},
	} {
		add("JWT-B02/"+name, func(t *testing.T) string {
			return signRaw(t, attacker, jsonOf(t, hdr(h)), jsonOf(t, claimsOf(is, nil)))
		})
	}
	add("JWT-B03/x5c-unanchored", func(t *testing.T) string {
		return signRaw(t, attacker, jsonOf(t, hdr(map[string]any{"x5c": []string{"MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA"}, "kid": nil})),
			jsonOf(t, claimsOf(is, nil)))
	})
	for name, kid := range map[string]any{"path": "../../../../dev/null", "sql": "x' UNION SELECT '1';--", "shell": "|sleep 10",
		"empty": "", "10kb": strings.Repeat("k", 10<<10), "nul": is.kid + "\x00", "crlf": is.kid + "\r\n", "number": 1, "null": nil} {
		add("JWT-B04/kid-"+name, withHeader(hdr(map[string]any{"kid": kid})))
	}
	add("JWT-B06/issuer-b-key-claims-issuer-a", func(t *testing.T) string {
		return signRaw(t, isB.key, jsonOf(t, hdr(nil)), jsonOf(t, claimsOf(is, nil)))
	})
	add("JWT-B06/issuer-a-key-claims-issuer-b", func(t *testing.T) string {
		return signRaw(t, is.key, jsonOf(t, hdr(nil)), jsonOf(t, claimsOf(is, map[string]any{"iss": isB.URL})))
	})
	add("JWT-B07/crit-unknown", withHeader(hdr(map[string]any{"crit": []string{"exp2"}, "exp2": 1})))
	add("JWT-B07/crit-empty", withHeader(hdr(map[string]any{"crit": []string{}})))
	add("JWT-B07/crit-b64", withHeader(hdr(map[string]any{"crit": []string{"b64"}, "b64": false})))
	add("JWT-C01/exp-missing", edited(map[string]any{"exp": nil}))
	add("JWT-C01/exp-string", edited(map[string]any{"exp": "9999999999"}))
	add("JWT-C01/exp-1e300", payload(func(*testing.T) string {
		return `{"iss":"` + is.URL + `","aud":"` + testAudience + `","sub":"usr_alice","exp":1e300}`
	}))
	add("JWT-C01/exp-negative", edited(map[string]any{"exp": -1}))
	add("JWT-C01/exp-null", payload(func(*testing.T) string {
		return `{"iss":"` + is.URL + `","aud":"` + testAudience + `","sub":"usr_alice","exp":null}`
	}))
	add("JWT-C01/exp-maxint", payload(func(*testing.T) string {
		return `{"iss":"` + is.URL + `","aud":"` + testAudience + `","sub":"usr_alice","exp":9223372036854775807}`
	}))
	add("JWT-C01/exp-past-leeway-plus-3s", edited(map[string]any{"exp": now.Add(-leeway - 3*time.Second).Unix()}))
	ok("JWT-C01/exp-inside-leeway-minus-3s", edited(map[string]any{"exp": now.Add(-leeway + 3*time.Second).Unix()}))
	add("JWT-C01/nbf-future-beyond-leeway", edited(map[string]any{"nbf": now.Add(leeway + 3*time.Second).Unix()}))
	ok("JWT-C01/nbf-future-inside-leeway", edited(map[string]any{"nbf": now.Add(leeway - 3*time.Second).Unix()}))
	add("JWT-C01/iat-future-beyond-leeway", edited(map[string]any{"iat": now.Add(leeway + 3*time.Second).Unix()}))
	add("JWT-C02/iss-missing", edited(map[string]any{"iss": nil}))
	add("JWT-C02/iss-array", edited(map[string]any{"iss": []string{is.URL}}))
	add("JWT-C02/iss-trailing-slash", edited(map[string]any{"iss": is.URL + "/"}))
	add("JWT-C02/iss-other-case", edited(map[string]any{"iss": strings.ToUpper(is.URL)}))
	add("JWT-C02/iss-suffix", edited(map[string]any{"iss": is.URL + ".evil"}))
	add("JWT-C02/iss-untrusted", edited(map[string]any{"iss": "https://evil.example"}))
	ok("JWT-C03/aud-array-accepted", edited(map[string]any{"aud": []string{"https://other", testAudience}}))
	for name, aud := range map[string]any{"empty-array": []string{}, "empty-string": "", "number": 5, "mixed": []any{"a", 5},
		"other-case": []string{strings.ToUpper(testAudience)}, "other-api": "https://api.payments.example", "missing": nil,
		"trailing-slash": testAudience + "/"} {
		add("JWT-C03/aud-"+name, edited(map[string]any{"aud": aud}))
	}
	add("JWT-C04/scope-array", edited(map[string]any{"scope": []string{"read"}}))
	add("JWT-C04/scope-and-scp-disagree", edited(map[string]any{"scp": []string{"admin"}}))
	add("JWT-C04/roles-string", edited(map[string]any{"roles": "admin"}))
	add("JWT-C04/tenant-array", edited(map[string]any{"tenant": []string{"acme"}}))
	add("JWT-C04/claims-with-control-bytes", edited(map[string]any{"sub": "usr_alice\r\nX-Auth-Roles: admin"}))
	for name, typ := range map[string]any{"id-token-JWT": "JWT", "logout": "logout+jwt", "dpop": "dpop+jwt", "missing": nil, "empty": ""} {
		add("JWT-D01/typ-"+name, withHeader(hdr(map[string]any{"typ": typ})))
	}
	add("JWT-D01/id-token-audience", edited(map[string]any{"aud": "web"}))
	add("JWT-D01/refresh-token-opaque", func(*testing.T) string { return "ghr_0123456789abcdefABCDEF" })
	add("JWT-D01/json-serialized-jws", func(t *testing.T) string {
		p := strings.SplitN(edited(nil)(t), ".", 3)
		return string(jsonOf(t, map[string]string{"protected": p[0], "payload": p[1], "signature": p[2]}))
	})
	add("JWT-E01/padding", resign(func(h, p, s string) string { return h + "=." + p + "." + s }))
	add("JWT-E01/std-alphabet", resign(func(h, p, s string) string {
		return h + "." + p + "." + strings.NewReplacer("-", "+", "_", "/").Replace(s) + "+/"
	}))
	add("JWT-E01/crlf-inside", resign(func(h, p, s string) string { return h + "." + p[:4] + "\r\n" + p[4:] + "." + s }))
	add("JWT-E01/space-inside", resign(func(h, p, s string) string { return h + "." + p + " ." + s }))
	add("JWT-E01/tab-inside", resign(func(h, p, s string) string { return h + "\t." + p + "." + s }))
	for name, tok := range map[string]string{"two": "a.b", "four": "a.b.c.d", "dots": "..", "one": "abc", "six": "a.b.c.d.e.f"} {
		add("JWT-E01/segments-"+name, func(*testing.T) string { return tok })
	}
	add("JWT-E02/duplicate-alg", func(t *testing.T) string {
		return signRaw(t, is.key, []byte(`{"alg":"ES256","alg":"none","kid":"`+is.kid+`","typ":"at+jwt"}`), jsonOf(t, claimsOf(is, nil)))
	})
	add("JWT-E02/duplicate-sub", payload(func(t *testing.T) string { c := validJSON(t); return c[:len(c)-1] + `,"sub":"usr_admin"}` }))
	add("JWT-E02/case-variant-sub", payload(func(t *testing.T) string { c := validJSON(t); return c[:len(c)-1] + `,"Sub":"usr_admin"}` }))
	add("JWT-E02/case-variant-scope", payload(func(t *testing.T) string { c := validJSON(t); return c[:len(c)-1] + `,"SCOPE":"admin"}` }))
	add("JWT-E02/trailing-garbage", payload(func(t *testing.T) string { return validJSON(t) + `{}` }))
	add("JWT-E02/payload-array", payload(func(*testing.T) string { return `["not","an","object"]` }))
	add("JWT-E02/payload-not-utf8", payload(func(t *testing.T) string { c := validJSON(t); return c[:len(c)-1] + ",\"x\":\"\xff\"}" }))
	add("JWT-E02/header-duplicate-typ", func(t *testing.T) string {
		return signRaw(t, is.key, []byte(`{"alg":"ES256","kid":"`+is.kid+`","typ":"JWT","typ":"at+jwt"}`), jsonOf(t, claimsOf(is, nil)))
	})
	add("JWT-F01/million-dots", func(*testing.T) string { return strings.Repeat(".", 1_000_000) })
	add("JWT-F01/17kb-token", withHeader(hdr(map[string]any{"x": strings.Repeat("a", 17<<10)})))
	add("JWT-F01/1mb-header", withHeader(hdr(map[string]any{"x": strings.Repeat("a", 1<<20)})))
	add("JWT-F01/deep-json", payload(func(*testing.T) string { return strings.Repeat(`{"a":`, 3000) + "1" + strings.Repeat("}", 3000) }))
	add("JWT-F01/big-aud-over-cap", payload(func(*testing.T) string {
		return `{"iss":"` + is.URL + `","sub":"usr_alice","aud":[` + strings.Repeat(`"a",`, 5000) + `"` + testAudience + `"],"exp":` + "9999999999}"
	}))
	add("JWT-F01/million-aud", payload(func(*testing.T) string { return `{"aud":[` + strings.Repeat(`"a",`, 1_000_000) + `"x"]}` }))
	add("JWT-C04/no-subject-no-client", edited(map[string]any{"sub": nil, "client_id": nil}))
	add("JWT-C04/empty-subject-and-client", edited(map[string]any{"sub": "", "client_id": ""}))
	// JWT-G01 (tokens we issue always carry kid; the JWKS has no private
	// members) is about the IdP's own issuer and is covered by the IdP
	// tests; the gateway only verifies.
	return cs
}

// publicDescriptions are the only error descriptions a refused token gets:
// no parser detail (kid, alg, key, JSON) ever reaches the client.
var publicDescriptions = map[string]bool{"the token is invalid": true, "the token has expired": true,
	"the token is not valid yet": true, "the token is not meant for this API": true}

func TestJWTAttacksThroughGateway(t *testing.T) {
	is, isB := newTestIssuer(t), newTestIssuer(t)
	attacker, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var evilMu sync.Mutex
	evilHits := 0
	evil := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		evilMu.Lock()
		evilHits++
		evilMu.Unlock()
	}))
	t.Cleanup(evil.Close)
	up, hits := newCountingEcho(t)
	cfg := gatewayConfig(is, jwtRoute("api", "/api", up.URL))
	cfg.Issuers = append(cfg.Issuers, config.GatewayIssuer{Issuer: isB.URL})
	tg := startGateway(t, is, cfg, nil)
	for _, c := range jwtCases(is, isB, attacker, evil.URL) {
		t.Run(c.name, func(t *testing.T) {
			tok := c.token(t)
			before := hits()
			start := time.Now()
			resp, body := rawGet(t, tg, "/api/x", tok)
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("took %v", d)
			}
			if c.want != 0 {
				if resp.StatusCode != c.want {
					t.Fatalf("status %d, want %d: %s", resp.StatusCode, c.want, body)
				}
				return
			}
			switch resp.StatusCode {
			case 401:
				// One fixed answer per class; only a validly signed token can
				// learn it expired or is for another API.
				ch := resp.Header.Get("WWW-Authenticate")
				var e map[string]string
				_ = json.Unmarshal([]byte(body), &e)
				if !strings.Contains(ch, `error="invalid_token"`) || e["error"] != "invalid_token" ||
					!publicDescriptions[e["error_description"]] || !strings.Contains(ch, e["error_description"]) {
					t.Errorf("401 answer %q %q", ch, body)
				}
			case 400, 431: // not a bearer token at all (or too large for the server)
			default:
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			if n := hits() - before; n != 0 {
				t.Fatalf("upstream reached %d times", n)
			}
		})
	}
	if logs := tg.Logs.String(); strings.Contains(logs, "eyJ") {
		t.Errorf("a token (or part of one) was logged:\n%s", logs)
	}
	evilMu.Lock()
	defer evilMu.Unlock()
	if evilHits != 0 {
		t.Fatalf("JWT-B02: the jku/x5u server got %d requests", evilHits)
	}
}

func TestJWTNonCanonicalBase64NotCached(t *testing.T) {
	is := newTestIssuer(t)
	up, hits := newCountingEcho(t)
	tg := startGateway(t, is, gatewayConfig(is, jwtRoute("api", "/api", up.URL)), nil)
	tok := is.user(t, "usr_alice")
	if resp, _ := rawGet(t, tg, "/api/x", tok); resp.StatusCode != 200 {
		t.Fatalf("control: %d", resp.StatusCode)
	}
	// The ES256 signature is 64 bytes: 86 base64url characters, the last
	// carrying 4 unused bits. Flipping one gives a different string that a
	// lenient decoder maps to the same bytes.
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	last := strings.IndexByte(alphabet, tok[len(tok)-1])
	flipped := tok[:len(tok)-1] + string(alphabet[last^1])
	before := hits()
	t.Run("JWT-E01/non-canonical-trailing-bits", func(t *testing.T) {
		if resp, _ := rawGet(t, tg, "/api/x", flipped); resp.StatusCode != 401 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		if hits() != before {
			t.Fatal("upstream reached")
		}
	})
}

func TestJWTUnknownKidFlood(t *testing.T) {
	ci := newCountingIssuer(t)
	up := newEcho(t)
	tg := startGateway(t, ci.testIssuer, gatewayConfig(ci.testIssuer, jwtRoute("api", "/api", up.URL)), nil)
	attacker, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("JWT-B05/unknown-kid-flood", func(t *testing.T) {
		before := ci.jwksHits()
		var wg sync.WaitGroup
		codes := make([]int, 40)
		for i := range codes {
			h := jsonOf(t, map[string]any{"alg": "ES256", "kid": "rnd-" + randomID(), "typ": "at+jwt"})
			tok := signRaw(t, attacker, h, jsonOf(t, claimsOf(ci.testIssuer, nil)))
			wg.Add(1)
			go func() {
				defer wg.Done()
				req, _ := http.NewRequest("GET", tg.Proxy.URL+"/api/x", nil)
				req.Header.Set("Authorization", "Bearer "+tok)
				if resp, err := http.DefaultClient.Do(req); err == nil {
					codes[i] = resp.StatusCode
					resp.Body.Close()
				}
			}()
		}
		wg.Wait()
		for i, c := range codes {
			if c != 401 {
				t.Fatalf("request %d: status %d", i, c)
			}
		}
		if n := ci.jwksHits() - before; n > 1 {
			t.Fatalf("%d JWKS fetches for 40 unknown kids, want at most 1", n)
		}
		start := time.Now()
		if resp, _ := tg.do(t, "GET", "/api/x", ci.user(t, "usr_alice"), nil); resp.StatusCode != 200 {
			t.Fatalf("valid token after the flood: %d", resp.StatusCode)
		}
		if d := time.Since(start); d > time.Second {
			t.Fatalf("valid token slowed to %v", d)
		}
	})
}

func TestJWTClientNeverUser(t *testing.T) {
	is := newTestIssuer(t)
	up := newEcho(t)
	users := jwtRoute("users", "/users", up.URL)
	users.Auth.EndUser = true
	tg := startGateway(t, is, gatewayConfig(is, users, jwtRoute("api", "/api", up.URL)), nil)
	// A client-credentials token (sub = client_id) whose sub is a user id.
	cc := is.mint(t, map[string]any{"sub": "usr_alice", "client_id": "usr_alice"})
	t.Run("JWT-C04/client-credentials-sub-is-user-id", func(t *testing.T) {
		if resp, _ := tg.do(t, "GET", "/users/x", cc, nil); resp.StatusCode != 403 {
			t.Fatalf("end-user route: %d, want 403", resp.StatusCode)
		}
		resp, body := tg.do(t, "GET", "/api/x", cc, nil)
		if resp.StatusCode != 200 || seen(t, body).Header.Get(HeaderKind) != "client" {
			t.Fatalf("status %d kind %q", resp.StatusCode, body)
		}
	})
}
