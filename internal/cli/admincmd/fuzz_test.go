package admincmd

import (
	"strings"
	"testing"
)

func FuzzReadPassword(f *testing.F) {
	for _, s := range []string{"pw\n", "pw\r\n", "", "\n", "a\nb", "\r\r\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		pw, err := readPassword(strings.NewReader(in))
		if err != nil {
			return
		}
		if pw == "" || len(pw) > maxPasswordInput || strings.Contains(pw, "\n") || !strings.HasPrefix(in, pw) {
			t.Fatalf("readPassword(%q) = %q", in, pw)
		}
	})
}
