package sqlstore_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/storage"
	"github.com/gatehouse/gatehouse/internal/storage/conformance"
	"github.com/gatehouse/gatehouse/internal/storage/sqlstore"
	"github.com/gatehouse/gatehouse/internal/testutil/pgtest"
)

func newSQLite(tb testing.TB) *sqlstore.Store {
	tb.Helper()
	s, err := sqlstore.Open(tb.Context(), sqlstore.DriverSQLite, filepath.Join(tb.TempDir(), "gatehouse.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	return s
}

func TestSQLite(t *testing.T) {
	t.Parallel()
	conformance.RunTests(t, func(t *testing.T) storage.Store { return newSQLite(t) })
}

// TestSQLiteMemory runs the suite on an in-memory database, which uses one
// connection for reads and writes.
func TestSQLiteMemory(t *testing.T) {
	t.Parallel()
	conformance.RunTests(t, func(t *testing.T) storage.Store {
		s, err := sqlstore.Open(t.Context(), sqlstore.DriverSQLite, "file::memory:")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	})
}

// openPG opens a store on a fresh PostgreSQL schema (pgtest skips locally
// without GATEHOUSE_TEST_POSTGRES_DSN and fails in CI).
func openPG(tb testing.TB) *sqlstore.Store {
	tb.Helper()
	s, err := sqlstore.Open(tb.Context(), sqlstore.DriverPostgres, pgtest.SchemaDSN(tb))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = s.Close() }) // runs before the schema is dropped
	return s
}

func TestPostgres(t *testing.T) {
	t.Parallel()
	conformance.RunTests(t, func(t *testing.T) storage.Store { return openPG(t) })
}

// TestPostgresConcurrentMigrate opens two stores on one empty schema at once,
// as two replicas starting together would: both must succeed.
func TestPostgresConcurrentMigrate(t *testing.T) {
	t.Parallel()
	dsn := pgtest.SchemaDSN(t)
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range errs {
		wg.Go(func() {
			s, err := sqlstore.Open(t.Context(), sqlstore.DriverPostgres, dsn)
			if err == nil {
				err = s.Close()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestMigrateIdempotent(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "db")
	for range 2 {
		s, err := sqlstore.Open(t.Context(), sqlstore.DriverSQLite, path)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Migrate(t.Context()); err != nil {
			t.Fatal(err)
		}
		// The data of the first round survives the second migration.
		if err := s.CreateClient(t.Context(), storage.Client{ID: "c1"}); err != nil && !errors.Is(err, storage.ErrAlreadyExists) {
			t.Fatal(err)
		}
		if _, err := s.GetClient(t.Context(), "c1"); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestUnavailable(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, driver, dsn string
	}{
		{"postgres-closed-port", sqlstore.DriverPostgres, "postgres://root@127.0.0.1:1/test?sslmode=disable&connect_timeout=3"},
		{"sqlite-missing-directory", sqlstore.DriverSQLite, filepath.Join(t.TempDir(), "missing", "dir", "db")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			s, err := sqlstore.Open(ctx, tc.driver, tc.dsn)
			if err == nil {
				_ = s.Close()
				t.Fatal("Open succeeded on a database that is down")
			}
			if !errors.Is(err, storage.ErrUnavailable) {
				t.Fatalf("error %v does not wrap storage.ErrUnavailable", err)
			}
		})
	}
	t.Run("unknown-driver", func(t *testing.T) {
		_, err := sqlstore.Open(t.Context(), "mysql", "x")
		if err == nil || errors.Is(err, storage.ErrUnavailable) {
			t.Fatalf("error = %v, want a configuration error", err)
		}
	})
}

func benchmarkGetClient(b *testing.B, s *sqlstore.Store) {
	c := storage.Client{ID: "bench", Name: "Bench", SecretHash: make([]byte, 32), RedirectURIs: []string{"https://a.example/cb"},
		GrantTypes: []string{"authorization_code", "refresh_token"}, Scopes: []string{"openid", "profile"}, CreatedAt: time.Now()}
	if err := s.CreateClient(b.Context(), c); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.GetClient(context.Background(), "bench"); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkGetClient(b *testing.B) {
	b.Run("sqlite", func(b *testing.B) { benchmarkGetClient(b, newSQLite(b)) })
	b.Run("postgres", func(b *testing.B) { benchmarkGetClient(b, openPG(b)) })
}
