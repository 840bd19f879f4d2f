package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/gatehouse/gatehouse/internal/storage"
)

// Workload identity storage (storage.CAStore, migration 0003).
//
// CreateAuthority relies on the unique (kind, generation) for the rotation
// compare-and-swap. ActivateAuthority locks every authority of the kind (FOR
// UPDATE on PostgreSQL; SQLite write transactions are serialised by BEGIN
// IMMEDIATE) before it changes states, so concurrent activations of the same
// or of different prepared authorities of one kind never leave two active.
// ConsumeJoinToken is one compare-and-swap UPDATE, as RedeemAuthCode.

var _ storage.CAStore = (*Store)(nil)

const authorityCols = `id, kind, generation, cert_der, sealed, state, not_before, not_after,
	created_at, activated_at, retired_at`

func scanAuthority(r scanner) (storage.CAAuthority, error) {
	var a storage.CAAuthority
	err := r.Scan(&a.ID, &a.Kind, &a.Generation, bytesCol{&a.CertDER}, bytesCol{&a.Sealed}, &a.State,
		timeCol{&a.NotBefore}, timeCol{&a.NotAfter}, timeCol{&a.CreatedAt}, timeCol{&a.ActivatedAt},
		timeCol{&a.RetiredAt})
	return a, err
}

func validAuthority(a storage.CAAuthority) error {
	const op = "create authority"
	switch {
	case a.ID == "":
		return invalid(op, "empty id")
	case a.Kind != storage.AuthorityRoot && a.Kind != storage.AuthorityIntermediate:
		return invalid(op, "unknown kind %q", a.Kind)
	case a.State != storage.AuthorityPrepared && a.State != storage.AuthorityActive && a.State != storage.AuthorityRetired:
		return invalid(op, "unknown state %q", a.State)
	case len(a.CertDER) == 0:
		return invalid(op, "empty certificate")
	case len(a.Sealed) == 0:
		return invalid(op, "empty sealed key")
	case a.Generation < 1:
		return invalid(op, "generation %d < 1", a.Generation)
	}
	return nil
}

// CreateAuthority inserts a; storage.ErrAlreadyExists when its ID or its
// (Kind, Generation) is taken, storage.ErrInvalid for a malformed a.
func (s *Store) CreateAuthority(ctx context.Context, a storage.CAAuthority) error {
	const op = "create authority"
	if err := validAuthority(a); err != nil {
		return err
	}
	return s.tx(ctx, op, func(tx *sql.Tx) error {
		_, err := s.exec(ctx, tx, op, "INSERT INTO ca_authorities ("+authorityCols+
			") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
			a.ID, a.Kind, a.Generation, blob(a.CertDER), blob(a.Sealed), a.State, tm(a.NotBefore),
			tm(a.NotAfter), tm(a.CreatedAt), tm(a.ActivatedAt), tm(a.RetiredAt))
		return err
	})
}

// ListAuthorities returns every authority ordered by Kind then Generation.
func (s *Store) ListAuthorities(ctx context.Context) ([]storage.CAAuthority, error) {
	return list(ctx, s, "list authorities", "SELECT "+authorityCols+
		" FROM ca_authorities ORDER BY kind, generation", scanAuthority)
}

// ActivateAuthority moves the prepared authority id to active and the active
// authority of its kind, if any, to retired, in one transaction.
// storage.ErrNotFound for an unknown id, storage.ErrAlreadyUsed when id is
// not prepared (nothing changes then).
func (s *Store) ActivateAuthority(ctx context.Context, id string, at time.Time) error {
	const op = "activate authority"
	if at.IsZero() {
		return errZeroNow
	}
	return s.tx(ctx, op, func(tx *sql.Tx) error {
		var kind string
		if err := tx.QueryRowContext(ctx, s.q("SELECT kind FROM ca_authorities WHERE id = ?"), id).Scan(&kind); err != nil {
			return s.wrap(op, err)
		}
		// Lock the kind's rows in a fixed order, then read the state under
		// the lock (PostgreSQL returns the latest committed row versions).
		rows, err := tx.QueryContext(ctx, s.q("SELECT id, state FROM ca_authorities WHERE kind = ? ORDER BY id"+s.forUpdate()), kind)
		if err != nil {
			return s.wrap(op, err)
		}
		state := ""
		for rows.Next() {
			var rid, st string
			if err := rows.Scan(&rid, &st); err != nil {
				_ = rows.Close()
				return s.wrap(op, err)
			}
			if rid == id {
				state = st
			}
		}
		if err := rows.Err(); err != nil {
			_ = rows.Close()
			return s.wrap(op, err)
		}
		if err := rows.Close(); err != nil {
			return s.wrap(op, err)
		}
		switch state {
		case "": // deleted between the two reads
			return fmt.Errorf("sqlstore: %s: %w", op, storage.ErrNotFound)
		case storage.AuthorityPrepared:
		default:
			return fmt.Errorf("sqlstore: %s: authority is %s: %w", op, state, storage.ErrAlreadyUsed)
		}
		if _, err := s.exec(ctx, tx, op, "UPDATE ca_authorities SET state = ?, retired_at = ? WHERE kind = ? AND state = ?",
			storage.AuthorityRetired, tm(at), kind, storage.AuthorityActive); err != nil {
			return err
		}
		n, err := s.exec(ctx, tx, op, "UPDATE ca_authorities SET state = ?, activated_at = ? WHERE id = ? AND state = ?",
			storage.AuthorityActive, tm(at), id, storage.AuthorityPrepared)
		if err != nil {
			return err
		}
		if n != 1 { // cannot happen under the lock; never commit a half change
			return fmt.Errorf("sqlstore: %s: %w", op, storage.ErrAlreadyUsed)
		}
		return nil
	})
}

// DeleteAuthority removes a retired authority; storage.ErrNotFound for an
// unknown id, storage.ErrInvalid when it is not retired.
func (s *Store) DeleteAuthority(ctx context.Context, id string) error {
	const op = "delete authority"
	return s.tx(ctx, op, func(tx *sql.Tx) error {
		n, err := s.exec(ctx, tx, op, "DELETE FROM ca_authorities WHERE id = ? AND state = ?", id, storage.AuthorityRetired)
		if err != nil || n == 1 {
			return err
		}
		var state string
		if err := tx.QueryRowContext(ctx, s.q("SELECT state FROM ca_authorities WHERE id = ?"), id).Scan(&state); err != nil {
			return s.wrap(op, err)
		}
		return invalid(op, "authority is %s, not retired", state)
	})
}

const joinTokenCols = `hash, spiffe_id, created_at, expires_at, used_at`

func scanJoinToken(r scanner) (storage.JoinToken, error) {
	var t storage.JoinToken
	err := r.Scan(&t.Hash, &t.SPIFFEID, timeCol{&t.CreatedAt}, timeCol{&t.ExpiresAt}, timeCol{&t.UsedAt})
	return t, err
}

// CreateJoinToken stores t; storage.ErrAlreadyExists on a duplicate hash,
// storage.ErrInvalid for an empty Hash or SPIFFEID, ExpiresAt not after
// CreatedAt, or a non-zero UsedAt.
func (s *Store) CreateJoinToken(ctx context.Context, t storage.JoinToken) error {
	const op = "create join token"
	switch {
	case t.Hash == "":
		return invalid(op, "empty hash")
	case t.SPIFFEID == "":
		return invalid(op, "empty spiffe id")
	case t.ExpiresAt.IsZero() || !t.ExpiresAt.After(t.CreatedAt):
		return invalid(op, "expiry not after creation")
	case !t.UsedAt.IsZero():
		return invalid(op, "a new token cannot be used")
	}
	return s.tx(ctx, op, func(tx *sql.Tx) error {
		_, err := s.exec(ctx, tx, op, "INSERT INTO join_tokens ("+joinTokenCols+") VALUES (?, ?, ?, ?, 0)",
			t.Hash, t.SPIFFEID, tm(t.CreatedAt), tm(t.ExpiresAt))
		return err
	})
}

// ConsumeJoinToken marks the token used with one compare-and-swap UPDATE;
// the caller whose UPDATE changed the row wins. Losers get
// storage.ErrAlreadyUsed (with the stored token), storage.ErrExpired (the
// token stays unused) or storage.ErrNotFound.
func (s *Store) ConsumeJoinToken(ctx context.Context, hash string, now time.Time) (storage.JoinToken, error) {
	const op = "consume join token"
	if now.IsZero() {
		return storage.JoinToken{}, errZeroNow
	}
	var (
		t   storage.JoinToken
		won bool
	)
	err := s.tx(ctx, op, func(tx *sql.Tx) error {
		n, err := s.exec(ctx, tx, op, "UPDATE join_tokens SET used_at = ? WHERE hash = ? AND used_at = 0 AND expires_at > ?",
			tm(now), hash, tm(now))
		if err != nil {
			return err
		}
		won = n == 1
		t, err = scanJoinToken(tx.QueryRowContext(ctx, s.q("SELECT "+joinTokenCols+" FROM join_tokens WHERE hash = ?"), hash))
		return s.wrap(op, err)
	})
	switch {
	case err != nil:
		return storage.JoinToken{}, err
	case won:
		return t, nil
	case !t.UsedAt.IsZero():
		return t, fmt.Errorf("sqlstore: %s: %w", op, storage.ErrAlreadyUsed)
	default:
		return t, fmt.Errorf("sqlstore: %s: %w", op, storage.ErrExpired)
	}
}

var _ storage.SPIFFERevocationStore = (*Store)(nil)

// RevokeSPIFFEID records the revocation of id at at: one upsert that keeps
// the latest time (an earlier at leaves the row as it is).
func (s *Store) RevokeSPIFFEID(ctx context.Context, id string, at time.Time) error {
	const op = "revoke spiffe id"
	switch {
	case id == "":
		return invalid(op, "empty spiffe id")
	case at.IsZero():
		return invalid(op, "zero revocation time")
	}
	return s.tx(ctx, op, func(tx *sql.Tx) error {
		_, err := s.exec(ctx, tx, op, `INSERT INTO spiffe_revocations (spiffe_id, revoked_at) VALUES (?, ?)
	ON CONFLICT (spiffe_id) DO UPDATE SET revoked_at = excluded.revoked_at
	WHERE excluded.revoked_at > spiffe_revocations.revoked_at`, id, tm(at))
		return err
	})
}

// ListSPIFFERevocations returns every revoked SPIFFE ID with its latest
// revocation time.
func (s *Store) ListSPIFFERevocations(ctx context.Context) (map[string]time.Time, error) {
	type rev struct {
		id string
		at time.Time
	}
	rows, err := list(ctx, s, "list spiffe revocations", "SELECT spiffe_id, revoked_at FROM spiffe_revocations",
		func(r scanner) (rev, error) {
			var v rev
			err := r.Scan(&v.id, timeCol{&v.at})
			return v, err
		})
	if err != nil {
		return nil, err
	}
	out := make(map[string]time.Time, len(rows))
	for _, v := range rows {
		out[v.id] = v.at
	}
	return out, nil
}
