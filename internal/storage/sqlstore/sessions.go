package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/gatehouse/gatehouse/internal/storage"
)

const sessionCols = `id_hash, user_id, auth_time, amr, created_at, last_seen_at, expires_at`

func scanSession(r scanner) (storage.Session, error) {
	var x storage.Session
	err := r.Scan(&x.IDHash, &x.UserID, timeCol{&x.AuthTime}, listCol{&x.AMR}, timeCol{&x.CreatedAt},
		timeCol{&x.LastSeenAt}, timeCol{&x.ExpiresAt})
	return x, err
}

// CreateSession inserts the session; storage.ErrAlreadyExists when its hash
// is taken.
func (s *Store) CreateSession(ctx context.Context, x storage.Session) error {
	if x.IDHash == "" {
		return errors.New("sqlstore: create session: empty id hash")
	}
	return s.tx(ctx, "create session", func(tx *sql.Tx) error {
		_, err := s.exec(ctx, tx, "create session", "INSERT INTO sessions ("+sessionCols+") VALUES (?, ?, ?, ?, ?, ?, ?)",
			x.IDHash, x.UserID, tm(x.AuthTime), js(x.AMR), tm(x.CreatedAt), tm(x.LastSeenAt), tm(x.ExpiresAt))
		return err
	})
}

// GetSession returns the session as stored; the caller checks ExpiresAt
// against its clock.
func (s *Store) GetSession(ctx context.Context, idHash string) (storage.Session, error) {
	x, err := scanSession(s.getSession.QueryRowContext(ctx, idHash))
	if err != nil {
		return storage.Session{}, s.wrap("get session", err)
	}
	return x, nil
}

// TouchSession sets LastSeenAt; storage.ErrNotFound for an unknown session.
func (s *Store) TouchSession(ctx context.Context, idHash string, now time.Time) error {
	const op = "touch session"
	return s.tx(ctx, op, func(tx *sql.Tx) error {
		n, err := s.exec(ctx, tx, op, "UPDATE sessions SET last_seen_at = ? WHERE id_hash = ?", tm(now), idHash)
		if err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("sqlstore: %s: %w", op, storage.ErrNotFound)
		}
		return nil
	})
}

// DeleteSession deletes the session; deleting a missing one is not an error
// (logout with a stale cookie).
func (s *Store) DeleteSession(ctx context.Context, idHash string) error {
	return s.tx(ctx, "delete session", func(tx *sql.Tx) error {
		_, err := s.exec(ctx, tx, "delete session", "DELETE FROM sessions WHERE id_hash = ?", idHash)
		return err
	})
}

// DeleteSessionsForUser deletes every session of the user.
func (s *Store) DeleteSessionsForUser(ctx context.Context, userID string) error {
	return s.tx(ctx, "delete sessions for user", func(tx *sql.Tx) error {
		_, err := s.exec(ctx, tx, "delete sessions for user", "DELETE FROM sessions WHERE user_id = ?", userID)
		return err
	})
}

// RevokeAccessToken records a revoked jti; repeating it keeps the first entry.
func (s *Store) RevokeAccessToken(ctx context.Context, t storage.RevokedToken) error {
	if t.JTI == "" {
		return errors.New("sqlstore: revoke access token: empty jti")
	}
	return s.tx(ctx, "revoke access token", func(tx *sql.Tx) error {
		_, err := s.exec(ctx, tx, "revoke access token",
			"INSERT INTO revoked_tokens (jti, expires_at, revoked_at) VALUES (?, ?, ?) ON CONFLICT (jti) DO NOTHING",
			t.JTI, tm(t.ExpiresAt), tm(t.RevokedAt))
		return err
	})
}

// RevokedTokensSince lists tokens revoked at or after since, oldest first.
func (s *Store) RevokedTokensSince(ctx context.Context, since time.Time) ([]storage.RevokedToken, error) {
	return list(ctx, s, "revoked tokens since",
		"SELECT jti, expires_at, revoked_at FROM revoked_tokens WHERE revoked_at >= ? ORDER BY revoked_at, jti",
		func(r scanner) (storage.RevokedToken, error) {
			var t storage.RevokedToken
			err := r.Scan(&t.JTI, timeCol{&t.ExpiresAt}, timeCol{&t.RevokedAt})
			return t, err
		}, tm(since))
}

// GC deletes expired auth requests, codes, refresh tokens, sessions,
// revoked-token entries and grants past their absolute expiry, in one
// transaction, and returns how many rows it removed (cascaded refresh tokens
// not counted).
func (s *Store) GC(ctx context.Context, now time.Time) (int64, error) {
	if now.IsZero() {
		return 0, errZeroNow
	}
	// Each query deletes rows whose expiry is at or before now. Grants
	// without an absolute expiry are kept; deleting a grant deletes its
	// refresh tokens (ON DELETE CASCADE). Used codes and refresh tokens stay
	// until they expire, so that replays are still detected. Join tokens go
	// once used or expired: a used one is refused as unknown all the same.
	queries := [...]string{
		"DELETE FROM auth_requests WHERE expires_at <= ?",
		"DELETE FROM auth_codes WHERE expires_at <= ?",
		"DELETE FROM refresh_tokens WHERE expires_at <= ?",
		"DELETE FROM sessions WHERE expires_at <= ?",
		"DELETE FROM revoked_tokens WHERE expires_at <= ?",
		"DELETE FROM grants WHERE expires_at <> 0 AND expires_at <= ?",
		"DELETE FROM join_tokens WHERE used_at <> 0 OR expires_at <= ?",
	}
	var total int64
	err := s.tx(ctx, "gc", func(tx *sql.Tx) error {
		total = 0
		for _, q := range queries {
			n, err := s.exec(ctx, tx, "gc", q, tm(now))
			if err != nil {
				return err
			}
			total += n
		}
		// A revocation outlives every SVID it can refuse, then goes.
		n, err := s.exec(ctx, tx, "gc", "DELETE FROM spiffe_revocations WHERE revoked_at <= ?",
			tm(now.Add(-storage.SPIFFERevocationRetention)))
		total += n
		return err
	})
	if err != nil {
		return 0, err
	}
	return total, nil
}
