package edge

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
)

const testJWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl"

func TestBearerToken(t *testing.T) {
	huge := "Bearer " + strings.Repeat("A", 1<<20)
	dots := "Bearer " + strings.Repeat(".", 1_000_000)
	tests := []struct {
		name    string
		h       http.Header
		query   string
		want    string
		wantErr error
	}{
		{"GW-04/valid", http.Header{"Authorization": {"Bearer " + testJWT}}, "", testJWT, nil},
		{"GW-04/lowercase-bearer-ok", http.Header{"Authorization": {"bearer " + testJWT}}, "", testJWT, nil},
		{"GW-04/uppercase-bearer-ok", http.Header{"Authorization": {"BEARER abc"}}, "", "abc", nil},
		{"GW-04/token68-padding", http.Header{"Authorization": {"Bearer abc+/-._~=="}}, "", "abc+/-._~==", nil},
		{"GW-04/two-authorization-lines", http.Header{"Authorization": {"Bearer a", "Bearer b"}}, "", "", ErrMultipleAuthorization},
		{"GW-04/two-authorization-keys", http.Header{"Authorization": {"Bearer a"}, "authorization": {"Bearer b"}}, "", "", ErrMultipleAuthorization},
		{"GW-04/second-line-empty", http.Header{"Authorization": {"Bearer a", ""}}, "", "", ErrMultipleAuthorization},
		{"GW-04/access-token-in-query", http.Header{}, "access_token=abc", "", ErrTokenInQuery},
		{"GW-04/ACCESS_TOKEN-in-query", http.Header{}, "x=1&ACCESS_TOKEN=abc", "", ErrTokenInQuery},
		{"GW-04/encoded-name-in-query", http.Header{}, "access%5Ftoken=abc", "", ErrTokenInQuery},
		{"GW-04/fully-encoded-name-in-query", http.Header{}, "%61%63%63%65%73%73%5f%74%6f%6b%65%6e=abc", "", ErrTokenInQuery},
		{"GW-04/array-name-in-query", http.Header{}, "access_token[]=abc", "", ErrTokenInQuery},
		{"GW-04/semicolon-separator", http.Header{}, "a=1;token=abc", "", ErrTokenInQuery},
		{"GW-04/token-param-in-query", http.Header{}, "Token=abc", "", ErrTokenInQuery},
		{"GW-04/id-token-in-query", http.Header{}, "id_token=abc", "", ErrTokenInQuery},
		{"GW-04/name-without-value", http.Header{}, "access_token", "", ErrTokenInQuery},
		{"GW-04/token-in-both", http.Header{"Authorization": {"Bearer " + testJWT}}, "access_token=" + testJWT, "", ErrTokenInQuery},
		{"GW-04/other-query-ok", http.Header{"Authorization": {"Bearer abc"}}, "page_token=1&tokens=2&x_access_token=3", "abc", nil},
		{"GW-04/no-token", http.Header{"X-Request-Id": {"1"}}, "q=1", "", ErrNoToken},
		{"GW-04/double-space", http.Header{"Authorization": {"Bearer  abc"}}, "", "", ErrMalformedAuthorization},
		{"GW-04/tab-separator", http.Header{"Authorization": {"Bearer\tabc"}}, "", "", ErrMalformedAuthorization},
		{"GW-04/basic-scheme", http.Header{"Authorization": {"Basic dXNlcjpwYXNz"}}, "", "", ErrMalformedAuthorization},
		{"GW-04/bearer-prefix-word", http.Header{"Authorization": {"Bearerx abc"}}, "", "", ErrMalformedAuthorization},
		{"GW-04/empty-token", http.Header{"Authorization": {"Bearer "}}, "", "", ErrMalformedAuthorization},
		{"GW-04/scheme-only", http.Header{"Authorization": {"Bearer"}}, "", "", ErrMalformedAuthorization},
		{"GW-04/empty-header", http.Header{"Authorization": {""}}, "", "", ErrMalformedAuthorization},
		{"GW-04/two-tokens-comma", http.Header{"Authorization": {"Bearer a, Bearer b"}}, "", "", ErrMalformedAuthorization},
		{"GW-04/trailing-space", http.Header{"Authorization": {"Bearer abc "}}, "", "", ErrMalformedAuthorization},
		{"GW-04/only-padding", http.Header{"Authorization": {"Bearer ==="}}, "", "", ErrMalformedAuthorization},
		{"GW-04/padding-in-middle", http.Header{"Authorization": {"Bearer ab=c"}}, "", "", ErrMalformedAuthorization},
		{"GW-04/newline", http.Header{"Authorization": {"Bearer ab\ncd"}}, "", "", ErrMalformedAuthorization},
		{"GW-04/non-ascii", http.Header{"Authorization": {"Bearer ab\xc3\xa9"}}, "", "", ErrMalformedAuthorization},
		{"JWT-F01/1MB-header", http.Header{"Authorization": {huge}}, "", "", ErrMalformedAuthorization},
		{"JWT-F01/million-dots", http.Header{"Authorization": {dots}}, "", "", ErrMalformedAuthorization},
		{"JWT-F01/1MB-second-line", http.Header{"Authorization": {"Bearer a", huge}}, "", "", ErrMalformedAuthorization},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			got, err := BearerToken(tc.h, tc.query, 16<<10)
			if d := time.Since(start); d > 200*time.Millisecond && !raceEnabled {
				t.Errorf("took %v", d)
			}
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) || got != "" {
					t.Fatalf("BearerToken = %q, %v; want %v", got, err, tc.wantErr)
				}
				if strings.Contains(err.Error(), "abc") || strings.Contains(err.Error(), "eyJ") {
					t.Fatalf("error leaks the token: %v", err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("BearerToken = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestBearerTokenMaxLen(t *testing.T) {
	h := http.Header{"Authorization": {"Bearer abcdef"}}
	if _, err := BearerToken(h, "", 5); !errors.Is(err, ErrMalformedAuthorization) {
		t.Fatalf("GW-04: token over maxLen accepted: %v", err)
	}
	if got, err := BearerToken(h, "", 6); err != nil || got != "abcdef" {
		t.Fatalf("token at maxLen rejected: %q %v", got, err)
	}
	big := http.Header{"Authorization": {"Bearer " + strings.Repeat("a", DefaultMaxTokenLen+1)}}
	if _, err := BearerToken(big, "", 0); !errors.Is(err, ErrMalformedAuthorization) {
		t.Fatalf("JWT-F01: default limit not applied: %v", err)
	}
}

func TestBodyHasToken(t *testing.T) {
	tests := []struct {
		name string
		body string
		want bool
	}{
		{"GW-04/body-access-token", "access_token=abc", true},
		{"GW-04/body-access-token-later", "a=1&ACCESS_TOKEN=abc", true},
		{"GW-04/body-encoded-name", "a=1&access%5ftoken=abc", true},
		{"GW-04/body-no-token", "a=1&b=2", false},
		{"GW-04/body-csrf-token-allowed", "token=csrf&csrf_token=x", false},
		{"GW-04/body-value-only", "a=access_token", false},
		{"GW-04/body-empty", "", false},
		{"GW-04/body-truncated-name", "a=1&access_tok", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := BodyHasToken([]byte(tc.body)); got != tc.want {
				t.Fatalf("BodyHasToken(%q) = %v, want %v", tc.body, got, tc.want)
			}
		})
	}
}
