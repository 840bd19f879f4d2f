// Package pgtest gives tests an isolated PostgreSQL schema in the database
// named by GATEHOUSE_TEST_POSTGRES_DSN. Without the variable a test is
// skipped locally but fails when CI is set, so PostgreSQL tests never skip
// silently in CI.
package pgtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"os"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
)

// EnvVar names the PostgreSQL DSN tests use.
const EnvVar = "GATEHOUSE_TEST_POSTGRES_DSN"

// DSN returns the configured DSN, skipping (locally) or failing (CI) without it.
func DSN(tb testing.TB) string {
	tb.Helper()
	dsn := os.Getenv(EnvVar)
	if dsn == "" {
		if os.Getenv("CI") != "" {
			tb.Fatalf("%s must be set in CI", EnvVar)
		}
		tb.Skipf("%s not set", EnvVar)
	}
	return dsn
}

// SchemaDSN creates a fresh schema, drops it when the test ends, and returns
// a DSN whose search_path points at it.
func SchemaDSN(tb testing.TB) string {
	tb.Helper()
	dsn := DSN(tb)
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		tb.Fatal(err)
	}
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	schema := "gh_test_" + hex.EncodeToString(b)
	if _, err := db.ExecContext(tb.Context(), "CREATE SCHEMA "+schema); err != nil {
		_ = db.Close()
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := db.ExecContext(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			tb.Errorf("drop schema %s: %v", schema, err)
		}
		_ = db.Close()
	})
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	return dsn + sep + "search_path=" + schema
}
