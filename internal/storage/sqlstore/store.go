// Package sqlstore implements storage.Store on database/sql for SQLite
// (modernc.org/sqlite, pure Go) and PostgreSQL (pgx/v5 stdlib).
//
// One implementation serves both databases; a small dialect layer rebinds `?`
// placeholders to `$n`, adds `FOR UPDATE` on PostgreSQL and classifies driver
// errors. Schema changes are embedded SQL files applied by Migrate.
//
// Encoding: times are unix microseconds (BIGINT, 0 = zero time.Time, so
// 1970-01-01T00:00:00Z itself cannot be stored), durations nanoseconds,
// []string JSON text. Values read back are in UTC.
//
// SQLite allows one writer: writes go through a dedicated pool of one
// connection whose transactions begin IMMEDIATE, reads use a separate
// concurrent pool (WAL mode). An in-memory SQLite database (meant for tests)
// uses a single connection for everything.
//
// Relationship storage (relations*.go, migration 0002) keeps versioned tuples
// in relation_tuples, entity attributes in relation_entities, the changes
// feed in relation_changes and the revision counter in relation_head (locked
// by every write transaction that changes something) with relation_revisions.
//
// Update callbacks (UpdateClient's fn and friends) run inside the write
// transaction: they must be quick and must not call the Store.
package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/storage"

	// Database drivers, registered as "sqlite" and "pgx".
	_ "github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite"
)

// Driver names accepted by Open.
const (
	DriverSQLite   = "sqlite"
	DriverPostgres = "postgres"
)

// Store is the database/sql implementation of storage.Store.
type Store struct {
	pg bool
	r  *sql.DB // reads
	w  *sql.DB // writes; the same pool as r on PostgreSQL

	// Prepared statements of the hot read paths.
	getClient       *sql.Stmt
	getRefreshToken *sql.Stmt
	getGrant        *sql.Stmt
	getSession      *sql.Stmt
	getEntity       *sql.Stmt
}

var _ storage.Store = (*Store)(nil)

// Open connects to the database, checks that it answers and applies pending
// migrations. driver is DriverSQLite (dsn: a path or a `file:` URI; missing
// pragmas are added) or DriverPostgres (dsn: a pgx URL or keyword string).
// A database that cannot be reached gives an error wrapping
// storage.ErrUnavailable.
func Open(ctx context.Context, driver, dsn string) (*Store, error) {
	s := &Store{}
	switch driver {
	case DriverSQLite:
		if err := s.openSQLite(dsn); err != nil {
			return nil, err
		}
	case DriverPostgres:
		db, err := sql.Open("pgx", dsn)
		if err != nil {
			return nil, fmt.Errorf("sqlstore: open postgres: %w", err)
		}
		db.SetMaxOpenConns(20)
		db.SetMaxIdleConns(10)
		db.SetConnMaxIdleTime(5 * time.Minute)
		s.pg, s.r, s.w = true, db, db
	default:
		return nil, fmt.Errorf("sqlstore: unknown driver %q (want %q or %q)", driver, DriverSQLite, DriverPostgres)
	}
	if err := s.Ping(ctx); err != nil {
		_ = s.Close()
		return nil, err
	}
	if err := s.Migrate(ctx); err != nil {
		_ = s.Close()
		return nil, err
	}
	if err := s.prepare(ctx); err != nil {
		_ = s.Close()
		return nil, err
	}
	return s, nil
}

func (s *Store) openSQLite(dsn string) error {
	if dsn == "" {
		return errors.New("sqlstore: empty sqlite dsn")
	}
	memory := strings.Contains(dsn, ":memory:") || strings.Contains(dsn, "mode=memory")
	base := sqliteDSN(dsn, memory)
	w, err := sql.Open("sqlite", addParam(base, "_txlock", "_txlock=immediate"))
	if err != nil {
		return fmt.Errorf("sqlstore: open sqlite: %w", err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	s.w, s.r = w, w
	if memory {
		return nil
	}
	r, err := sql.Open("sqlite", base)
	if err != nil {
		_ = w.Close()
		return fmt.Errorf("sqlstore: open sqlite: %w", err)
	}
	r.SetMaxOpenConns(8)
	r.SetMaxIdleConns(8)
	s.r = r
	return nil
}

// sqliteDSN turns a path into a file: URI and adds the pragmas the store
// relies on unless the caller set them.
func sqliteDSN(dsn string, memory bool) string {
	if !strings.HasPrefix(dsn, "file:") {
		dsn = "file:" + dsn
	}
	dsn = addParam(dsn, "busy_timeout", "_pragma=busy_timeout(5000)")
	dsn = addParam(dsn, "foreign_keys", "_pragma=foreign_keys(1)")
	if !memory {
		dsn = addParam(dsn, "journal_mode", "_pragma=journal_mode(WAL)")
		dsn = addParam(dsn, "synchronous", "_pragma=synchronous(NORMAL)")
	}
	return dsn
}

func addParam(dsn, name, param string) string {
	if strings.Contains(dsn, name) {
		return dsn
	}
	if strings.Contains(dsn, "?") {
		return dsn + "&" + param
	}
	return dsn + "?" + param
}

func (s *Store) prepare(ctx context.Context) error {
	for _, p := range []struct {
		dst   **sql.Stmt
		query string
	}{
		{&s.getClient, "SELECT " + clientCols + " FROM clients WHERE id = ?"},
		{&s.getRefreshToken, "SELECT " + refreshCols + " FROM refresh_tokens WHERE hash = ?"},
		{&s.getGrant, "SELECT " + grantCols + " FROM grants WHERE id = ?"},
		{&s.getSession, "SELECT " + sessionCols + " FROM sessions WHERE id_hash = ?"},
		{&s.getEntity, getEntityQuery},
	} {
		st, err := s.r.PrepareContext(ctx, s.q(p.query))
		if err != nil {
			return s.wrap("prepare", err)
		}
		*p.dst = st
	}
	return nil
}

// Ping checks that the database answers; failures wrap storage.ErrUnavailable.
func (s *Store) Ping(ctx context.Context) error {
	for _, db := range s.pools() {
		if err := db.PingContext(ctx); err != nil {
			return fmt.Errorf("sqlstore: ping: %w: %w", storage.ErrUnavailable, err)
		}
	}
	return nil
}

// Close releases the statements and connection pools.
func (s *Store) Close() error {
	var errs []error
	for _, st := range []*sql.Stmt{s.getClient, s.getRefreshToken, s.getGrant, s.getSession, s.getEntity} {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	for _, db := range s.pools() {
		errs = append(errs, db.Close())
	}
	return errors.Join(errs...)
}

func (s *Store) pools() []*sql.DB {
	if s.r == s.w {
		return []*sql.DB{s.w}
	}
	return []*sql.DB{s.w, s.r}
}

// q rebinds `?` placeholders to `$n` on PostgreSQL. Queries never contain a
// literal question mark.
func (s *Store) q(query string) string {
	if !s.pg {
		return query
	}
	var b strings.Builder
	b.Grow(len(query) + 16)
	n := 0
	for i := 0; i < len(query); i++ {
		if query[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(query[i])
	}
	return b.String()
}

// forUpdate is appended to the SELECT of a read-modify-write. SQLite needs
// none: its write transactions are serialised by BEGIN IMMEDIATE.
func (s *Store) forUpdate() string {
	if s.pg {
		return " FOR UPDATE"
	}
	return ""
}

// tx runs fn in one write transaction, committed when fn returns nil.
// Errors returned by fn are passed through unchanged.
func (s *Store) tx(ctx context.Context, op string, fn func(*sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return s.wrap(op, err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return s.wrap(op, err)
	}
	return nil
}

// exec runs one statement in tx and returns the number of affected rows.
func (s *Store) exec(ctx context.Context, tx *sql.Tx, op, query string, args ...any) (int64, error) {
	res, err := tx.ExecContext(ctx, s.q(query), args...)
	if err != nil {
		return 0, s.wrap(op, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, s.wrap(op, err)
	}
	return n, nil
}

// wrap classifies a driver error: unique violations become
// storage.ErrAlreadyExists, sql.ErrNoRows storage.ErrNotFound, connectivity
// failures storage.ErrUnavailable. The driver error stays in the chain.
func (s *Store) wrap(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("sqlstore: %s: %w", op, storage.ErrNotFound)
	case isUniqueViolation(err):
		return fmt.Errorf("sqlstore: %s: %w: %w", op, storage.ErrAlreadyExists, err)
	case isUnavailable(err):
		return fmt.Errorf("sqlstore: %s: %w: %w", op, storage.ErrUnavailable, err)
	}
	return fmt.Errorf("sqlstore: %s: %w", op, err)
}
