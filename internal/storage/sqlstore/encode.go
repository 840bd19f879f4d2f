package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// tm encodes a time as unix microseconds; the zero time is 0.
func tm(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

// timeCol scans a unix-microsecond column into a UTC time.
type timeCol struct{ p *time.Time }

func (c timeCol) Scan(src any) error {
	n, err := asInt64(src)
	if err != nil {
		return err
	}
	if n == 0 {
		*c.p = time.Time{}
		return nil
	}
	*c.p = time.UnixMicro(n).UTC()
	return nil
}

// durCol scans a nanosecond column into a time.Duration.
type durCol struct{ p *time.Duration }

func (c durCol) Scan(src any) error {
	n, err := asInt64(src)
	*c.p = time.Duration(n)
	return err
}

func asInt64(src any) (int64, error) {
	switch v := src.(type) {
	case int64:
		return v, nil
	case nil:
		return 0, nil
	}
	return 0, fmt.Errorf("sqlstore: unexpected integer column type %T", src)
}

// js encodes a string list as JSON text (nil as "null", so nil and empty
// round-trip distinctly).
func js(v []string) string {
	b, err := json.Marshal(v)
	if err != nil { // cannot happen for []string
		panic(err)
	}
	return string(b)
}

// listCol scans JSON text into a []string.
type listCol struct{ p *[]string }

func (c listCol) Scan(src any) error {
	var b []byte
	switch v := src.(type) {
	case string:
		b = []byte(v)
	case []byte:
		b = v
	case nil:
		*c.p = nil
		return nil
	default:
		return fmt.Errorf("sqlstore: unexpected list column type %T", src)
	}
	var out []string
	if err := json.Unmarshal(b, &out); err != nil {
		return fmt.Errorf("sqlstore: decode list column: %w", err)
	}
	*c.p = out
	return nil
}

// bytesCol scans a BLOB/BYTEA column, copying it; empty reads back as nil.
type bytesCol struct{ p *[]byte }

func (c bytesCol) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*c.p = nil
	case []byte:
		if len(v) == 0 {
			*c.p = nil
		} else {
			*c.p = append([]byte(nil), v...)
		}
	case string:
		if v == "" {
			*c.p = nil
		} else {
			*c.p = []byte(v)
		}
	default:
		return fmt.Errorf("sqlstore: unexpected bytes column type %T", src)
	}
	return nil
}

// blob encodes a byte slice; empty is stored as NULL.
func blob(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}

type scanner interface{ Scan(dest ...any) error }

func isUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "23505"
	}
	var sqErr *sqlite.Error
	if errors.As(err, &sqErr) {
		c := sqErr.Code()
		return c == sqlite3.SQLITE_CONSTRAINT_UNIQUE || c == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	return false
}

func isUnavailable(err error) bool {
	if errors.Is(err, driver.ErrBadConn) || errors.Is(err, sql.ErrConnDone) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return true
	}
	if pgconn.SafeToRetry(err) || pgconn.Timeout(err) {
		return true
	}
	var connErr *pgconn.ConnectError
	if errors.As(err, &connErr) {
		return true
	}
	var netErr *net.OpError
	if errors.As(err, &netErr) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		// Class 08 connection exception; 57P01-03 shutdown / cannot connect
		// now; 53300 too many connections.
		c := pgErr.Code
		return len(c) == 5 && (c[:2] == "08" || c == "57P01" || c == "57P02" || c == "57P03" || c == "53300")
	}
	var sqErr *sqlite.Error
	if errors.As(err, &sqErr) {
		switch sqErr.Code() & 0xff {
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_FULL:
			return true
		}
	}
	return false
}
