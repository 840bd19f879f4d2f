package conformance

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/storage"
)

func fullAuthRequest(id string) storage.AuthRequest {
	return storage.AuthRequest{
		ID:                  id,
		ClientID:            "c1",
		RedirectURI:         "https://app.example.com/cb",
		State:               "st<&>\"'é",
		Nonce:               "n-0S6_WzA2Mj",
		ResponseMode:        "query",
		Scopes:              []string{"openid", "email"},
		Audience:            []string{"api://one"},
		CodeChallenge:       "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
		CodeChallengeMethod: "S256",
		Prompt:              []string{"login", "consent"},
		MaxAge:              -1,
		LoginHint:           "alice",
		CreatedAt:           t0,
		ExpiresAt:           t0.Add(10 * time.Minute),
	}
}

func testAuthRequests(t *testing.T, newStore func(*testing.T) storage.Store) {
	sub(t, newStore, "RoundTripUpdateDelete", func(t *testing.T, ctx context.Context, s storage.Store) {
		r := fullAuthRequest("r1")
		must(t, s.CreateAuthRequest(ctx, r))
		wantErr(t, s.CreateAuthRequest(ctx, r), storage.ErrAlreadyExists)
		got, err := s.GetAuthRequest(ctx, "r1", t0)
		must(t, err)
		equal(t, got, r)
		r.UserID, r.SessionID, r.AuthTime, r.AMR, r.ACR, r.Consented, r.MaxAge = "u1", "s1", t0.Add(time.Second), []string{"pwd", "otp"}, "urn:acr:2", true, 300
		must(t, s.UpdateAuthRequest(ctx, "r1", t0, func(storage.AuthRequest) (storage.AuthRequest, error) { return r, nil }))
		got, err = s.GetAuthRequest(ctx, "r1", t0)
		must(t, err)
		equal(t, got, r)
		must(t, s.DeleteAuthRequest(ctx, "r1"))
		_, err = s.GetAuthRequest(ctx, "r1", t0)
		wantErr(t, err, storage.ErrNotFound)
		wantErr(t, s.UpdateAuthRequest(ctx, "r1", t0, func(a storage.AuthRequest) (storage.AuthRequest, error) { return a, nil }), storage.ErrNotFound)
	})
	sub(t, newStore, "Expired", func(t *testing.T, ctx context.Context, s storage.Store) {
		r := fullAuthRequest("r1")
		r.CreatedAt = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
		r.ExpiresAt = r.CreatedAt.Add(10 * time.Minute)
		must(t, s.CreateAuthRequest(ctx, r))
		_, err := s.GetAuthRequest(ctx, "r1", t0)
		wantErr(t, err, storage.ErrExpired)
		err = s.UpdateAuthRequest(ctx, "r1", t0, func(a storage.AuthRequest) (storage.AuthRequest, error) {
			a.UserID = "u1"
			return a, nil
		})
		wantErr(t, err, storage.ErrExpired)
	})
}

func newCode(hash string) storage.AuthCode {
	return storage.AuthCode{
		Hash:          hash,
		GrantID:       "g-" + hash,
		ClientID:      "c1",
		RedirectURI:   "https://app.example.com/cb",
		UserID:        "u1",
		SessionID:     "s1",
		Scopes:        []string{"openid", "offline_access"},
		Audience:      []string{"api://one"},
		Nonce:         "nonce",
		CodeChallenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
		AuthTime:      t0.Add(-time.Minute),
		AMR:           []string{"pwd"},
		ACR:           "urn:acr:1",
		CreatedAt:     t0,
		ExpiresAt:     t0.Add(time.Minute),
	}
}

func testCodes(t *testing.T, newStore func(*testing.T) storage.Store) {
	sub(t, newStore, "OA-C/create-consumes-auth-request", func(t *testing.T, ctx context.Context, s storage.Store) {
		must(t, s.CreateAuthRequest(ctx, fullAuthRequest("r1")))
		c := newCode("h1")
		must(t, s.CreateAuthCode(ctx, c, "r1"))
		_, err := s.GetAuthRequest(ctx, "r1", t0)
		wantErr(t, err, storage.ErrNotFound)
		// A second code from the same (consumed) request is refused and not stored.
		err = s.CreateAuthCode(ctx, newCode("h2"), "r1")
		if err == nil {
			t.Fatal("second code from one auth request was accepted")
		}
		_, err = s.RedeemAuthCode(ctx, "h2", t0)
		wantErr(t, err, storage.ErrNotFound)
		// A duplicate code hash fails and leaves the auth request in place.
		must(t, s.CreateAuthRequest(ctx, fullAuthRequest("r2")))
		wantErr(t, s.CreateAuthCode(ctx, c, "r2"), storage.ErrAlreadyExists)
		_, err = s.GetAuthRequest(ctx, "r2", t0)
		must(t, err)
		// Without an auth request.
		must(t, s.CreateAuthCode(ctx, newCode("h3"), ""))
	})
	sub(t, newStore, "OA-C/second-redemption", func(t *testing.T, ctx context.Context, s storage.Store) {
		c := newCode("h1")
		must(t, s.CreateAuthCode(ctx, c, ""))
		now := t0.Add(10 * time.Second)
		got, err := s.RedeemAuthCode(ctx, "h1", now)
		must(t, err)
		c.UsedAt = now
		equal(t, got, c)
		got, err = s.RedeemAuthCode(ctx, "h1", now.Add(time.Second))
		wantErr(t, err, storage.ErrAlreadyUsed)
		equal(t, got, c) // the stored code, so the caller can revoke its grant
	})
	sub(t, newStore, "OA-C/concurrent-redemption", func(t *testing.T, ctx context.Context, s storage.Store) {
		c := newCode("h1")
		must(t, s.CreateAuthCode(ctx, c, ""))
		const n = 50
		codes := make([]storage.AuthCode, n)
		errs := race(n, func(i int) error {
			var err error
			codes[i], err = s.RedeemAuthCode(ctx, "h1", t0.Add(time.Second))
			return err
		})
		ok, used := countErrs(t, errs, storage.ErrAlreadyUsed)
		if ok != 1 || used != n-1 {
			t.Fatalf("%d redemptions succeeded and %d got ErrAlreadyUsed; want 1 and %d", ok, used, n-1)
		}
		for i, got := range codes {
			if got.GrantID != c.GrantID || got.UsedAt.IsZero() {
				t.Fatalf("caller %d got code %+v without its grant or use time", i, got)
			}
		}
	})
	sub(t, newStore, "OA-C/expired", func(t *testing.T, ctx context.Context, s storage.Store) {
		c := newCode("h1")
		must(t, s.CreateAuthCode(ctx, c, ""))
		for _, at := range []time.Time{c.ExpiresAt, c.ExpiresAt.Add(time.Hour)} {
			_, err := s.RedeemAuthCode(ctx, "h1", at)
			wantErr(t, err, storage.ErrExpired)
		}
		_, err := s.RedeemAuthCode(ctx, "unknown", t0)
		wantErr(t, err, storage.ErrNotFound)
	})
}

func newGrant(id, clientID, userID, sessionID string) (storage.Grant, storage.RefreshToken) {
	g := storage.Grant{
		ID:        id,
		ClientID:  clientID,
		UserID:    userID,
		SessionID: sessionID,
		Scopes:    []string{"openid", "offline_access"},
		Audience:  []string{"api://one"},
		AuthTime:  t0.Add(-time.Minute),
		AMR:       []string{"pwd", "otp"},
		ACR:       "urn:acr:2",
		CreatedAt: t0,
		ExpiresAt: t0.Add(30 * 24 * time.Hour),
	}
	rt := storage.RefreshToken{
		Hash:      "rt-" + id,
		GrantID:   id,
		ClientID:  clientID,
		CreatedAt: t0,
		ExpiresAt: t0.Add(24 * time.Hour),
	}
	return g, rt
}

func assertRevoked(t *testing.T, ctx context.Context, s storage.Store, grantID string, at time.Time) {
	t.Helper()
	g, err := s.GetGrant(ctx, grantID)
	must(t, err)
	if !g.RevokedAt.Equal(at) || g.RevokeReason == "" {
		t.Fatalf("grant %s: RevokedAt=%v reason=%q, want revoked at %v with a reason", grantID, g.RevokedAt, g.RevokeReason, at)
	}
}

func assertNotRevoked(t *testing.T, ctx context.Context, s storage.Store, grantID string) {
	t.Helper()
	g, err := s.GetGrant(ctx, grantID)
	must(t, err)
	if !g.RevokedAt.IsZero() {
		t.Fatalf("grant %s revoked at %v, want not revoked", grantID, g.RevokedAt)
	}
}

func next(hash string, at time.Time) storage.RefreshToken {
	return storage.RefreshToken{Hash: hash, CreatedAt: at, ExpiresAt: at.Add(24 * time.Hour)}
}

func testGrants(t *testing.T, newStore func(*testing.T) storage.Store) {
	sub(t, newStore, "RoundTrip", func(t *testing.T, ctx context.Context, s storage.Store) {
		g, rt := newGrant("g1", "c1", "u1", "s1")
		must(t, s.CreateGrant(ctx, g, &rt))
		got, err := s.GetGrant(ctx, "g1")
		must(t, err)
		equal(t, got, g)
		gotRT, err := s.GetRefreshToken(ctx, rt.Hash)
		must(t, err)
		equal(t, gotRT, rt)
		_, err = s.GetGrant(ctx, "nope")
		wantErr(t, err, storage.ErrNotFound)
		_, err = s.GetRefreshToken(ctx, "nope")
		wantErr(t, err, storage.ErrNotFound)
		wantErr(t, s.CreateGrant(ctx, g, nil), storage.ErrAlreadyExists)
		// One transaction: a first token whose hash is taken leaves no grant.
		g2, _ := newGrant("g2", "c1", "u1", "s1")
		rt2 := rt
		rt2.GrantID = "g2"
		wantErr(t, s.CreateGrant(ctx, g2, &rt2), storage.ErrAlreadyExists)
		_, err = s.GetGrant(ctx, "g2")
		wantErr(t, err, storage.ErrNotFound)
	})
	sub(t, newStore, "OA-T/rotation", func(t *testing.T, ctx context.Context, s storage.Store) {
		g, rt := newGrant("g1", "c1", "u1", "s1")
		must(t, s.CreateGrant(ctx, g, &rt))
		now := t0.Add(time.Hour)
		old, gotG, err := s.RotateRefreshToken(ctx, rt.Hash, next("rt-2", now), now)
		must(t, err)
		equal(t, gotG, g)
		if old.Hash != rt.Hash || old.GrantID != "g1" || old.ClientID != "c1" {
			t.Fatalf("rotation returned %+v, want the rotated token", old)
		}
		stored, err := s.GetRefreshToken(ctx, rt.Hash)
		must(t, err)
		if !stored.UsedAt.Equal(now) {
			t.Fatalf("old token UsedAt = %v, want %v", stored.UsedAt, now)
		}
		n2, err := s.GetRefreshToken(ctx, "rt-2")
		must(t, err)
		equal(t, n2, storage.RefreshToken{Hash: "rt-2", GrantID: "g1", ClientID: "c1", CreatedAt: now, ExpiresAt: now.Add(24 * time.Hour)})
		// One transaction: a successor whose hash is taken leaves rt-2 unused.
		_, _, err = s.RotateRefreshToken(ctx, "rt-2", next(rt.Hash, now), now)
		wantErr(t, err, storage.ErrAlreadyExists)
		n2, err = s.GetRefreshToken(ctx, "rt-2")
		must(t, err)
		if !n2.UsedAt.IsZero() {
			t.Fatal("failed rotation marked the token used")
		}
		_, _, err = s.RotateRefreshToken(ctx, "rt-2", next("rt-3", now), now)
		must(t, err)
	})
	sub(t, newStore, "OA-T/reuse-after-rotation", func(t *testing.T, ctx context.Context, s storage.Store) {
		g, rt := newGrant("g1", "c1", "u1", "s1")
		must(t, s.CreateGrant(ctx, g, &rt))
		_, _, err := s.RotateRefreshToken(ctx, rt.Hash, next("rt-2", t0), t0)
		must(t, err)
		old, gotG, err := s.RotateRefreshToken(ctx, rt.Hash, next("rt-x", t0), t0.Add(time.Second))
		wantErr(t, err, storage.ErrAlreadyUsed)
		if old.Hash != rt.Hash || gotG.ID != "g1" {
			t.Fatalf("reuse returned token %+v grant %+v, want the stored ones", old, gotG)
		}
		_, err = s.GetRefreshToken(ctx, "rt-x")
		wantErr(t, err, storage.ErrNotFound)
		// The caller revokes the family: every later token is dead too.
		must(t, s.RevokeGrant(ctx, "g1", "refresh_token_reuse", t0.Add(time.Second)))
		_, _, err = s.RotateRefreshToken(ctx, "rt-2", next("rt-y", t0), t0.Add(2*time.Second))
		wantErr(t, err, storage.ErrRevoked)
	})
	sub(t, newStore, "OA-T/concurrent-rotation", func(t *testing.T, ctx context.Context, s storage.Store) {
		g, rt := newGrant("g1", "c1", "u1", "s1")
		must(t, s.CreateGrant(ctx, g, &rt))
		const n = 20
		errs := race(n, func(i int) error {
			_, _, err := s.RotateRefreshToken(ctx, rt.Hash, next(fmt.Sprintf("next-%d", i), t0), t0)
			return err
		})
		ok, used := countErrs(t, errs, storage.ErrAlreadyUsed)
		if ok != 1 || used != n-1 {
			t.Fatalf("%d rotations succeeded and %d got ErrAlreadyUsed; want 1 and %d", ok, used, n-1)
		}
		stored := 0
		for i := range n {
			_, err := s.GetRefreshToken(ctx, fmt.Sprintf("next-%d", i))
			if err == nil {
				stored++
			} else if !errors.Is(err, storage.ErrNotFound) {
				t.Fatal(err)
			}
		}
		if stored != 1 {
			t.Fatalf("%d successor tokens stored, want 1", stored)
		}
	})
	sub(t, newStore, "OA-T/revoked-expired-unknown", func(t *testing.T, ctx context.Context, s storage.Store) {
		g1, rt1 := newGrant("g1", "c1", "u1", "s1")
		must(t, s.CreateGrant(ctx, g1, &rt1))
		revokedAt := t0.Add(time.Minute)
		must(t, s.RevokeGrant(ctx, "g1", "logout", revokedAt))
		must(t, s.RevokeGrant(ctx, "g1", "again", revokedAt.Add(time.Hour))) // idempotent
		assertRevoked(t, ctx, s, "g1", revokedAt)
		_, gotG, err := s.RotateRefreshToken(ctx, rt1.Hash, next("n1", t0), revokedAt)
		wantErr(t, err, storage.ErrRevoked)
		if gotG.ID != "g1" {
			t.Fatalf("revoked rotation returned grant %+v", gotG)
		}
		wantErr(t, s.RevokeGrant(ctx, "nope", "x", t0), storage.ErrNotFound)

		g2, rt2 := newGrant("g2", "c1", "u1", "s1")
		must(t, s.CreateGrant(ctx, g2, &rt2))
		_, _, err = s.RotateRefreshToken(ctx, rt2.Hash, next("n2", t0), rt2.ExpiresAt)
		wantErr(t, err, storage.ErrExpired)

		g3, rt3 := newGrant("g3", "c1", "u1", "s1")
		g3.ExpiresAt = t0.Add(time.Minute) // absolute lifetime before the token's idle expiry
		must(t, s.CreateGrant(ctx, g3, &rt3))
		_, _, err = s.RotateRefreshToken(ctx, rt3.Hash, next("n3", t0), g3.ExpiresAt.Add(time.Second))
		wantErr(t, err, storage.ErrExpired)

		_, _, err = s.RotateRefreshToken(ctx, "unknown", next("n4", t0), t0)
		wantErr(t, err, storage.ErrNotFound)
		for _, h := range []string{"n1", "n2", "n3", "n4"} {
			_, err := s.GetRefreshToken(ctx, h)
			wantErr(t, err, storage.ErrNotFound)
		}
	})
	sub(t, newStore, "RevokeForUserAndSession", func(t *testing.T, ctx context.Context, s storage.Store) {
		for _, g := range [][4]string{{"g1", "c1", "u1", "s1"}, {"g2", "c1", "u1", "s2"}, {"g3", "c1", "u2", "s3"}, {"g4", "c1", "u2", "s4"}} {
			gr, rt := newGrant(g[0], g[1], g[2], g[3])
			must(t, s.CreateGrant(ctx, gr, &rt))
		}
		t1, t2 := t0.Add(time.Minute), t0.Add(2*time.Minute)
		must(t, s.RevokeGrantsForUser(ctx, "u1", "user_logout", t1))
		must(t, s.RevokeGrantsForSession(ctx, "s3", "logout", t2))
		assertRevoked(t, ctx, s, "g1", t1)
		assertRevoked(t, ctx, s, "g2", t1)
		assertRevoked(t, ctx, s, "g3", t2)
		assertNotRevoked(t, ctx, s, "g4")
		_, _, err := s.RotateRefreshToken(ctx, "rt-g2", next("n", t2), t2)
		wantErr(t, err, storage.ErrRevoked)
		_, _, err = s.RotateRefreshToken(ctx, "rt-g4", next("n", t2), t2)
		must(t, err)

		all, err := s.RevokedGrantsSince(ctx, t0)
		must(t, err)
		if len(all) != 3 || all[2].GrantID != "g3" || !all[2].RevokedAt.Equal(t2) || !all[0].RevokedAt.Equal(t1) {
			t.Fatalf("RevokedGrantsSince(t0) = %+v, want g1, g2 at %v then g3 at %v", all, t1, t2)
		}
		since, err := s.RevokedGrantsSince(ctx, t2)
		must(t, err)
		equal(t, since, []storage.RevokedGrant{{GrantID: "g3", RevokedAt: t2}})
		none, err := s.RevokedGrantsSince(ctx, t2.Add(time.Microsecond))
		must(t, err)
		if len(none) != 0 {
			t.Fatalf("RevokedGrantsSince(after last) = %+v, want none", none)
		}
	})
}
