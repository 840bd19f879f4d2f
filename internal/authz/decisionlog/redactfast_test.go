package decisionlog

import (
	"strings"
	"testing"
)

// sensitiveKeyGeneral is sensitiveKey's general form (the oracle of the
// ASCII fast path).
func sensitiveKeyGeneral(k string) bool {
	n := strings.Map(func(r rune) rune {
		switch r {
		case '-', '_', '.', ' ':
			return -1
		}
		return r
	}, strings.ToLower(k))
	for _, w := range []string{"token", "secret", "password", "passwd", "authorization", "cookie", "apikey", "private"} {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}

var sensitiveKeySeeds = []string{
	"", "status", "access_token", "X-Api-Key", "Set-Cookie", "private_key", "clientSecret", "PASS.WORD", "pass word",
	"to-ken", "t_o_k_e_n", "authorization", "AUTHORIZATION", "tok\u212Aen", "\u212Aey", "toke", "api-ke y",
	strings.Repeat("a", 64) + "token", strings.Repeat("a", 59) + "token", "tökèn", "passwd\x00",
}

func TestSensitiveASCIIKeyMatchesGeneral(t *testing.T) {
	for _, k := range sensitiveKeySeeds {
		t.Run("redaction/"+k, func(t *testing.T) {
			if got, want := sensitiveKey(k), sensitiveKeyGeneral(k); got != want {
				t.Fatalf("sensitiveKey(%q) = %v, want %v", k, got, want)
			}
		})
	}
}

// FuzzSensitiveKey is the differential check of the ASCII fast path.
func FuzzSensitiveKey(f *testing.F) {
	for _, k := range sensitiveKeySeeds {
		f.Add(k)
	}
	f.Fuzz(func(t *testing.T, k string) {
		if got, want := sensitiveKey(k), sensitiveKeyGeneral(k); got != want {
			t.Fatalf("sensitiveKey(%q) = %v, want %v", k, got, want)
		}
	})
}
