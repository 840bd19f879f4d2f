// Package conformance is the single test suite every storage.Store backend
// must pass (after dexidp/dex storage/conformance and OpenFGA's
// pkg/storage/test). A backend's test is one call:
//
//	conformance.RunTests(t, func(t *testing.T) storage.Store { ... })
//
// newStore must return an empty, isolated store for each call and arrange its
// cleanup with t.Cleanup. The suite uses fixed times it passes in, never
// sleeps; only the auth-request expiry (whose interface takes no clock) is
// checked against the wall clock, with times far from it.
package conformance

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/storage"
)

// t0 is the suite's fixed "now": in the future of the wall clock so that
// auth requests built around it are not expired, and with microsecond
// precision, the precision backends must keep.
var t0 = time.Date(2035, 3, 4, 5, 6, 7, 123456000, time.UTC)

// RunTests runs the whole suite against stores made by newStore.
func RunTests(t *testing.T, newStore func(t *testing.T) storage.Store) {
	t.Helper()
	domains := []struct {
		name string
		run  func(*testing.T, func(*testing.T) storage.Store)
	}{
		{"Clients", testClients},
		{"Users", testUsers},
		{"SigningKeys", testKeys},
		{"AuthRequests", testAuthRequests},
		{"AuthCodes", testCodes},
		{"Grants", testGrants},
		{"Sessions", testSessions},
		{"RevokedTokens", testRevokedTokens},
		{"GC", testGC},
		{"Relations", testRelations},
		{"Entities", testEntitiesAndChanges},
		{"CAAuthorities", testAuthorities},
		{"JoinTokens", testJoinTokens},
		{"ClientSPIFFEID", testClientSPIFFEID},
	}
	for _, d := range domains {
		t.Run(d.name, func(t *testing.T) { d.run(t, newStore) })
	}
}

// sub runs one named subtest on a fresh store.
func sub(t *testing.T, newStore func(*testing.T) storage.Store, name string, fn func(t *testing.T, ctx context.Context, s storage.Store)) {
	t.Helper()
	t.Run(name, func(t *testing.T) {
		fn(t, t.Context(), newStore(t))
	})
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantErr(t *testing.T, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("error = %v, want %v", err, want)
	}
}

// equal compares two values after normalising what backends may legitimately
// change: empty slices read back as nil, times in UTC.
func equal(t *testing.T, got, want any) {
	t.Helper()
	g, w := normalize(reflect.ValueOf(got)).Interface(), normalize(reflect.ValueOf(want)).Interface()
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("mismatch\n got: %+v\nwant: %+v", g, w)
	}
}

var timeType = reflect.TypeOf(time.Time{})

func normalize(v reflect.Value) reflect.Value {
	if v.Type() == timeType {
		tv := v.Interface().(time.Time)
		if tv.IsZero() {
			return reflect.ValueOf(time.Time{})
		}
		return reflect.ValueOf(tv.UTC())
	}
	switch v.Kind() {
	case reflect.Struct:
		out := reflect.New(v.Type()).Elem()
		for i := range v.NumField() {
			out.Field(i).Set(normalize(v.Field(i)))
		}
		return out
	case reflect.Slice:
		if v.Len() == 0 {
			return reflect.Zero(v.Type())
		}
		out := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
		for i := range v.Len() {
			out.Index(i).Set(normalize(v.Index(i)))
		}
		return out
	case reflect.Pointer:
		if v.IsNil() {
			return v
		}
		out := reflect.New(v.Type().Elem())
		out.Elem().Set(normalize(v.Elem()))
		return out
	}
	return v
}

// race runs fn n times concurrently, released together, and returns the
// errors by caller index.
func race(n int, fn func(i int) error) []error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = fn(i)
		})
	}
	close(start)
	wg.Wait()
	return errs
}

// countErrs counts nil errors and errors matching want; it fails on others.
func countErrs(t *testing.T, errs []error, want error) (ok, matched int) {
	t.Helper()
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, want):
			matched++
		default:
			t.Errorf("unexpected error: %v", err)
		}
	}
	return ok, matched
}

func fullClient(id string) storage.Client {
	return storage.Client{
		ID:                     id,
		Name:                   "Client " + id,
		SecretHash:             []byte{0, 1, 2, 0xfe, 0xff},
		SecretHint:             "gh_s",
		Public:                 false,
		FirstParty:             true,
		RedirectURIs:           []string{"https://app.example.com/cb", "http://127.0.0.1/cb"},
		PostLogoutRedirectURIs: []string{"https://app.example.com/bye"},
		GrantTypes:             []string{"authorization_code", "refresh_token"},
		Scopes:                 []string{"openid", "profile", "email"},
		Audiences:              []string{"api://one", "api://two"},
		AccessTokenTTL:         5 * time.Minute,
		RefreshIdleTTL:         24 * time.Hour,
		RefreshMaxTTL:          30 * 24 * time.Hour,
		CreatedAt:              t0,
		UpdatedAt:              t0.Add(time.Second),
	}
}

func testClients(t *testing.T, newStore func(*testing.T) storage.Store) {
	sub(t, newStore, "RoundTrip", func(t *testing.T, ctx context.Context, s storage.Store) {
		c := fullClient("c1")
		must(t, s.CreateClient(ctx, c))
		got, err := s.GetClient(ctx, "c1")
		must(t, err)
		equal(t, got, c)
		// A public client with every optional field empty also round-trips.
		pub := storage.Client{ID: "c2", Public: true, RedirectURIs: []string{"app:/cb"}}
		must(t, s.CreateClient(ctx, pub))
		got, err = s.GetClient(ctx, "c2")
		must(t, err)
		equal(t, got, pub)
		if !got.CreatedAt.IsZero() || got.SecretHash != nil {
			t.Fatalf("zero values not kept: %+v", got)
		}
		all, err := s.ListClients(ctx)
		must(t, err)
		equal(t, all, []storage.Client{c, pub})
	})
	sub(t, newStore, "Errors", func(t *testing.T, ctx context.Context, s storage.Store) {
		must(t, s.CreateClient(ctx, fullClient("c1")))
		wantErr(t, s.CreateClient(ctx, fullClient("c1")), storage.ErrAlreadyExists)
		_, err := s.GetClient(ctx, "nope")
		wantErr(t, err, storage.ErrNotFound)
		wantErr(t, s.UpdateClient(ctx, "nope", func(c storage.Client) (storage.Client, error) { return c, nil }), storage.ErrNotFound)
		wantErr(t, s.DeleteClient(ctx, "nope", t0), storage.ErrNotFound)
	})
	sub(t, newStore, "Update", func(t *testing.T, ctx context.Context, s storage.Store) {
		c := fullClient("c1")
		must(t, s.CreateClient(ctx, c))
		boom := errors.New("boom")
		err := s.UpdateClient(ctx, "c1", func(c storage.Client) (storage.Client, error) {
			c.Name = "changed"
			return c, boom
		})
		wantErr(t, err, boom)
		got, err := s.GetClient(ctx, "c1")
		must(t, err)
		equal(t, got, c) // a failed update writes nothing
		err = s.UpdateClient(ctx, "c1", func(c storage.Client) (storage.Client, error) {
			c.ID = "c-other"
			return c, nil
		})
		if err == nil {
			t.Fatal("UpdateClient changed the client id")
		}
		_, err = s.GetClient(ctx, "c-other")
		wantErr(t, err, storage.ErrNotFound)

		c.Name, c.RedirectURIs, c.SecretHash, c.UpdatedAt = "renamed", nil, nil, t0.Add(time.Hour)
		must(t, s.UpdateClient(ctx, "c1", func(old storage.Client) (storage.Client, error) {
			equal(t, old, fullClient("c1"))
			return c, nil
		}))
		got, err = s.GetClient(ctx, "c1")
		must(t, err)
		equal(t, got, c)
	})
	sub(t, newStore, "ConcurrentUpdate", func(t *testing.T, ctx context.Context, s storage.Store) {
		must(t, s.CreateClient(ctx, storage.Client{ID: "c1"}))
		const n = 20
		errs := race(n, func(int) error {
			return s.UpdateClient(ctx, "c1", func(c storage.Client) (storage.Client, error) {
				c.AccessTokenTTL++
				return c, nil
			})
		})
		for _, err := range errs {
			must(t, err)
		}
		got, err := s.GetClient(ctx, "c1")
		must(t, err)
		if got.AccessTokenTTL != n {
			t.Fatalf("lost updates: counter = %d, want %d", got.AccessTokenTTL, n)
		}
	})
	sub(t, newStore, "OA-T/client-deletion-revokes-grants", func(t *testing.T, ctx context.Context, s storage.Store) {
		must(t, s.CreateClient(ctx, fullClient("c1")))
		must(t, s.CreateClient(ctx, fullClient("c2")))
		g1, rt1 := newGrant("g1", "c1", "u1", "s1")
		g2, _ := newGrant("g2", "c2", "u1", "s1")
		must(t, s.CreateGrant(ctx, g1, &rt1))
		must(t, s.CreateGrant(ctx, g2, nil))
		now := t0.Add(time.Minute)
		must(t, s.DeleteClient(ctx, "c1", now))
		_, err := s.GetClient(ctx, "c1")
		wantErr(t, err, storage.ErrNotFound)
		assertRevoked(t, ctx, s, "g1", now)
		assertNotRevoked(t, ctx, s, "g2")
		_, _, err = s.RotateRefreshToken(ctx, rt1.Hash, storage.RefreshToken{Hash: "rt-next", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}, now)
		wantErr(t, err, storage.ErrRevoked)
	})
}

func fullUser(id string) storage.User {
	return storage.User{
		ID:            id,
		Username:      "user-" + id,
		Email:         id + "@example.com",
		EmailVerified: true,
		Name:          "User " + id,
		PasswordHash:  "$argon2id$v=19$m=65536,t=3,p=2$c2FsdA$aGFzaA",
		Roles:         []string{"admin", "dev"},
		Groups:        []string{"eng"},
		Tenant:        "acme",
		CreatedAt:     t0,
		UpdatedAt:     t0,
	}
}

func testUsers(t *testing.T, newStore func(*testing.T) storage.Store) {
	sub(t, newStore, "RoundTrip", func(t *testing.T, ctx context.Context, s storage.Store) {
		u := fullUser("u1")
		must(t, s.CreateUser(ctx, u))
		got, err := s.GetUser(ctx, "u1")
		must(t, err)
		equal(t, got, u)
		got, err = s.GetUserByUsername(ctx, "user-u1")
		must(t, err)
		equal(t, got, u)
		bare := storage.User{ID: "u2", Username: "bare", Disabled: true}
		must(t, s.CreateUser(ctx, bare))
		all, err := s.ListUsers(ctx)
		must(t, err)
		if len(all) != 2 {
			t.Fatalf("ListUsers = %d users, want 2", len(all))
		}
		got, err = s.GetUser(ctx, "u2")
		must(t, err)
		equal(t, got, bare)
	})
	sub(t, newStore, "Errors", func(t *testing.T, ctx context.Context, s storage.Store) {
		must(t, s.CreateUser(ctx, fullUser("u1")))
		// Several users without an email are fine.
		must(t, s.CreateUser(ctx, storage.User{ID: "n1", Username: "noemail1"}))
		must(t, s.CreateUser(ctx, storage.User{ID: "n2", Username: "noemail2"}))
		dupID := fullUser("u1")
		dupID.Username, dupID.Email = "other", "other@example.com"
		dupName := fullUser("u2")
		dupName.Username = "user-u1"
		dupEmail := fullUser("u3")
		dupEmail.Email = "u1@example.com"
		for _, tc := range []struct {
			name string
			u    storage.User
		}{{"id", dupID}, {"username", dupName}, {"email", dupEmail}} {
			t.Run("duplicate-"+tc.name, func(t *testing.T) {
				wantErr(t, s.CreateUser(ctx, tc.u), storage.ErrAlreadyExists)
			})
		}
		_, err := s.GetUser(ctx, "nope")
		wantErr(t, err, storage.ErrNotFound)
		_, err = s.GetUserByUsername(ctx, "USER-U1") // exact match only
		wantErr(t, err, storage.ErrNotFound)
		wantErr(t, s.DeleteUser(ctx, "nope", t0), storage.ErrNotFound)
		wantErr(t, s.UpdateUser(ctx, "nope", func(u storage.User) (storage.User, error) { return u, nil }), storage.ErrNotFound)
		// Taking another user's email by update is refused.
		must(t, s.CreateUser(ctx, fullUser("u4")))
		err = s.UpdateUser(ctx, "u4", func(u storage.User) (storage.User, error) {
			u.Email = "u1@example.com"
			return u, nil
		})
		wantErr(t, err, storage.ErrAlreadyExists)
	})
	cascade := []struct {
		name   string
		change func(*storage.User)
		ends   bool
	}{
		{"OA-T/user-disable", func(u *storage.User) { u.Disabled = true }, true},
		{"OA-T/password-change", func(u *storage.User) { u.PasswordHash = "$argon2id$new" }, true},
		{"profile-change-keeps-sessions", func(u *storage.User) { u.Name, u.Roles = "New Name", nil }, false},
	}
	for _, tc := range cascade {
		sub(t, newStore, tc.name, func(t *testing.T, ctx context.Context, s storage.Store) {
			must(t, s.CreateUser(ctx, fullUser("u1")))
			must(t, s.CreateUser(ctx, fullUser("u2")))
			must(t, s.CreateSession(ctx, newSession("s1", "u1")))
			must(t, s.CreateSession(ctx, newSession("s2", "u2")))
			g1, rt1 := newGrant("g1", "c1", "u1", "s1")
			g2, _ := newGrant("g2", "c1", "u2", "s2")
			must(t, s.CreateGrant(ctx, g1, &rt1))
			must(t, s.CreateGrant(ctx, g2, nil))
			now := t0.Add(time.Minute)
			must(t, s.UpdateUser(ctx, "u1", func(u storage.User) (storage.User, error) {
				tc.change(&u)
				u.UpdatedAt = now
				return u, nil
			}))
			_, err := s.GetSession(ctx, "s1")
			if tc.ends {
				wantErr(t, err, storage.ErrNotFound)
				assertRevoked(t, ctx, s, "g1", now)
				_, _, err = s.RotateRefreshToken(ctx, rt1.Hash, storage.RefreshToken{Hash: "n", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}, now)
				wantErr(t, err, storage.ErrRevoked)
			} else {
				must(t, err)
				assertNotRevoked(t, ctx, s, "g1")
			}
			_, err = s.GetSession(ctx, "s2")
			must(t, err)
			assertNotRevoked(t, ctx, s, "g2")
		})
	}
	sub(t, newStore, "DeleteUser", func(t *testing.T, ctx context.Context, s storage.Store) {
		must(t, s.CreateUser(ctx, fullUser("u1")))
		must(t, s.CreateSession(ctx, newSession("s1", "u1")))
		g1, _ := newGrant("g1", "c1", "u1", "s1")
		must(t, s.CreateGrant(ctx, g1, nil))
		must(t, s.DeleteUser(ctx, "u1", t0))
		_, err := s.GetUser(ctx, "u1")
		wantErr(t, err, storage.ErrNotFound)
		_, err = s.GetSession(ctx, "s1")
		wantErr(t, err, storage.ErrNotFound)
		assertRevoked(t, ctx, s, "g1", t0)
		// The username is free again.
		must(t, s.CreateUser(ctx, fullUser("u1")))
	})
}

func fullKey(id string, gen int64) storage.SigningKey {
	return storage.SigningKey{
		ID:         id,
		Algorithm:  "ES256",
		Generation: gen,
		Sealed:     []byte("sealed-" + id),
		PublicJWK:  []byte(`{"kty":"EC","kid":"` + id + `"}`),
		CreatedAt:  t0,
		ActivateAt: t0.Add(time.Hour),
	}
}

func testKeys(t *testing.T, newStore func(*testing.T) storage.Store) {
	sub(t, newStore, "RoundTripOrdered", func(t *testing.T, ctx context.Context, s storage.Store) {
		k2, k1, k3 := fullKey("k2", 2), fullKey("k1", 1), fullKey("k3", 3)
		k1.RetiredAt, k1.ExpiresAt, k1.RevokedAt = t0.Add(2*time.Hour), t0.Add(3*time.Hour), t0.Add(4*time.Hour)
		for _, k := range []storage.SigningKey{k2, k1, k3} {
			must(t, s.CreateSigningKey(ctx, k))
		}
		got, err := s.ListSigningKeys(ctx)
		must(t, err)
		equal(t, got, []storage.SigningKey{k1, k2, k3})
	})
	sub(t, newStore, "Errors", func(t *testing.T, ctx context.Context, s storage.Store) {
		must(t, s.CreateSigningKey(ctx, fullKey("k1", 1)))
		wantErr(t, s.CreateSigningKey(ctx, fullKey("k1", 2)), storage.ErrAlreadyExists)
		wantErr(t, s.CreateSigningKey(ctx, fullKey("k2", 1)), storage.ErrAlreadyExists)
		wantErr(t, s.UpdateSigningKey(ctx, "nope", func(k storage.SigningKey) (storage.SigningKey, error) { return k, nil }), storage.ErrNotFound)
	})
	sub(t, newStore, "Update", func(t *testing.T, ctx context.Context, s storage.Store) {
		k := fullKey("k1", 1)
		must(t, s.CreateSigningKey(ctx, k))
		k.RetiredAt, k.ExpiresAt = t0.Add(time.Hour), t0.Add(48*time.Hour)
		must(t, s.UpdateSigningKey(ctx, "k1", func(storage.SigningKey) (storage.SigningKey, error) { return k, nil }))
		got, err := s.ListSigningKeys(ctx)
		must(t, err)
		equal(t, got, []storage.SigningKey{k})
	})
	sub(t, newStore, "MT/keys/two-replicas-never-rotate-twice", func(t *testing.T, ctx context.Context, s storage.Store) {
		must(t, s.CreateSigningKey(ctx, fullKey("k1", 1)))
		const n = 8
		errs := race(n, func(i int) error {
			return s.CreateSigningKey(ctx, fullKey(fmt.Sprintf("next-%d", i), 2))
		})
		ok, dup := countErrs(t, errs, storage.ErrAlreadyExists)
		if ok != 1 || dup != n-1 {
			t.Fatalf("concurrent rotation: %d succeeded, %d ErrAlreadyExists; want 1 and %d", ok, dup, n-1)
		}
		got, err := s.ListSigningKeys(ctx)
		must(t, err)
		if len(got) != 2 {
			t.Fatalf("%d keys stored, want 2", len(got))
		}
	})
}
