package jwtx

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/go-jose/go-jose/v4"
)

// FuzzVerify: Verify never panics and never accepts a token that was not
// signed by a configured key. The seeds include a valid token; mutations of
// it must all be rejected unless the fuzzer returns it unchanged.
func FuzzVerify(f *testing.F) {
	k := loadKeys()
	p := validPayload(f)
	signed := map[string]bool{
		joseSign(f, jose.ES256, k.ec, "es", "at+jwt", p): true,
		joseSign(f, jose.EdDSA, k.ed, "ed", "", p):       true,
	}
	for tok := range signed {
		f.Add(tok)
	}
	f.Add(rawSign(f, ES256, k.ec, []byte(`{"alg":"none","kid":"es"}`), p))
	f.Add(rawSign(f, ES256, k.ec, []byte(`{"alg":"ES256","kid":"es","crit":[]}`), p))
	f.Add("a.b.c")
	f.Add("..")
	f.Add("a.b.c.d.e")
	keys := k.keyFunc(nil)
	f.Fuzz(func(t *testing.T, tok string) {
		h, payload, err := Verify(tok, keys, Options{})
		if err != nil {
			if payload != nil || h != (Header{}) {
				t.Fatal("data returned with an error")
			}
			return
		}
		// Accepted: only the tokens we signed may pass; any mutation of
		// them (re-encoding, header edits, signature edits) is rejected.
		if !signed[tok] {
			t.Fatalf("accepted a token we did not sign (alg %q)", h.Alg)
		}
		if _, err := ParseClaims(payload); err != nil {
			t.Fatalf("accepted payload fails ParseClaims: %v", err)
		}
	})
}

// FuzzParseClaims: ParseClaims never panics and its results are consistent.
func FuzzParseClaims(f *testing.F) {
	f.Add([]byte(`{"iss":"a","aud":["b"],"exp":1,"sub":"c"}`))
	f.Add([]byte(`{"aud":"x","nbf":0,"Sub":"y","extra":{"k":[1,2,{"z":null}]}}`))
	f.Add([]byte(`{"exp":1e3}`))
	f.Add([]byte(`{"a":1,"A":2}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseClaims(data)
		if err != nil {
			return
		}
		if !json.Valid(data) {
			t.Fatal("accepted invalid JSON")
		}
		for _, d := range []*int64{c.Expiry, c.NotBefore, c.IssuedAt} {
			if d != nil && (*d < 0 || *d > maxNumericDate) {
				t.Fatalf("date out of range: %d", *d)
			}
		}
		if c.Audience != nil && len(c.Audience) == 0 {
			t.Fatal("empty audience accepted")
		}
		for _, a := range c.Audience {
			if a == "" {
				t.Fatal("empty audience member accepted")
			}
		}
	})
}

func benchVerify(b *testing.B, alg jose.SignatureAlgorithm, key any, kid string) {
	k := loadKeys()
	tok := joseSign(b, alg, key, kid, "at+jwt", validPayload(b))
	keys := k.keyFunc(nil)
	opt := Options{Typ: []string{"at+jwt"}}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := Verify(tok, keys, opt); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyES256(b *testing.B) { benchVerify(b, jose.ES256, loadKeys().ec, "es") }
func BenchmarkVerifyRS256(b *testing.B) { benchVerify(b, jose.RS256, loadKeys().rsa, "rs") }
func BenchmarkVerifyEdDSA(b *testing.B) { benchVerify(b, jose.EdDSA, loadKeys().ed, "ed") }

// FuzzStrictObjectDifferential keeps the allocation-free scanner in
// agreement with the token-walking reference implementation.
func FuzzStrictObjectDifferential(f *testing.F) {
	for _, s := range []string{`{"a":1}`, `{"a":1,"A":2}`, `{"a":{"b":[1,{"c":2,"c":3}]}}`, `{"\u0061":1,"a":2}`,
		`{"k":1,"\u212a":2}`, `{"sub":"a","Sub":"b"}`, `[1]`, `{"a":"x\"y","b":"\\"}`, ` {"a" : [ ] } `, `{}{}`, `{"a":1}x`,
		"{\"\xff\":1}", `{"a":[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fast, slow := checkStrictObject(data), checkStrictObjectSlow(data)
		if (fast == nil) != (slow == nil) {
			t.Fatalf("fast=%v slow=%v for %q", fast, slow, data)
		}
	})
}

// FuzzMembersDifferential checks the allocation-light member walk against
// encoding/json for every object the strict checker accepts.
func FuzzMembersDifferential(f *testing.F) {
	for _, s := range []string{`{"a":1,"b":[1,"x]"],"c":{"d":"}"}}`, `{"\u0061b":"\"","e":null}`, ` { } `, `{"roles":["a","b"]}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if checkStrictObject(data) != nil {
			return
		}
		var want map[string]json.RawMessage
		if err := json.Unmarshal(data, &want); err != nil {
			t.Fatalf("strict object not decodable: %v", err)
		}
		got := map[string]json.RawMessage{}
		if err := members(data, func(name, raw []byte) error { got[string(name)] = raw; return nil }); err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("got %d members, want %d", len(got), len(want))
		}
		for k, w := range want {
			if !bytes.Equal(bytes.TrimSpace(got[k]), bytes.TrimSpace(w)) {
				t.Fatalf("member %q: got %q want %q", k, got[k], w)
			}
		}
	})
}
