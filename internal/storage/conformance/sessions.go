package conformance

import (
	"context"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/storage"
)

func newSession(idHash, userID string) storage.Session {
	return storage.Session{
		IDHash:     idHash,
		UserID:     userID,
		AuthTime:   t0,
		AMR:        []string{"pwd"},
		CreatedAt:  t0,
		LastSeenAt: t0,
		ExpiresAt:  t0.Add(12 * time.Hour),
	}
}

func testSessions(t *testing.T, newStore func(*testing.T) storage.Store) {
	sub(t, newStore, "Lifecycle", func(t *testing.T, ctx context.Context, s storage.Store) {
		x := newSession("s1", "u1")
		must(t, s.CreateSession(ctx, x))
		wantErr(t, s.CreateSession(ctx, x), storage.ErrAlreadyExists)
		got, err := s.GetSession(ctx, "s1")
		must(t, err)
		equal(t, got, x)

		seen := t0.Add(time.Hour)
		must(t, s.TouchSession(ctx, "s1", seen))
		got, err = s.GetSession(ctx, "s1")
		must(t, err)
		x.LastSeenAt = seen
		equal(t, got, x)
		wantErr(t, s.TouchSession(ctx, "nope", seen), storage.ErrNotFound)

		must(t, s.DeleteSession(ctx, "s1"))
		_, err = s.GetSession(ctx, "s1")
		wantErr(t, err, storage.ErrNotFound)
	})
	sub(t, newStore, "DeleteForUser", func(t *testing.T, ctx context.Context, s storage.Store) {
		for _, x := range [][2]string{{"a", "u1"}, {"b", "u1"}, {"c", "u2"}} {
			must(t, s.CreateSession(ctx, newSession(x[0], x[1])))
		}
		must(t, s.DeleteSessionsForUser(ctx, "u1"))
		for _, tc := range []struct {
			id   string
			want error
		}{{"a", storage.ErrNotFound}, {"b", storage.ErrNotFound}, {"c", nil}} {
			_, err := s.GetSession(ctx, tc.id)
			if tc.want == nil {
				must(t, err)
			} else {
				wantErr(t, err, tc.want)
			}
		}
	})
}

func testRevokedTokens(t *testing.T, newStore func(*testing.T) storage.Store) {
	sub(t, newStore, "IdempotentFeed", func(t *testing.T, ctx context.Context, s storage.Store) {
		a := storage.RevokedToken{JTI: "a", RevokedAt: t0, ExpiresAt: t0.Add(time.Hour)}
		b := storage.RevokedToken{JTI: "b", RevokedAt: t0.Add(time.Minute), ExpiresAt: t0.Add(2 * time.Hour)}
		must(t, s.RevokeAccessToken(ctx, a))
		must(t, s.RevokeAccessToken(ctx, b))
		again := a
		again.RevokedAt = t0.Add(time.Hour)
		must(t, s.RevokeAccessToken(ctx, again)) // idempotent
		all, err := s.RevokedTokensSince(ctx, t0)
		must(t, err)
		equal(t, all, []storage.RevokedToken{a, b})
		later, err := s.RevokedTokensSince(ctx, b.RevokedAt)
		must(t, err)
		equal(t, later, []storage.RevokedToken{b})
	})
}

func testGC(t *testing.T, newStore func(*testing.T) storage.Store) {
	sub(t, newStore, "RemovesExpiredKeepsLive", func(t *testing.T, ctx context.Context, s storage.Store) {
		now := t0.Add(time.Hour)
		dead, live := now.Add(-time.Second), now.Add(time.Hour)

		// Auth requests expire against the wall clock on read, so only
		// existence is checked here.
		for id, exp := range map[string]time.Time{"r-dead": dead, "r-live": live} {
			r := fullAuthRequest(id)
			r.ExpiresAt = exp
			must(t, s.CreateAuthRequest(ctx, r))
		}
		for h, exp := range map[string]time.Time{"c-dead": dead, "c-live": live} {
			c := newCode(h)
			c.ExpiresAt = exp
			must(t, s.CreateAuthCode(ctx, c, ""))
		}
		// g-live and g-forever (no absolute expiry) stay, g-forever loses
		// its expired refresh token; g-dead's absolute expiry has passed.
		gl, rtl := newGrant("g-live", "c1", "u1", "s1")
		must(t, s.CreateGrant(ctx, gl, &rtl))
		rtDead := storage.RefreshToken{Hash: "rt-dead", GrantID: "g-forever", ClientID: "c1", CreatedAt: t0, ExpiresAt: dead}
		must(t, s.CreateGrant(ctx, storage.Grant{ID: "g-forever", ClientID: "c1"}, &rtDead))
		gd, rtd := newGrant("g-dead", "c1", "u1", "s1")
		gd.ExpiresAt = dead
		rtd.ExpiresAt = live // removed with its grant all the same
		must(t, s.CreateGrant(ctx, gd, &rtd))
		for id, exp := range map[string]time.Time{"s-dead": dead, "s-live": live} {
			x := newSession(id, "u1")
			x.ExpiresAt = exp
			must(t, s.CreateSession(ctx, x))
		}
		for jti, exp := range map[string]time.Time{"j-dead": dead, "j-live": live} {
			must(t, s.RevokeAccessToken(ctx, storage.RevokedToken{JTI: jti, RevokedAt: t0, ExpiresAt: exp}))
		}

		n, err := s.GC(ctx, now)
		must(t, err)
		// r-dead, c-dead, rt-dead, g-dead, s-dead, j-dead (rt-g-dead may be
		// counted as well, through the grant's deletion).
		if n < 6 || n > 7 {
			t.Fatalf("GC removed %d rows, want 6 (or 7 counting the cascade)", n)
		}

		_, err = s.RedeemAuthCode(ctx, "c-dead", now)
		wantErr(t, err, storage.ErrNotFound)
		_, err = s.RedeemAuthCode(ctx, "c-live", now)
		must(t, err)
		for _, h := range []string{"rt-dead", rtd.Hash} {
			_, err = s.GetRefreshToken(ctx, h)
			wantErr(t, err, storage.ErrNotFound)
		}
		_, err = s.GetRefreshToken(ctx, rtl.Hash)
		must(t, err)
		_, err = s.GetGrant(ctx, "g-dead")
		wantErr(t, err, storage.ErrNotFound)
		for _, id := range []string{"g-live", "g-forever"} {
			_, err = s.GetGrant(ctx, id)
			must(t, err)
		}
		_, err = s.GetSession(ctx, "s-dead")
		wantErr(t, err, storage.ErrNotFound)
		_, err = s.GetSession(ctx, "s-live")
		must(t, err)
		toks, err := s.RevokedTokensSince(ctx, time.Time{})
		must(t, err)
		if len(toks) != 1 || toks[0].JTI != "j-live" {
			t.Fatalf("revoked tokens after GC = %+v, want only j-live", toks)
		}
		// r-dead is gone; r-live (expiring in the future of t0) is not.
		_, err = s.GetAuthRequest(ctx, "r-dead", now)
		wantErr(t, err, storage.ErrNotFound)
		_, err = s.GetAuthRequest(ctx, "r-live", now)
		must(t, err)

		n, err = s.GC(ctx, now)
		must(t, err)
		if n != 0 {
			t.Fatalf("second GC removed %d rows, want 0", n)
		}
	})
}
