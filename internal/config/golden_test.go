package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestGolden loads every testdata/*.yaml and compares the outcome (the joined
// error text, or the warnings) with testdata/<name>.golden. Run with -update
// to rewrite the golden files, then review the diff.
func TestGolden(t *testing.T) {
	docs, err := filepath.Glob(filepath.Join("testdata", "*.yaml"))
	if err != nil || len(docs) == 0 {
		t.Fatalf("no testdata documents: %v", err)
	}
	for _, doc := range docs {
		name := strings.TrimSuffix(filepath.Base(doc), ".yaml")
		t.Run(name, func(t *testing.T) {
			_, warns, err := LoadFile(doc, nil)
			var b strings.Builder
			if err != nil {
				b.WriteString("ERROR\n" + err.Error() + "\n")
			} else {
				b.WriteString("OK\n")
				for _, w := range warns {
					b.WriteString("WARNING " + w.String() + "\n")
				}
			}
			golden := filepath.Join("testdata", name+".golden")
			if *update {
				if err := os.WriteFile(golden, []byte(b.String()), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update)", err)
			}
			if b.String() != string(want) {
				t.Errorf("%s mismatch:\n--- got\n%s--- want\n%s", golden, b.String(), want)
			}
		})
	}
}
