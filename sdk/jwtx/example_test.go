package jwtx_test

import (
	"crypto"
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"time"

	"github.com/gatehouse/gatehouse/sdk/jwtx"
)

func ExampleVerify() {
	// The verifier's configuration: one key, bound to one algorithm.
	priv := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	keys := func(kid string) (crypto.PublicKey, string, bool) {
		if kid == "k1" {
			return priv.Public(), jwtx.EdDSA, true
		}
		return nil, "", false
	}

	// A token as an issuer would produce it.
	enc := base64.RawURLEncoding
	input := enc.EncodeToString([]byte(`{"alg":"EdDSA","kid":"k1","typ":"at+jwt"}`)) + "." +
		enc.EncodeToString([]byte(`{"iss":"https://idp.example","sub":"alice","aud":"api","exp":4102444800}`))
	token := input + "." + enc.EncodeToString(ed25519.Sign(priv, []byte(input)))

	_, payload, err := jwtx.Verify(token, keys, jwtx.Options{Typ: []string{"at+jwt"}})
	if err != nil {
		fmt.Println(err)
		return
	}
	claims, err := jwtx.ParseClaims(payload)
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := jwtx.ValidateTime(claims, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), 30*time.Second); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(claims.Subject, claims.Audience)
	// Output: alice [api]
}
