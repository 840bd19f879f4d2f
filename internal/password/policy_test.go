package password

import (
	"errors"
	"strings"
	"testing"
)

func TestPolicy(t *testing.T) {
	tests := []struct {
		name string
		pw   string
		want error
	}{
		{"ok/passphrase", "correct horse battery staple", nil},
		{"ok/random", "vT9#qLm2!xRz", nil},
		{"ok/eight-chars", "Zq8#vLm2", nil},
		{"ok/unicode-eight-runes", "日本語のパスワード", nil},
		{"ok/max-len", strings.Repeat("ab", MaxLen/2-2) + "xyz!", nil},
		{"PW-01/empty", "", ErrTooShort},
		{"PW-01/seven", "Zq8#vLm", ErrTooShort},
		// Seven runes, more than eight bytes: length counts characters.
		{"PW-01/seven-runes-many-bytes", "日本語パスワ語", ErrTooShort},
		{"PW-01/over-max", strings.Repeat("x", MaxLen+1), ErrTooLong},
		{"PW-01/invalid-utf8", "abcdefgh\xff\xfe", ErrInvalidUTF8},
		{"PW-01/common/password", "password", ErrCommon},
		{"PW-01/common/case-insensitive", "PassWord", ErrCommon},
		{"PW-01/common/12345678", "12345678", ErrCommon},
		{"PW-01/common/123456789", "123456789", ErrCommon},
		{"PW-01/common/qwerty123", "qwerty123", ErrCommon},
		{"PW-01/common/iloveyou", "iloveyou", ErrCommon},
		{"PW-01/common/1q2w3e4r", "1q2w3e4r", ErrCommon},
		{"PW-01/common/p@ssw0rd", "P@ssw0rd", ErrCommon},
		{"PW-01/common/qwertyuiop", "qwertyuiop", ErrCommon},
		{"PW-01/common/suffix-year", "Sunshine2024", ErrCommon},
		{"PW-01/common/suffix-symbols", "Dragon123!", ErrCommon},
		{"PW-01/common/suffix-digit", "football7", ErrCommon},
		{"PW-01/common/repeated-char", "aaaaaaaaaaaa", ErrCommon},
		{"PW-01/common/repeated-unit", "abcabcabcabc", ErrCommon},
		{"PW-01/common/repeated-pair", "12121212", ErrCommon},
		{"PW-01/common/ascending", "abcdefghij", ErrCommon},
		{"PW-01/common/descending", "98765432", ErrCommon},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := Policy(tt.pw); !errors.Is(err, tt.want) {
				t.Fatalf("Policy(%.40q) = %v, want %v", tt.pw, err, tt.want)
			}
		})
	}
}

func TestCommonListLoaded(t *testing.T) {
	set := commonSet()
	if len(set) < 1000 {
		t.Fatalf("common list has %d entries, want at least 1000", len(set))
	}
	for w := range set {
		if w != strings.ToLower(w) || w != strings.TrimSpace(w) {
			t.Fatalf("list entry %q is not lower-cased and trimmed", w)
		}
	}
}
