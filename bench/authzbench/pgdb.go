package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver

	"github.com/gatehouse/gatehouse/internal/storage/sqlstore"
)

// benchName is the name of the benchmark's own PostgreSQL database and
// schema: the graph is loaded into schema gatehouse_bench of database
// gatehouse_bench (created when permitted), else into schema gatehouse_bench
// of the given database. Nothing else is ever touched.
var benchName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`)

// graphDB is where the graph lives: a store over a dedicated schema, and a
// plain connection to the same schema for counting and bookkeeping.
type graphDB struct {
	driver, dsn string // what sqlstore.Open gets
	db          *sql.DB
	pg          bool
	schema      string
	where       string // for humans: "database X, schema Y" or a file
}

func (g *graphDB) close() {
	if g.db != nil {
		_ = g.db.Close()
	}
}

// openGraphDB prepares the benchmark's place: for PostgreSQL, the database
// name (created if missing and permitted) and schema name; for SQLite, the
// file. It does not open the store.
func openGraphDB(ctx context.Context, driver, dsn, name string) (*graphDB, error) {
	if !benchName.MatchString(name) {
		return nil, fmt.Errorf("-database: %q must match %s", name, benchName)
	}
	switch driver {
	case sqlstore.DriverSQLite:
		fdsn := dsn
		if !strings.HasPrefix(fdsn, "file:") {
			fdsn = "file:" + fdsn
		}
		db, err := sql.Open("sqlite", fdsn+"?_pragma=busy_timeout(5000)")
		if err != nil {
			return nil, fmt.Errorf("open sqlite: %w", err)
		}
		return &graphDB{driver: driver, dsn: dsn, db: db, where: "SQLite " + dsn}, nil
	case sqlstore.DriverPostgres:
	default:
		return nil, fmt.Errorf("-driver: %q is not %q or %q", driver, sqlstore.DriverPostgres, sqlstore.DriverSQLite)
	}
	u, err := url.Parse(dsn)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return nil, errors.New("-dsn: must be a postgres:// URL")
	}
	base, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	defer base.Close()
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	target := *u
	var exists bool
	if err := base.QueryRowContext(cctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	if !exists {
		// The name is checked against benchName above: safe to splice.
		if _, err := base.ExecContext(cctx, "CREATE DATABASE "+name); err == nil {
			exists = true
		}
	}
	where := "database " + strings.TrimPrefix(u.Path, "/") + ", schema " + name
	if exists {
		target.Path = "/" + name
		where = "database " + name + ", schema " + name
	}
	q := target.Query()
	q.Set("search_path", name)
	target.RawQuery = q.Encode()
	db, err := sql.Open("pgx", target.String())
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	if _, err := db.ExecContext(cctx, "CREATE SCHEMA IF NOT EXISTS "+name); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("create schema %s: %w", name, err)
	}
	return &graphDB{driver: driver, dsn: target.String(), db: db, pg: true, schema: name, where: where}, nil
}

// reset drops everything in the benchmark's schema (PostgreSQL) or every
// relation tuple (SQLite), so the next open starts empty.
func (g *graphDB) reset(ctx context.Context) error {
	if g.pg {
		if _, err := g.db.ExecContext(ctx, "DROP SCHEMA IF EXISTS "+g.schema+" CASCADE"); err != nil {
			return fmt.Errorf("drop schema: %w", err)
		}
		if _, err := g.db.ExecContext(ctx, "CREATE SCHEMA "+g.schema); err != nil {
			return fmt.Errorf("create schema: %w", err)
		}
		return nil
	}
	for _, stmt := range []string{"DROP TABLE IF EXISTS authzbench_shape", "DELETE FROM relation_tuples"} {
		if _, err := g.db.ExecContext(ctx, stmt); err != nil && !strings.Contains(err.Error(), "no such table") {
			return fmt.Errorf("reset: %w", err)
		}
	}
	return nil
}

// loadedShape returns the shape recorded by the last complete load and the
// live tuple count, ("", 0) when nothing was loaded.
func (g *graphDB) loadedShape(ctx context.Context) (string, int, error) {
	var shape string
	err := g.db.QueryRowContext(ctx, "SELECT shape FROM authzbench_shape").Scan(&shape)
	if err != nil {
		return "", 0, nil // no table or no row: not loaded
	}
	var n int
	if err := g.db.QueryRowContext(ctx, "SELECT count(*) FROM relation_tuples WHERE deleted_rev = 0").Scan(&n); err != nil {
		return "", 0, fmt.Errorf("count tuples: %w", err)
	}
	return shape, n, nil
}

// markLoaded records shape after a complete load.
func (g *graphDB) markLoaded(ctx context.Context, shape string) error {
	for _, stmt := range []string{"CREATE TABLE IF NOT EXISTS authzbench_shape (shape TEXT NOT NULL)", "DELETE FROM authzbench_shape"} {
		if _, err := g.db.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("record shape: %w", err)
		}
	}
	ph := "?"
	if g.pg {
		ph = "$1"
	}
	if _, err := g.db.ExecContext(ctx, "INSERT INTO authzbench_shape (shape) VALUES ("+ph+")", shape); err != nil {
		return fmt.Errorf("record shape: %w", err)
	}
	return nil
}

// analyze refreshes the planner statistics after a bulk load.
func (g *graphDB) analyze(ctx context.Context) error {
	stmt := "ANALYZE"
	if g.pg {
		stmt = "ANALYZE relation_tuples"
	}
	if _, err := g.db.ExecContext(ctx, stmt); err != nil {
		return fmt.Errorf("analyze: %w", err)
	}
	return nil
}

// shape identifies a graph's content.
func (g graph) shape() string {
	return fmt.Sprintf("users=%d per_user=%d levels=%d fanout=%d top=%d docs=%d viewers=%d seed=%d tuples=%d",
		g.users, g.perUser, g.levels, g.fanout, g.top, g.docs, g.viewers, g.seed, g.tupleCount())
}
