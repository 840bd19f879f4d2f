package decisionlog

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

func FuzzRead(f *testing.F) {
	f.Add([]byte(goodLine + "\n"))
	f.Add([]byte(goodLine + "\n\n" + strings.Replace(goodLine, `"allow":true`, `"allow":false,"context":{"a":[1,{"b":null}]},"shadow":{"allow":true,"disagree":true}`, 1)))
	f.Add([]byte(`{"decision_id":"x","bogus":1}`))
	f.Add([]byte("null\n[]\n{}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		es, err := Read(bytes.NewReader(data), Filter{})
		if err != nil {
			if es != nil {
				t.Fatal("entries with an error")
			}
			return
		}
		// Whatever was accepted re-encodes to lines Read accepts, giving
		// the same entries in the same order.
		var buf bytes.Buffer
		for _, e := range slices.Backward(es) {
			b, err := json.Marshal(&e)
			if err != nil {
				t.Fatalf("re-encode: %v", err)
			}
			buf.Write(append(b, '\n'))
		}
		es2, err := Read(&buf, Filter{})
		if err != nil {
			t.Fatalf("re-read: %v", err)
		}
		a, _ := json.Marshal(es)
		b, _ := json.Marshal(es2)
		if !bytes.Equal(a, b) {
			t.Fatalf("round trip differs:\n%s\n%s", a, b)
		}
	})
}

func FuzzRedact(f *testing.F) {
	f.Add([]byte(`{"token":"x","a":{"Password":"p","b":[{"api-key":"k"}]}}`))
	f.Add([]byte(`{"list":[[{"cookie":1}]],"ok":"v"}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		var m map[string]any
		if dec.Decode(&m) != nil {
			return
		}
		before, err := json.Marshal(m)
		if err != nil {
			return
		}
		got := Redact(m)
		if after, _ := json.Marshal(m); !bytes.Equal(before, after) {
			t.Fatal("Redact modified its input")
		}
		checkRedacted(t, got)
		again := Redact(got)
		a, _ := json.Marshal(got)
		b, _ := json.Marshal(again)
		if !bytes.Equal(a, b) {
			t.Fatalf("Redact not idempotent:\n%s\n%s", a, b)
		}
	})
}

// checkRedacted fails if a sensitive key anywhere holds anything but
// Redacted.
func checkRedacted(t *testing.T, v any) {
	t.Helper()
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if sensitiveKey(k) {
				if e != Redacted {
					t.Fatalf("secret-in-log/fuzz: %q holds %#v", k, e)
				}
				continue
			}
			checkRedacted(t, e)
		}
	case []any:
		for _, e := range x {
			checkRedacted(t, e)
		}
	}
}
