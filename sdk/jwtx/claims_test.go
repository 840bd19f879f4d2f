package jwtx

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func i64(v int64) *int64 { return &v }

func TestParseClaimsValid(t *testing.T) {
	got, err := ParseClaims([]byte(`{"iss":"https://idp.example","sub":"alice","aud":["api","web"],
		"exp": 1700000600 ,"nbf":1700000000,"iat":0,"jti":"j1","client_id":"c1","scope":"openid profile",
		"roles":["admin"],"cnf":{"jkt":"x"}}`))
	if err != nil {
		t.Fatal(err)
	}
	want := Claims{
		Issuer: "https://idp.example", Subject: "alice", Audience: []string{"api", "web"},
		Expiry: i64(1700000600), NotBefore: i64(1700000000), IssuedAt: i64(0),
		JTI: "j1", ClientID: "c1", Scope: "openid profile",
	}
	extra := got.Extra
	got.Extra = nil
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	if string(extra["roles"]) != `["admin"]` || string(extra["cnf"]) != `{"jkt":"x"}` || len(extra) != 2 {
		t.Errorf("extra = %v", extra)
	}
	t.Run("JWT-C03/aud-string", func(t *testing.T) {
		c, err := ParseClaims([]byte(`{"aud":"api"}`))
		if err != nil || !reflect.DeepEqual(c.Audience, []string{"api"}) {
			t.Errorf("aud = %q, err %v", c.Audience, err)
		}
	})
}

func TestParseClaimsRejects(t *testing.T) {
	cases := []struct {
		name    string
		payload string
		want    error
	}{
		{"JWT-C01/exp-string", `{"exp":"1700000000"}`, ErrClaims},
		{"JWT-C01/exp-1e300", `{"exp":1e300}`, ErrClaims},
		{"JWT-C01/exp-exponent", `{"exp":17e8}`, ErrClaims},
		{"JWT-C01/exp-fraction", `{"exp":1700000000.5}`, ErrClaims},
		{"JWT-C01/exp-negative", `{"exp":-1}`, ErrClaims},
		{"JWT-C01/exp-null", `{"exp":null}`, ErrClaims},
		{"JWT-C01/exp-bool", `{"exp":true}`, ErrClaims},
		{"JWT-C01/exp-int64-max", `{"exp":9223372036854775807}`, ErrClaims},
		{"JWT-C01/exp-beyond-int64", `{"exp":92233720368547758070}`, ErrClaims},
		{"JWT-C01/exp-after-year-9999", `{"exp":253402300800}`, ErrClaims},
		{"JWT-C01/exp-leading-zero", `{"exp":01700000000}`, ErrMalformed},
		{"JWT-C01/nbf-string", `{"nbf":"0"}`, ErrClaims},
		{"JWT-C01/iat-array", `{"iat":[1]}`, ErrClaims},
		{"JWT-C02/iss-array", `{"iss":["https://idp.example"]}`, ErrClaims},
		{"JWT-C02/iss-null", `{"iss":null}`, ErrClaims},
		{"JWT-C02/iss-number", `{"iss":1}`, ErrClaims},
		{"JWT-C03/aud-empty-array", `{"aud":[]}`, ErrClaims},
		{"JWT-C03/aud-empty-string", `{"aud":""}`, ErrClaims},
		{"JWT-C03/aud-number", `{"aud":5}`, ErrClaims},
		{"JWT-C03/aud-mixed-array", `{"aud":["a",5]}`, ErrClaims},
		{"JWT-C03/aud-empty-member", `{"aud":["a",""]}`, ErrClaims},
		{"JWT-C03/aud-null", `{"aud":null}`, ErrClaims},
		{"JWT-C03/aud-nested-array", `{"aud":[["a"]]}`, ErrClaims},
		{"JWT-C03/aud-object", `{"aud":{"a":1}}`, ErrClaims},
		{"JWT-C04/scope-array", `{"scope":["openid","admin"]}`, ErrClaims},
		{"JWT-C04/client_id-number", `{"client_id":7}`, ErrClaims},
		{"JWT-E02/duplicate-sub", `{"sub":"alice","sub":"admin"}`, ErrMalformed},
		{"JWT-E02/case-variant-sub", `{"sub":"alice","Sub":"admin"}`, ErrMalformed},
		{"JWT-E02/case-variant-exp", `{"exp":1,"EXP":99999999999}`, ErrMalformed},
		{"JWT-E02/duplicate-extra", `{"roles":["user"],"roles":["admin"]}`, ErrMalformed},
		{"JWT-E02/trailing-garbage", `{"sub":"alice"}}`, ErrMalformed},
		{"JWT-E02/two-objects", `{"sub":"alice"}{"sub":"admin"}`, ErrMalformed},
		{"JWT-E02/not-object", `["sub"]`, ErrMalformed},
		{"JWT-E02/null", `null`, ErrMalformed},
		{"JWT-E02/empty", ``, ErrMalformed},
		{"JWT-E02/truncated", `{"sub":"alice"`, ErrMalformed},
		{"JWT-E02/non-UTF-8", "{\"sub\":\"\xed\xa0\x80\"}", ErrMalformed},
		{"JWT-F01/deep-nesting", `{"x":` + strings.Repeat("[", 10000) + strings.Repeat("]", 10000) + `}`, ErrMalformed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseClaims([]byte(tc.payload))
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v (claims %+v)", err, tc.want, c)
			}
		})
	}
}

func TestValidateTime(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	const leeway = 30 * time.Second
	cases := []struct {
		name string
		c    Claims
		want error // nil: valid
	}{
		{"valid", Claims{Expiry: i64(1_700_000_100), IssuedAt: i64(1_699_999_990), NotBefore: i64(1_699_999_990)}, nil},
		{"JWT-C01/exp-missing", Claims{}, ErrClaims},
		{"JWT-C01/exp-at-leeway-boundary-minus-1s", Claims{Expiry: i64(1_700_000_000 - 29)}, nil},
		{"JWT-C01/exp-at-leeway-boundary", Claims{Expiry: i64(1_700_000_000 - 30)}, ErrExpired},
		{"JWT-C01/exp-at-leeway-boundary-plus-1s", Claims{Expiry: i64(1_700_000_000 - 31)}, ErrExpired},
		{"JWT-C01/exp-zero", Claims{Expiry: i64(0)}, ErrExpired},
		{"JWT-C01/nbf-within-leeway", Claims{Expiry: i64(1_700_000_100), NotBefore: i64(1_700_000_030)}, nil},
		{"JWT-C01/nbf-beyond-leeway", Claims{Expiry: i64(1_700_000_100), NotBefore: i64(1_700_000_031)}, ErrNotYetValid},
		{"JWT-C01/iat-within-leeway", Claims{Expiry: i64(1_700_000_100), IssuedAt: i64(1_700_000_030)}, nil},
		{"JWT-C01/iat-beyond-leeway", Claims{Expiry: i64(1_700_000_100), IssuedAt: i64(1_700_000_031)}, ErrNotYetValid},
		{"JWT-C01/far-future-exp", Claims{Expiry: i64(maxNumericDate)}, nil},
		{"JWT-C01/hand-built-int64-max", Claims{Expiry: i64(1<<63 - 1)}, ErrClaims},
		{"JWT-C01/hand-built-negative-iat", Claims{Expiry: i64(1_700_000_100), IssuedAt: i64(-1)}, ErrClaims},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidateTime(tc.c, now, leeway)
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
	for _, l := range []time.Duration{-time.Second, MaxLeeway + time.Second} {
		if err := ValidateTime(Claims{Expiry: i64(1_800_000_000)}, now, l); err == nil {
			t.Errorf("leeway %v accepted", l)
		}
	}
}
