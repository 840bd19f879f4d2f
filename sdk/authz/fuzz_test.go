package authz

import (
	"bytes"
	"testing"

	"github.com/gatehouse/gatehouse/sdk/jwtx"
)

// FuzzDecodeDecision: the decoder never panics, accepts only strict JSON
// objects with a boolean "allow", and never allows without a literal true.
func FuzzDecodeDecision(f *testing.F) {
	for _, s := range []string{
		`{"allow":true}`, `{"allow":false,"reason":"x","policies":["a"],"relations":[{"check":"c","allowed":true,"path":["p"]}]}`,
		`{"allow":"true"}`, `{"allow":false,"allow":true}`, `{"Allow":true}`, `{"allow":true,"errors":[{"a":1},"s"]}`,
		`{"allow":true,"revision":null}`, `[]`, `{"allow":tru}`, "{\"allow\":true,\"reason\":\"\\u0000\"}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := decodeDecision(data)
		if err != nil {
			if d.Allow {
				t.Fatal("error with allow")
			}
			return
		}
		if jwtx.CheckObject(data) != nil {
			t.Fatalf("accepted a document the strict check refuses: %q", data)
		}
		if d.Allow && !bytes.Contains(data, []byte("true")) {
			t.Fatalf("allow without a literal true: %q", data)
		}
		if _, err := decodeBatch(append(append([]byte(`{"results":[`), data...), "]}"...)); err != nil {
			t.Fatalf("a decision accepted alone is refused in a batch: %v", err)
		}
	})
}
