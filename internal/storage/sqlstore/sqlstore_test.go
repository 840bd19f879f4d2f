package sqlstore_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/storage"
	"github.com/gatehouse/gatehouse/internal/storage/conformance"
	"github.com/gatehouse/gatehouse/internal/storage/sqlstore"
)

const postgresEnv = "GATEHOUSE_TEST_POSTGRES_DSN"

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

// postgresDSN returns the test database DSN; without one the test is skipped
// locally and fails in CI.
func postgresDSN(tb testing.TB) string {
	tb.Helper()
	dsn := os.Getenv(postgresEnv)
	if dsn == "" {
		if os.Getenv("CI") != "" {
			tb.Fatalf("%s must be set in CI", postgresEnv)
		}
		tb.Skipf("%s not set", postgresEnv)
	}
	return dsn
}

// pgSchemas creates isolated schemas in the test database and returns, for
// each, a DSN whose search_path points at it. Schemas are dropped in cleanup.
type pgSchemas struct {
	dsn   string
	admin *sql.DB
}

func newPGSchemas(tb testing.TB) *pgSchemas {
	tb.Helper()
	dsn := postgresDSN(tb)
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = admin.Close() })
	return &pgSchemas{dsn: dsn, admin: admin}
}

func (p *pgSchemas) schemaDSN(tb testing.TB) string {
	tb.Helper()
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	schema := "gh_test_" + hex.EncodeToString(b)
	if _, err := p.admin.ExecContext(tb.Context(), "CREATE SCHEMA "+schema); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := p.admin.ExecContext(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			tb.Errorf("drop schema: %v", err)
		}
	})
	sep := "?"
	if strings.Contains(p.dsn, "?") {
		sep = "&"
	}
	return p.dsn + sep + "search_path=" + schema
}

func (p *pgSchemas) open(tb testing.TB) *sqlstore.Store {
	tb.Helper()
	s, err := sqlstore.Open(tb.Context(), sqlstore.DriverPostgres, p.schemaDSN(tb))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = s.Close() }) // runs before the schema is dropped
	return s
}

func TestPostgres(t *testing.T) {
	t.Parallel()
	p := newPGSchemas(t)
	conformance.RunTests(t, func(t *testing.T) storage.Store { return p.open(t) })
}

// TestPostgresConcurrentMigrate opens two stores on one empty schema at once,
// as two replicas starting together would: both must succeed.
func TestPostgresConcurrentMigrate(t *testing.T) {
	t.Parallel()
	p := newPGSchemas(t)
	dsn := p.schemaDSN(t)
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
	b.Run("postgres", func(b *testing.B) { benchmarkGetClient(b, newPGSchemas(b).open(b)) })
}
