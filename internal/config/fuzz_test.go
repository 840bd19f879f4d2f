package config

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// FuzzLoad checks that Load never panics, and that whatever it accepts
// validates again.
func FuzzLoad(f *testing.F) {
	f.Add([]byte(minimalYAML))
	f.Add([]byte(minimalYAML + "idp: {signing: {algorithm: ES256}, trusted_proxies: [10.0.0.0/8]}\n"))
	f.Add([]byte(caYAML))
	f.Add([]byte("a: &a [*a, *a]\n"))
	f.Add([]byte("---\n---\n"))
	f.Add([]byte("idp:\n  access_token_ttl: !!binary aGVsbG8=\n"))
	docs, _ := filepath.Glob(filepath.Join("testdata", "*.yaml"))
	for _, d := range docs {
		if b, err := os.ReadFile(d); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, _, err := Load(bytes.NewReader(data), nil)
		if err != nil {
			return
		}
		if _, err := cfg.Validate(); err != nil {
			t.Fatalf("Load accepted a config that does not validate: %v", err)
		}
	})
}
