package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/gatehouse/gatehouse/internal/storage"
)

var errZeroNow = errors.New("sqlstore: zero time passed as now")

const authRequestCols = `id, client_id, redirect_uri, state, nonce, response_mode, scopes, audience,
	code_challenge, code_challenge_method, prompt, max_age, login_hint, user_id, session_id,
	auth_time, amr, acr, consented, created_at, expires_at`

func scanAuthRequest(r scanner) (storage.AuthRequest, error) {
	var a storage.AuthRequest
	err := r.Scan(&a.ID, &a.ClientID, &a.RedirectURI, &a.State, &a.Nonce, &a.ResponseMode,
		listCol{&a.Scopes}, listCol{&a.Audience}, &a.CodeChallenge, &a.CodeChallengeMethod,
		listCol{&a.Prompt}, &a.MaxAge, &a.LoginHint, &a.UserID, &a.SessionID, timeCol{&a.AuthTime},
		listCol{&a.AMR}, &a.ACR, &a.Consented, timeCol{&a.CreatedAt}, timeCol{&a.ExpiresAt})
	return a, err
}

func authRequestArgs(a storage.AuthRequest) []any {
	return []any{a.ClientID, a.RedirectURI, a.State, a.Nonce, a.ResponseMode, js(a.Scopes),
		js(a.Audience), a.CodeChallenge, a.CodeChallengeMethod, js(a.Prompt), a.MaxAge, a.LoginHint,
		a.UserID, a.SessionID, tm(a.AuthTime), js(a.AMR), a.ACR, a.Consented, tm(a.CreatedAt), tm(a.ExpiresAt)}
}

// CreateAuthRequest inserts r; storage.ErrAlreadyExists when its ID is taken.
func (s *Store) CreateAuthRequest(ctx context.Context, r storage.AuthRequest) error {
	if r.ID == "" {
		return errors.New("sqlstore: create auth request: empty id")
	}
	return s.tx(ctx, "create auth request", func(tx *sql.Tx) error {
		_, err := s.exec(ctx, tx, "create auth request", "INSERT INTO auth_requests ("+authRequestCols+
			") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
			append([]any{r.ID}, authRequestArgs(r)...)...)
		return err
	})
}

// GetAuthRequest returns the request; storage.ErrExpired (with the request)
// once now reaches its ExpiresAt.
func (s *Store) GetAuthRequest(ctx context.Context, id string, now time.Time) (storage.AuthRequest, error) {
	a, err := scanAuthRequest(s.r.QueryRowContext(ctx, s.q("SELECT "+authRequestCols+" FROM auth_requests WHERE id = ?"), id))
	if err != nil {
		return storage.AuthRequest{}, s.wrap("get auth request", err)
	}
	if !now.Before(a.ExpiresAt) {
		return a, fmt.Errorf("sqlstore: get auth request: %w", storage.ErrExpired)
	}
	return a, nil
}

// UpdateAuthRequest applies fn in one transaction; an expired request gives
// storage.ErrExpired and is not changed.
func (s *Store) UpdateAuthRequest(ctx context.Context, id string, now time.Time, fn func(storage.AuthRequest) (storage.AuthRequest, error)) error {
	const op = "update auth request"
	return s.tx(ctx, op, func(tx *sql.Tx) error {
		old, err := scanAuthRequest(tx.QueryRowContext(ctx, s.q("SELECT "+authRequestCols+" FROM auth_requests WHERE id = ?"+s.forUpdate()), id))
		if err != nil {
			return s.wrap(op, err)
		}
		if !now.Before(old.ExpiresAt) {
			return fmt.Errorf("sqlstore: %s: %w", op, storage.ErrExpired)
		}
		a, err := fn(old)
		if err != nil {
			return err
		}
		if a.ID != id {
			return errImmutableID
		}
		_, err = s.exec(ctx, tx, op, `UPDATE auth_requests SET client_id = ?, redirect_uri = ?, state = ?,
	nonce = ?, response_mode = ?, scopes = ?, audience = ?, code_challenge = ?, code_challenge_method = ?,
	prompt = ?, max_age = ?, login_hint = ?, user_id = ?, session_id = ?, auth_time = ?, amr = ?, acr = ?,
	consented = ?, created_at = ?, expires_at = ? WHERE id = ?`, append(authRequestArgs(a), id)...)
		return err
	})
}

// DeleteAuthRequest deletes the request; deleting a missing one is not an error.
func (s *Store) DeleteAuthRequest(ctx context.Context, id string) error {
	return s.tx(ctx, "delete auth request", func(tx *sql.Tx) error {
		_, err := s.exec(ctx, tx, "delete auth request", "DELETE FROM auth_requests WHERE id = ?", id)
		return err
	})
}

const codeCols = `hash, grant_id, client_id, redirect_uri, user_id, session_id, scopes, audience,
	nonce, code_challenge, auth_time, amr, acr, created_at, expires_at, used_at`

func scanCode(r scanner) (storage.AuthCode, error) {
	var c storage.AuthCode
	err := r.Scan(&c.Hash, &c.GrantID, &c.ClientID, &c.RedirectURI, &c.UserID, &c.SessionID,
		listCol{&c.Scopes}, listCol{&c.Audience}, &c.Nonce, &c.CodeChallenge, timeCol{&c.AuthTime},
		listCol{&c.AMR}, &c.ACR, timeCol{&c.CreatedAt}, timeCol{&c.ExpiresAt}, timeCol{&c.UsedAt})
	return c, err
}

// CreateAuthCode inserts c and deletes the auth request authReqID (when not
// empty) in one transaction. A missing auth request gives storage.ErrNotFound
// and stores nothing, so one request can never yield two codes.
func (s *Store) CreateAuthCode(ctx context.Context, c storage.AuthCode, authReqID string) error {
	const op = "create auth code"
	if c.Hash == "" {
		return errors.New("sqlstore: create auth code: empty hash")
	}
	return s.tx(ctx, op, func(tx *sql.Tx) error {
		if authReqID != "" {
			n, err := s.exec(ctx, tx, op, "DELETE FROM auth_requests WHERE id = ?", authReqID)
			if err != nil {
				return err
			}
			if n == 0 {
				return fmt.Errorf("sqlstore: %s: auth request: %w", op, storage.ErrNotFound)
			}
		}
		_, err := s.exec(ctx, tx, op, "INSERT INTO auth_codes ("+codeCols+
			") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
			c.Hash, c.GrantID, c.ClientID, c.RedirectURI, c.UserID, c.SessionID, js(c.Scopes),
			js(c.Audience), c.Nonce, c.CodeChallenge, tm(c.AuthTime), js(c.AMR), c.ACR,
			tm(c.CreatedAt), tm(c.ExpiresAt), tm(c.UsedAt))
		return err
	})
}

// RedeemAuthCode marks the code used with one compare-and-swap UPDATE; the
// caller whose UPDATE changed the row wins. Losers get storage.ErrAlreadyUsed
// (with the stored code), storage.ErrExpired or storage.ErrNotFound.
func (s *Store) RedeemAuthCode(ctx context.Context, hash string, now time.Time) (storage.AuthCode, error) {
	const op = "redeem auth code"
	if now.IsZero() {
		return storage.AuthCode{}, errZeroNow
	}
	var (
		code storage.AuthCode
		won  bool
	)
	err := s.tx(ctx, op, func(tx *sql.Tx) error {
		n, err := s.exec(ctx, tx, op, "UPDATE auth_codes SET used_at = ? WHERE hash = ? AND used_at = 0 AND expires_at > ?",
			tm(now), hash, tm(now))
		if err != nil {
			return err
		}
		won = n == 1
		code, err = scanCode(tx.QueryRowContext(ctx, s.q("SELECT "+codeCols+" FROM auth_codes WHERE hash = ?"), hash))
		return s.wrap(op, err)
	})
	switch {
	case err != nil:
		return storage.AuthCode{}, err
	case won:
		return code, nil
	case !code.UsedAt.IsZero():
		return code, fmt.Errorf("sqlstore: %s: %w", op, storage.ErrAlreadyUsed)
	default:
		return code, fmt.Errorf("sqlstore: %s: %w", op, storage.ErrExpired)
	}
}

const grantCols = `id, client_id, user_id, session_id, scopes, audience, auth_time, amr, acr,
	created_at, expires_at, revoked_at, revoke_reason`

func scanGrant(r scanner) (storage.Grant, error) {
	var g storage.Grant
	err := r.Scan(&g.ID, &g.ClientID, &g.UserID, &g.SessionID, listCol{&g.Scopes}, listCol{&g.Audience},
		timeCol{&g.AuthTime}, listCol{&g.AMR}, &g.ACR, timeCol{&g.CreatedAt}, timeCol{&g.ExpiresAt},
		timeCol{&g.RevokedAt}, &g.RevokeReason)
	return g, err
}

const refreshCols = `hash, grant_id, client_id, created_at, expires_at, used_at`

func scanRefresh(r scanner) (storage.RefreshToken, error) {
	var t storage.RefreshToken
	err := r.Scan(&t.Hash, &t.GrantID, &t.ClientID, timeCol{&t.CreatedAt}, timeCol{&t.ExpiresAt}, timeCol{&t.UsedAt})
	return t, err
}

func (s *Store) insertRefresh(ctx context.Context, tx *sql.Tx, op string, t storage.RefreshToken) error {
	if t.Hash == "" {
		return fmt.Errorf("sqlstore: %s: empty refresh token hash", op)
	}
	_, err := s.exec(ctx, tx, op, "INSERT INTO refresh_tokens ("+refreshCols+") VALUES (?, ?, ?, ?, ?, ?)",
		t.Hash, t.GrantID, t.ClientID, tm(t.CreatedAt), tm(t.ExpiresAt), tm(t.UsedAt))
	return err
}

// CreateGrant inserts g and, when first is not nil, its first refresh token
// (whose GrantID must be empty or g.ID) in one transaction.
func (s *Store) CreateGrant(ctx context.Context, g storage.Grant, first *storage.RefreshToken) error {
	const op = "create grant"
	if g.ID == "" {
		return errors.New("sqlstore: create grant: empty id")
	}
	return s.tx(ctx, op, func(tx *sql.Tx) error {
		if _, err := s.exec(ctx, tx, op, "INSERT INTO grants ("+grantCols+
			") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
			g.ID, g.ClientID, g.UserID, g.SessionID, js(g.Scopes), js(g.Audience), tm(g.AuthTime),
			js(g.AMR), g.ACR, tm(g.CreatedAt), tm(g.ExpiresAt), tm(g.RevokedAt), g.RevokeReason); err != nil {
			return err
		}
		if first == nil {
			return nil
		}
		t := *first
		if t.GrantID == "" {
			t.GrantID = g.ID
		}
		if t.GrantID != g.ID {
			return fmt.Errorf("sqlstore: %s: refresh token belongs to another grant", op)
		}
		return s.insertRefresh(ctx, tx, op, t)
	})
}

// GetGrant returns the grant with the given id.
func (s *Store) GetGrant(ctx context.Context, id string) (storage.Grant, error) {
	g, err := scanGrant(s.getGrant.QueryRowContext(ctx, id))
	if err != nil {
		return storage.Grant{}, s.wrap("get grant", err)
	}
	return g, nil
}

// GetRefreshToken returns the refresh token with the given hash.
func (s *Store) GetRefreshToken(ctx context.Context, hash string) (storage.RefreshToken, error) {
	t, err := scanRefresh(s.getRefreshToken.QueryRowContext(ctx, hash))
	if err != nil {
		return storage.RefreshToken{}, s.wrap("get refresh token", err)
	}
	return t, nil
}

// RotateRefreshToken marks oldHash used and inserts next in one transaction.
// Checks, in order: unknown → ErrNotFound; grant revoked → ErrRevoked; token
// already used → ErrAlreadyUsed; token or grant expired → ErrExpired. Every
// error after the first comes with the stored token and grant. On success it
// returns the old token (UsedAt = now) and the grant. next.GrantID and
// next.ClientID default to the old token's and must not differ from them.
func (s *Store) RotateRefreshToken(ctx context.Context, oldHash string, next storage.RefreshToken, now time.Time) (storage.RefreshToken, storage.Grant, error) {
	const op = "rotate refresh token"
	if now.IsZero() {
		return storage.RefreshToken{}, storage.Grant{}, errZeroNow
	}
	var (
		old   storage.RefreshToken
		grant storage.Grant
		fail  error
	)
	err := s.tx(ctx, op, func(tx *sql.Tx) error {
		var err error
		old, err = scanRefresh(tx.QueryRowContext(ctx, s.q("SELECT "+refreshCols+" FROM refresh_tokens WHERE hash = ?"+s.forUpdate()), oldHash))
		if err != nil {
			return s.wrap(op, err)
		}
		grant, err = scanGrant(tx.QueryRowContext(ctx, s.q("SELECT "+grantCols+" FROM grants WHERE id = ?"), old.GrantID))
		if err != nil {
			return s.wrap(op+": grant", err)
		}
		switch {
		case !grant.RevokedAt.IsZero():
			fail = storage.ErrRevoked
		case !old.UsedAt.IsZero():
			fail = storage.ErrAlreadyUsed
		case !now.Before(old.ExpiresAt), !grant.ExpiresAt.IsZero() && !now.Before(grant.ExpiresAt):
			fail = storage.ErrExpired
		}
		if fail != nil {
			return nil // nothing written; commit is a no-op
		}
		n, err := s.exec(ctx, tx, op, "UPDATE refresh_tokens SET used_at = ? WHERE hash = ? AND used_at = 0", tm(now), oldHash)
		if err != nil {
			return err
		}
		if n != 1 { // cannot happen under the row lock / single writer; fail closed
			fail = storage.ErrAlreadyUsed
			return nil
		}
		old.UsedAt = time.UnixMicro(tm(now)).UTC()
		if next.GrantID == "" {
			next.GrantID = old.GrantID
		}
		if next.ClientID == "" {
			next.ClientID = old.ClientID
		}
		if next.GrantID != old.GrantID || next.ClientID != old.ClientID {
			return fmt.Errorf("sqlstore: %s: next token must keep the grant and client", op)
		}
		return s.insertRefresh(ctx, tx, op, next)
	})
	if err != nil {
		return storage.RefreshToken{}, storage.Grant{}, err
	}
	if fail != nil {
		return old, grant, fmt.Errorf("sqlstore: %s: %w", op, fail)
	}
	return old, grant, nil
}

// RevokeGrant marks the grant revoked (idempotent: the first revocation time
// and reason are kept) and expires its refresh tokens.
func (s *Store) RevokeGrant(ctx context.Context, id, reason string, now time.Time) error {
	const op = "revoke grant"
	return s.tx(ctx, op, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, s.q("SELECT COUNT(*) FROM grants WHERE id = ?"), id).Scan(&n); err != nil {
			return s.wrap(op, err)
		}
		if n == 0 {
			return fmt.Errorf("sqlstore: %s: %w", op, storage.ErrNotFound)
		}
		return s.revokeWhere(ctx, tx, op, "id = ?", id, reason, now)
	})
}

// RevokeGrantsForUser revokes every grant of the user.
func (s *Store) RevokeGrantsForUser(ctx context.Context, userID, reason string, now time.Time) error {
	if userID == "" {
		return errors.New("sqlstore: revoke grants for user: empty user id")
	}
	return s.tx(ctx, "revoke grants for user", func(tx *sql.Tx) error {
		return s.revokeWhere(ctx, tx, "revoke grants for user", "user_id = ?", userID, reason, now)
	})
}

// RevokeGrantsForSession revokes every grant issued from the IdP session.
func (s *Store) RevokeGrantsForSession(ctx context.Context, sessionID, reason string, now time.Time) error {
	if sessionID == "" {
		return errors.New("sqlstore: revoke grants for session: empty session id")
	}
	return s.tx(ctx, "revoke grants for session", func(tx *sql.Tx) error {
		return s.revokeWhere(ctx, tx, "revoke grants for session", "session_id = ?", sessionID, reason, now)
	})
}

// revokeWhere revokes the not yet revoked grants matching cond (one `?`
// bound to arg) and expires their refresh tokens.
func (s *Store) revokeWhere(ctx context.Context, tx *sql.Tx, op, cond, arg, reason string, now time.Time) error {
	if now.IsZero() {
		return errZeroNow
	}
	at := tm(now)
	if _, err := s.exec(ctx, tx, op, "UPDATE refresh_tokens SET expires_at = ? WHERE expires_at > ? AND grant_id IN (SELECT id FROM grants WHERE revoked_at = 0 AND "+cond+")",
		at, at, arg); err != nil {
		return err
	}
	_, err := s.exec(ctx, tx, op, "UPDATE grants SET revoked_at = ?, revoke_reason = ? WHERE revoked_at = 0 AND "+cond, at, reason, arg)
	return err
}

// RevokedGrantsSince lists grants revoked at or after since, oldest first.
func (s *Store) RevokedGrantsSince(ctx context.Context, since time.Time) ([]storage.RevokedGrant, error) {
	return list(ctx, s, "revoked grants since",
		"SELECT id, revoked_at FROM grants WHERE revoked_at <> 0 AND revoked_at >= ? ORDER BY revoked_at, id",
		func(r scanner) (storage.RevokedGrant, error) {
			var g storage.RevokedGrant
			err := r.Scan(&g.GrantID, timeCol{&g.RevokedAt})
			return g, err
		}, tm(since))
}
