package secret

import (
	"encoding/base64"
	"errors"
	"testing"
)

func TestTokenEntropy(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 1000; i++ {
		s := New()
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil || len(b) != 32 {
			t.Fatalf("OA-C/entropy: %q decodes to %d bytes (%v)", s, len(b), err)
		}
		if seen[s] {
			t.Fatal("repeated token")
		}
		seen[s] = true
	}
	defer func() {
		if recover() == nil {
			t.Fatal("fewer than 128 bits must panic")
		}
	}()
	Token(15)
}

func TestKeyed(t *testing.T) {
	if _, err := NewKeyed(make([]byte, 31)); err == nil {
		t.Fatal("short pepper accepted")
	}
	k, _ := NewKeyed([]byte("0123456789abcdef0123456789abcdef"))
	k2, _ := NewKeyed([]byte("0123456789abcdef0123456789abcdeX"))
	sum := k.Sum("ghs_secret")
	cases := []struct {
		name string
		k    *Keyed
		in   string
		sum  []byte
		want bool
	}{
		{"match", k, "ghs_secret", sum, true},
		{"OA-A/wrong-secret", k, "ghs_secreT", sum, false},
		{"OA-A/prefix", k, "ghs_secre", sum, false},
		{"OA-A/other-pepper", k2, "ghs_secret", sum, false},
		{"OA-A/empty-hash", k, "ghs_secret", nil, false},
		{"OA-A/truncated-hash", k, "ghs_secret", sum[:16], false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := c.k.Verify(c.in, c.sum); got != c.want {
				t.Fatalf("Verify = %v", got)
			}
		})
	}
	if Lookup("a") == Lookup("b") || Lookup("a") != Lookup("a") {
		t.Fatal("Lookup is not a function of its input")
	}
}

func BenchmarkKeyedVerify(b *testing.B) {
	k, _ := NewKeyed(make([]byte, 32))
	sum := k.Sum("ghs_" + New())
	for b.Loop() {
		k.Verify("ghs_wrong", sum)
	}
}

// TestSealOpen: a sealed value opens only for its own record id and key.
func TestSealOpen(t *testing.T) {
	kek := make([]byte, 32)
	aead, err := NewAEAD(kek)
	if err != nil {
		t.Fatal(err)
	}
	sealed := Seal(aead, "rec-1", []byte("private key"))
	if pt, err := Open(aead, "rec-1", sealed); err != nil || string(pt) != "private key" {
		t.Fatalf("Open = %q, %v", pt, err)
	}
	other, _ := NewAEAD(append(make([]byte, 31), 1))
	flipped := append([]byte(nil), sealed...)
	flipped[len(flipped)-1] ^= 1
	for name, fn := range map[string]func() ([]byte, error){
		"moved-to-another-record": func() ([]byte, error) { return Open(aead, "rec-2", sealed) },
		"wrong-kek":               func() ([]byte, error) { return Open(other, "rec-1", sealed) },
		"tampered":                func() ([]byte, error) { return Open(aead, "rec-1", flipped) },
		"truncated":               func() ([]byte, error) { return Open(aead, "rec-1", sealed[:10]) },
	} {
		if pt, err := fn(); !errors.Is(err, ErrUnseal) || pt != nil {
			t.Errorf("%s: Open = %q, %v; want ErrUnseal", name, pt, err)
		}
	}
	if _, err := NewAEAD(kek[:16]); err == nil {
		t.Error("a 16-byte KEK was accepted")
	}
}

// TestIDNeverLooksLikeAFlag: a generated user or client ID never begins
// with '-' (a CLI would take "users disable -Vx7…" for a flag); one in 64
// base64url tokens does, so 4,096 draws would show it.
func TestIDNeverLooksLikeAFlag(t *testing.T) {
	seen := map[string]bool{}
	for range 4096 {
		id := ID()
		if id[0] == '-' {
			t.Fatalf("ID %q begins with '-'", id)
		}
		if len(id) != 22 || seen[id] {
			t.Fatalf("ID %q: want 22 characters (128 bits), unique", id)
		}
		seen[id] = true
	}
}
