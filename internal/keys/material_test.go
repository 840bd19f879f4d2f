package keys

import (
	"bytes"
	"encoding/hex"
	"testing"
)

func TestDERToJOSE(t *testing.T) {
	h := func(s string) []byte {
		b, err := hex.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	r32 := bytes.Repeat([]byte{0x81}, 32)
	cases := []struct {
		name string
		der  []byte
		want []byte // nil: error
	}{
		{"high bit set: leading zero stripped", append(append(h("3046022100"), r32...), append(h("022100"), r32...)...), append(r32, r32...)},
		{"short integers are left-padded", h("3006020101020102"), append(append(make([]byte, 31), 1), append(make([]byte, 31), 2)...)},
		{"integer longer than the curve", append(append(h("3026022101"), r32...), h("020101")...), nil},
		{"trailing data", h("300602010102010200"), nil},
		{"not a sequence", h("0201010201"), nil},
		{"empty", nil, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := derToJOSE(tc.der, 32)
			if tc.want == nil {
				if err == nil {
					t.Fatalf("accepted: %x", got)
				}
				return
			}
			if err != nil || !bytes.Equal(got, tc.want) {
				t.Fatalf("got %x, %v", got, err)
			}
		})
	}
}
