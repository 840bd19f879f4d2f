package password

import (
	_ "embed"
	"strings"
	"sync"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// commonList holds lower-cased common passwords, one a line: the top entries
// of public breach corpora, keyboard walks, names and words with the usual
// digit suffixes.
//
//go:embed common.txt
var commonList string

// commonSet is built once, on first use, and never modified afterwards.
var commonSet = sync.OnceValue(func() map[string]struct{} {
	set := make(map[string]struct{}, 1600)
	for line := range strings.Lines(commonList) {
		if w := strings.TrimSpace(line); w != "" {
			set[w] = struct{}{}
		}
	}
	return set
})

// maxSuffix is how many trailing digits or symbols are stripped to find a
// common base word ("Sunshine2024!" -> "sunshine").
const maxSuffix = 5

// Policy checks a new password: at most MaxLen bytes (ErrTooLong), valid
// UTF-8 (ErrInvalidUTF8), at least MinLen characters (ErrTooShort), and not
// common (ErrCommon). Common means, compared lower-cased: on the embedded
// list; a listed word of four or more characters followed by up to five
// digits or symbols; one short unit repeated ("abcabcabc", "aaaaaaaa"); or a
// run of consecutive characters ("12345678", "hgfedcba").
func Policy(pw string) error {
	if len(pw) > MaxLen {
		return ErrTooLong
	}
	if !utf8.ValidString(pw) {
		return ErrInvalidUTF8
	}
	if utf8.RuneCountInString(pw) < MinLen {
		return ErrTooShort
	}
	if isCommon(strings.ToLower(normalize(pw))) {
		return ErrCommon
	}
	return nil
}

// normalize returns the NFC form of pw so that the same password typed on
// systems that compose accents differently hashes the same (RFC 8265,
// OpaqueString). Invalid UTF-8 is left as it is.
func normalize(pw string) string {
	if !utf8.ValidString(pw) || norm.NFC.IsNormalString(pw) {
		return pw
	}
	return norm.NFC.String(pw)
}

func isCommon(pw string) bool {
	set := commonSet()
	if _, ok := set[pw]; ok {
		return true
	}
	for i := 1; i <= maxSuffix && i < len(pw); i++ {
		if !isDecoration(pw[len(pw)-i]) {
			break
		}
		base := pw[:len(pw)-i]
		if _, ok := set[base]; ok && len(base) >= 4 {
			return true
		}
	}
	return isRepeated(pw) || isSequence(pw)
}

func isDecoration(c byte) bool {
	return c >= '0' && c <= '9' || strings.IndexByte("!@#$%^&*()-_=+.,?~", c) >= 0
}

// isRepeated reports whether s is one unit of at most four bytes repeated.
func isRepeated(s string) bool {
	for n := 1; n <= 4 && 2*n <= len(s); n++ {
		if len(s)%n == 0 && strings.Repeat(s[:n], len(s)/n) == s {
			return true
		}
	}
	return false
}

// isSequence reports whether s is a run of consecutive ASCII characters,
// ascending or descending.
func isSequence(s string) bool {
	if len(s) < 2 {
		return false
	}
	step := int(s[1]) - int(s[0])
	if step != 1 && step != -1 {
		return false
	}
	for i := 2; i < len(s); i++ {
		if int(s[i])-int(s[i-1]) != step {
			return false
		}
	}
	return true
}
