package policy

import (
	"os"
	"path/filepath"
	"testing"
)

func loadDemo(t testing.TB) *Set {
	t.Helper()
	s, err := Load(filepath.Join("testdata", "demo"))
	if err != nil {
		t.Fatalf("load demo: %v", err)
	}
	return s
}

func TestDemoSet(t *testing.T) {
	s := loadDemo(t)
	if s.Len() != 7 {
		t.Fatalf("Len = %d, want 7", s.Len())
	}
	src, err := os.ReadFile(filepath.Join("testdata", "demo", "demo_test.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := RunTests(s, "demo_test.yaml", src)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) < 15 {
		t.Fatalf("only %d cases", len(res))
	}
	for _, r := range res {
		if !r.Pass {
			t.Errorf("%s: %s", r.Name, r.Message)
		}
	}
}
