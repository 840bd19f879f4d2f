package sqlstore

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestSQLiteDSN(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, in string
		memory   bool
		want     string
	}{
		{"path", "/data/gh.db", false,
			"file:/data/gh.db?_pragma=busy_timeout(5000)&_pragma=foreign_keys(1)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)"},
		{"caller-pragmas-kept", "file:gh.db?_pragma=busy_timeout(100)&_pragma=synchronous(FULL)", false,
			"file:gh.db?_pragma=busy_timeout(100)&_pragma=synchronous(FULL)&_pragma=foreign_keys(1)&_pragma=journal_mode(WAL)"},
		{"memory", "file::memory:", true, "file::memory:?_pragma=busy_timeout(5000)&_pragma=foreign_keys(1)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := sqliteDSN(tc.in, tc.memory); got != tc.want {
				t.Fatalf("sqliteDSN(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

// TestSQLitePragmas checks that both pools really run with the pragmas the
// store relies on.
func TestSQLitePragmas(t *testing.T) {
	t.Parallel()
	s, err := Open(t.Context(), DriverSQLite, filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.r == s.w {
		t.Fatal("file database uses one pool for reads and writes")
	}
	for _, tc := range []struct{ pragma, want string }{
		{"journal_mode", "wal"}, {"foreign_keys", "1"}, {"busy_timeout", "5000"}, {"synchronous", "1"},
	} {
		for _, db := range s.pools() {
			var got string
			if err := db.QueryRowContext(t.Context(), "PRAGMA "+tc.pragma).Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("PRAGMA %s = %q, want %q", tc.pragma, got, tc.want)
			}
		}
	}
	if got := s.w.Stats().MaxOpenConnections; got != 1 {
		t.Errorf("write pool allows %d connections, want 1", got)
	}
}

func TestRebind(t *testing.T) {
	t.Parallel()
	pg, lite := &Store{pg: true}, &Store{}
	for _, tc := range []struct{ in, want string }{
		{"SELECT 1", "SELECT 1"},
		{"a = ? AND b = ?", "a = $1 AND b = $2"},
		{strings.Repeat("?,", 11), "$1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,"},
	} {
		if got := pg.q(tc.in); got != tc.want {
			t.Errorf("q(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if got := lite.q(tc.in); got != tc.in {
			t.Errorf("sqlite q(%q) = %q, want unchanged", tc.in, got)
		}
	}
}

func TestTimeEncoding(t *testing.T) {
	t.Parallel()
	loc := time.FixedZone("X", 3600)
	for _, in := range []time.Time{
		{},
		time.Date(2030, 1, 2, 3, 4, 5, 999_999_999, loc),
		time.Date(1969, 12, 31, 23, 0, 0, 1000, time.UTC),
	} {
		var out time.Time
		if err := (timeCol{&out}).Scan(tm(in)); err != nil {
			t.Fatal(err)
		}
		if want := in.Truncate(time.Microsecond); !out.Equal(want) || out.IsZero() != in.IsZero() {
			t.Errorf("round trip of %v = %v, want %v", in, out, want)
		}
	}
}

func FuzzRebind(f *testing.F) {
	for _, s := range []string{"", "?", "a=? and b=?", "$1 ?"} {
		f.Add(s)
	}
	s := &Store{pg: true}
	f.Fuzz(func(t *testing.T, in string) {
		out := s.q(in)
		if strings.Contains(out, "?") {
			t.Fatalf("q(%q) = %q keeps a placeholder", in, out)
		}
		if strings.Count(out, "$")-strings.Count(in, "$") != strings.Count(in, "?") {
			t.Fatalf("q(%q) = %q: placeholder count changed", in, out)
		}
	})
}

func FuzzListCol(f *testing.F) {
	for _, s := range []string{"null", "[]", `["a","b"]`, `{"a":1}`, `[1]`, "", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		var out []string
		if err := (listCol{&out}).Scan(in); err != nil {
			return // rejected, never a panic
		}
		var back []string
		if err := (listCol{&back}).Scan(js(out)); err != nil || js(back) != js(out) {
			t.Fatalf("re-encoding %q failed: %v", js(out), err)
		}
	})
}

func FuzzSQLiteDSN(f *testing.F) {
	for _, s := range []string{"db", "file:db?mode=ro", "file::memory:?cache=shared"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out := sqliteDSN(in, false)
		if !strings.HasPrefix(out, "file:") || !strings.Contains(out, strings.TrimPrefix(in, "file:")) {
			t.Fatalf("sqliteDSN(%q) = %q lost the caller's DSN", in, out)
		}
		for _, p := range []string{"busy_timeout", "foreign_keys", "journal_mode", "synchronous"} {
			if !strings.Contains(out, p) {
				t.Fatalf("sqliteDSN(%q) = %q lacks %s", in, out, p)
			}
		}
	})
}
