package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/gatehouse/gatehouse/internal/storage"
)

// Revocation reasons recorded by the cascades of this package.
const (
	ReasonClientDeleted   = "client_deleted"
	ReasonUserDisabled    = "user_disabled"
	ReasonPasswordChanged = "password_changed"
	ReasonUserDeleted     = "user_deleted"
)

var errImmutableID = errors.New("sqlstore: the id of a stored record cannot change")

const clientCols = `id, name, secret_hash, secret_hint, public, first_party, redirect_uris,
	post_logout_redirect_uris, grant_types, scopes, audiences, access_token_ttl,
	refresh_idle_ttl, refresh_max_ttl, created_at, updated_at, spiffe_id`

func scanClient(r scanner) (storage.Client, error) {
	var c storage.Client
	err := r.Scan(&c.ID, &c.Name, bytesCol{&c.SecretHash}, &c.SecretHint, &c.Public, &c.FirstParty,
		listCol{&c.RedirectURIs}, listCol{&c.PostLogoutRedirectURIs}, listCol{&c.GrantTypes},
		listCol{&c.Scopes}, listCol{&c.Audiences}, durCol{&c.AccessTokenTTL},
		durCol{&c.RefreshIdleTTL}, durCol{&c.RefreshMaxTTL}, timeCol{&c.CreatedAt}, timeCol{&c.UpdatedAt},
		&c.SPIFFEID)
	return c, err
}

func clientArgs(c storage.Client) []any {
	return []any{c.Name, blob(c.SecretHash), c.SecretHint, c.Public, c.FirstParty,
		js(c.RedirectURIs), js(c.PostLogoutRedirectURIs), js(c.GrantTypes), js(c.Scopes),
		js(c.Audiences), int64(c.AccessTokenTTL), int64(c.RefreshIdleTTL), int64(c.RefreshMaxTTL),
		tm(c.CreatedAt), tm(c.UpdatedAt), c.SPIFFEID}
}

// CreateClient inserts c; storage.ErrAlreadyExists when its ID is taken.
func (s *Store) CreateClient(ctx context.Context, c storage.Client) error {
	if c.ID == "" {
		return errors.New("sqlstore: create client: empty id")
	}
	return s.tx(ctx, "create client", func(tx *sql.Tx) error {
		_, err := s.exec(ctx, tx, "create client", "INSERT INTO clients ("+clientCols+
			") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", append([]any{c.ID}, clientArgs(c)...)...)
		return err
	})
}

// GetClient returns the client with the given id.
func (s *Store) GetClient(ctx context.Context, id string) (storage.Client, error) {
	c, err := scanClient(s.getClient.QueryRowContext(ctx, id))
	if err != nil {
		return storage.Client{}, s.wrap("get client", err)
	}
	return c, nil
}

// ListClients returns every client ordered by id.
func (s *Store) ListClients(ctx context.Context) ([]storage.Client, error) {
	return list(ctx, s, "list clients", "SELECT "+clientCols+" FROM clients ORDER BY id", scanClient)
}

// UpdateClient applies fn to the stored client in one transaction.
func (s *Store) UpdateClient(ctx context.Context, id string, fn func(storage.Client) (storage.Client, error)) error {
	const op = "update client"
	return s.tx(ctx, op, func(tx *sql.Tx) error {
		old, err := scanClient(tx.QueryRowContext(ctx, s.q("SELECT "+clientCols+" FROM clients WHERE id = ?"+s.forUpdate()), id))
		if err != nil {
			return s.wrap(op, err)
		}
		c, err := fn(old)
		if err != nil {
			return err
		}
		if c.ID != id {
			return errImmutableID
		}
		_, err = s.exec(ctx, tx, op, `UPDATE clients SET name = ?, secret_hash = ?, secret_hint = ?,
	public = ?, first_party = ?, redirect_uris = ?, post_logout_redirect_uris = ?, grant_types = ?,
	scopes = ?, audiences = ?, access_token_ttl = ?, refresh_idle_ttl = ?, refresh_max_ttl = ?,
	created_at = ?, updated_at = ?, spiffe_id = ? WHERE id = ?`, append(clientArgs(c), id)...)
		return err
	})
}

// DeleteClient deletes the client and revokes its grants in one transaction.
func (s *Store) DeleteClient(ctx context.Context, id string, now time.Time) error {
	const op = "delete client"
	return s.tx(ctx, op, func(tx *sql.Tx) error {
		n, err := s.exec(ctx, tx, op, "DELETE FROM clients WHERE id = ?", id)
		if err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("sqlstore: %s: %w", op, storage.ErrNotFound)
		}
		return s.revokeWhere(ctx, tx, op, "client_id = ?", id, ReasonClientDeleted, now)
	})
}

const userCols = `id, username, email, email_verified, name, password_hash, roles, user_groups,
	tenant, disabled, created_at, updated_at`

func scanUser(r scanner) (storage.User, error) {
	var u storage.User
	err := r.Scan(&u.ID, &u.Username, &u.Email, &u.EmailVerified, &u.Name, &u.PasswordHash,
		listCol{&u.Roles}, listCol{&u.Groups}, &u.Tenant, &u.Disabled, timeCol{&u.CreatedAt}, timeCol{&u.UpdatedAt})
	return u, err
}

func userArgs(u storage.User) []any {
	return []any{u.Username, u.Email, u.EmailVerified, u.Name, u.PasswordHash, js(u.Roles),
		js(u.Groups), u.Tenant, u.Disabled, tm(u.CreatedAt), tm(u.UpdatedAt)}
}

// CreateUser inserts u; storage.ErrAlreadyExists when its id, username or
// (non-empty) email is taken.
func (s *Store) CreateUser(ctx context.Context, u storage.User) error {
	if u.ID == "" || u.Username == "" {
		return errors.New("sqlstore: create user: empty id or username")
	}
	return s.tx(ctx, "create user", func(tx *sql.Tx) error {
		_, err := s.exec(ctx, tx, "create user", "INSERT INTO users ("+userCols+
			") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", append([]any{u.ID}, userArgs(u)...)...)
		return err
	})
}

// GetUser returns the user with the given id.
func (s *Store) GetUser(ctx context.Context, id string) (storage.User, error) {
	u, err := scanUser(s.r.QueryRowContext(ctx, s.q("SELECT "+userCols+" FROM users WHERE id = ?"), id))
	if err != nil {
		return storage.User{}, s.wrap("get user", err)
	}
	return u, nil
}

// GetUserByUsername returns the user with the given username (exact match).
func (s *Store) GetUserByUsername(ctx context.Context, username string) (storage.User, error) {
	u, err := scanUser(s.r.QueryRowContext(ctx, s.q("SELECT "+userCols+" FROM users WHERE username = ?"), username))
	if err != nil {
		return storage.User{}, s.wrap("get user by username", err)
	}
	return u, nil
}

// ListUsers returns every user ordered by username.
func (s *Store) ListUsers(ctx context.Context) ([]storage.User, error) {
	return list(ctx, s, "list users", "SELECT "+userCols+" FROM users ORDER BY username", scanUser)
}

// UpdateUser applies fn in one transaction. When the result is disabled or
// its password hash changed, the user's sessions are deleted and grants
// revoked in the same transaction. The interface passes no clock: the
// revocation time is the result's UpdatedAt, or the wall clock when that is
// zero.
func (s *Store) UpdateUser(ctx context.Context, id string, fn func(storage.User) (storage.User, error)) error {
	const op = "update user"
	return s.tx(ctx, op, func(tx *sql.Tx) error {
		old, err := scanUser(tx.QueryRowContext(ctx, s.q("SELECT "+userCols+" FROM users WHERE id = ?"+s.forUpdate()), id))
		if err != nil {
			return s.wrap(op, err)
		}
		u, err := fn(old)
		if err != nil {
			return err
		}
		if u.ID != id {
			return errImmutableID
		}
		if _, err := s.exec(ctx, tx, op, `UPDATE users SET username = ?, email = ?, email_verified = ?,
	name = ?, password_hash = ?, roles = ?, user_groups = ?, tenant = ?, disabled = ?, created_at = ?,
	updated_at = ? WHERE id = ?`, append(userArgs(u), id)...); err != nil {
			return err
		}
		reason := ""
		switch {
		case u.Disabled:
			reason = ReasonUserDisabled
		case u.PasswordHash != old.PasswordHash:
			reason = ReasonPasswordChanged
		default:
			return nil
		}
		now := u.UpdatedAt
		if now.IsZero() {
			now = time.Now()
		}
		return s.endUser(ctx, tx, op, id, reason, now)
	})
}

// DeleteUser deletes the user, its sessions and revokes its grants.
func (s *Store) DeleteUser(ctx context.Context, id string, now time.Time) error {
	const op = "delete user"
	return s.tx(ctx, op, func(tx *sql.Tx) error {
		n, err := s.exec(ctx, tx, op, "DELETE FROM users WHERE id = ?", id)
		if err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("sqlstore: %s: %w", op, storage.ErrNotFound)
		}
		return s.endUser(ctx, tx, op, id, ReasonUserDeleted, now)
	})
}

// endUser deletes the sessions of a user and revokes its grants.
func (s *Store) endUser(ctx context.Context, tx *sql.Tx, op, userID, reason string, now time.Time) error {
	if _, err := s.exec(ctx, tx, op, "DELETE FROM sessions WHERE user_id = ?", userID); err != nil {
		return err
	}
	return s.revokeWhere(ctx, tx, op, "user_id = ?", userID, reason, now)
}

const keyCols = `id, algorithm, generation, sealed, public_jwk, created_at, activate_at,
	retired_at, expires_at, revoked_at`

func scanKey(r scanner) (storage.SigningKey, error) {
	var k storage.SigningKey
	err := r.Scan(&k.ID, &k.Algorithm, &k.Generation, bytesCol{&k.Sealed}, bytesCol{&k.PublicJWK},
		timeCol{&k.CreatedAt}, timeCol{&k.ActivateAt}, timeCol{&k.RetiredAt}, timeCol{&k.ExpiresAt}, timeCol{&k.RevokedAt})
	return k, err
}

func keyArgs(k storage.SigningKey) []any {
	return []any{k.Algorithm, k.Generation, blob(k.Sealed), blob(k.PublicJWK), tm(k.CreatedAt),
		tm(k.ActivateAt), tm(k.RetiredAt), tm(k.ExpiresAt), tm(k.RevokedAt)}
}

// CreateSigningKey inserts k; storage.ErrAlreadyExists when its ID or its
// Generation is taken.
func (s *Store) CreateSigningKey(ctx context.Context, k storage.SigningKey) error {
	if k.ID == "" {
		return errors.New("sqlstore: create signing key: empty id")
	}
	return s.tx(ctx, "create signing key", func(tx *sql.Tx) error {
		_, err := s.exec(ctx, tx, "create signing key", "INSERT INTO signing_keys ("+keyCols+
			") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", append([]any{k.ID}, keyArgs(k)...)...)
		return err
	})
}

// ListSigningKeys returns every key ordered by Generation.
func (s *Store) ListSigningKeys(ctx context.Context) ([]storage.SigningKey, error) {
	return list(ctx, s, "list signing keys", "SELECT "+keyCols+" FROM signing_keys ORDER BY generation", scanKey)
}

// UpdateSigningKey applies fn to the stored key in one transaction.
func (s *Store) UpdateSigningKey(ctx context.Context, id string, fn func(storage.SigningKey) (storage.SigningKey, error)) error {
	const op = "update signing key"
	return s.tx(ctx, op, func(tx *sql.Tx) error {
		old, err := scanKey(tx.QueryRowContext(ctx, s.q("SELECT "+keyCols+" FROM signing_keys WHERE id = ?"+s.forUpdate()), id))
		if err != nil {
			return s.wrap(op, err)
		}
		k, err := fn(old)
		if err != nil {
			return err
		}
		if k.ID != id {
			return errImmutableID
		}
		_, err = s.exec(ctx, tx, op, `UPDATE signing_keys SET algorithm = ?, generation = ?, sealed = ?,
	public_jwk = ?, created_at = ?, activate_at = ?, retired_at = ?, expires_at = ?, revoked_at = ?
	WHERE id = ?`, append(keyArgs(k), id)...)
		return err
	})
}

// list runs a read query and scans every row.
func list[T any](ctx context.Context, s *Store, op, query string, scan func(scanner) (T, error), args ...any) ([]T, error) {
	rows, err := s.r.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return nil, s.wrap(op, err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, s.wrap(op, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, s.wrap(op, err)
	}
	return out, nil
}
