package conformance

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/storage"
)

// Workload identity: the CA's authorities, join tokens and clients' SPIFFE IDs.

func fullAuthority(id, kind string, gen int64, state string) storage.CAAuthority {
	a := storage.CAAuthority{
		ID:         id,
		Kind:       kind,
		Generation: gen,
		CertDER:    []byte{0x30, 0x82, 0, byte(gen), 0xff},
		Sealed:     []byte("sealed-" + id),
		State:      state,
		NotBefore:  t0.Add(-time.Minute),
		NotAfter:   t0.Add(24 * time.Hour),
		CreatedAt:  t0,
	}
	switch state {
	case storage.AuthorityActive:
		a.ActivatedAt = t0.Add(time.Second)
	case storage.AuthorityRetired:
		a.ActivatedAt, a.RetiredAt = t0.Add(time.Second), t0.Add(2*time.Second)
	}
	return a
}

func authorityByID(t *testing.T, ctx context.Context, s storage.Store, id string) storage.CAAuthority {
	t.Helper()
	all, err := s.ListAuthorities(ctx)
	must(t, err)
	for _, a := range all {
		if a.ID == id {
			return a
		}
	}
	t.Fatalf("authority %s not listed", id)
	return storage.CAAuthority{}
}

func testAuthorities(t *testing.T, newStore func(*testing.T) storage.Store) {
	sub(t, newStore, "RoundTripOrdered", func(t *testing.T, ctx context.Context, s storage.Store) {
		r2 := fullAuthority("r2", storage.AuthorityRoot, 2, storage.AuthorityPrepared)
		r1 := fullAuthority("r1", storage.AuthorityRoot, 1, storage.AuthorityActive)
		i1 := fullAuthority("i1", storage.AuthorityIntermediate, 1, storage.AuthorityRetired)
		i2 := fullAuthority("i2", storage.AuthorityIntermediate, 2, storage.AuthorityActive)
		for _, a := range []storage.CAAuthority{r2, i2, r1, i1} {
			must(t, s.CreateAuthority(ctx, a))
		}
		got, err := s.ListAuthorities(ctx)
		must(t, err)
		equal(t, got, []storage.CAAuthority{i1, i2, r1, r2})
	})
	sub(t, newStore, "Empty", func(t *testing.T, ctx context.Context, s storage.Store) {
		got, err := s.ListAuthorities(ctx)
		must(t, err)
		if len(got) != 0 {
			t.Fatalf("empty store lists %d authorities", len(got))
		}
	})
	sub(t, newStore, "Duplicates", func(t *testing.T, ctx context.Context, s storage.Store) {
		must(t, s.CreateAuthority(ctx, fullAuthority("r1", storage.AuthorityRoot, 1, storage.AuthorityActive)))
		// The same generation of the other kind is fine.
		must(t, s.CreateAuthority(ctx, fullAuthority("i1", storage.AuthorityIntermediate, 1, storage.AuthorityActive)))
		for _, tc := range []struct {
			name string
			a    storage.CAAuthority
		}{
			{"id", fullAuthority("r1", storage.AuthorityRoot, 2, storage.AuthorityPrepared)},
			{"kind+generation", fullAuthority("r-other", storage.AuthorityRoot, 1, storage.AuthorityPrepared)},
		} {
			t.Run(tc.name, func(t *testing.T) {
				wantErr(t, s.CreateAuthority(ctx, tc.a), storage.ErrAlreadyExists)
			})
		}
		got, err := s.ListAuthorities(ctx)
		must(t, err)
		if len(got) != 2 {
			t.Fatalf("%d authorities stored, want 2", len(got))
		}
	})
	sub(t, newStore, "MT/ca/two-replicas-never-prepare-twice", func(t *testing.T, ctx context.Context, s storage.Store) {
		must(t, s.CreateAuthority(ctx, fullAuthority("i1", storage.AuthorityIntermediate, 1, storage.AuthorityActive)))
		const n = 8
		errs := race(n, func(i int) error {
			return s.CreateAuthority(ctx, fullAuthority(fmt.Sprintf("i-next-%d", i), storage.AuthorityIntermediate, 2, storage.AuthorityPrepared))
		})
		ok, dup := countErrs(t, errs, storage.ErrAlreadyExists)
		if ok != 1 || dup != n-1 {
			t.Fatalf("concurrent prepare: %d succeeded, %d ErrAlreadyExists; want 1 and %d", ok, dup, n-1)
		}
		got, err := s.ListAuthorities(ctx)
		must(t, err)
		if len(got) != 2 {
			t.Fatalf("%d authorities stored, want 2", len(got))
		}
	})
	sub(t, newStore, "Invalid", func(t *testing.T, ctx context.Context, s storage.Store) {
		for _, tc := range []struct {
			name   string
			change func(*storage.CAAuthority)
		}{
			{"empty-id", func(a *storage.CAAuthority) { a.ID = "" }},
			{"unknown-kind", func(a *storage.CAAuthority) { a.Kind = "leaf" }},
			{"empty-kind", func(a *storage.CAAuthority) { a.Kind = "" }},
			{"unknown-state", func(a *storage.CAAuthority) { a.State = "revoked" }},
			{"empty-cert", func(a *storage.CAAuthority) { a.CertDER = nil }},
			{"empty-sealed", func(a *storage.CAAuthority) { a.Sealed = []byte{} }},
			{"generation-zero", func(a *storage.CAAuthority) { a.Generation = 0 }},
			{"generation-negative", func(a *storage.CAAuthority) { a.Generation = -1 }},
		} {
			t.Run(tc.name, func(t *testing.T) {
				a := fullAuthority("r1", storage.AuthorityRoot, 1, storage.AuthorityPrepared)
				tc.change(&a)
				wantErr(t, s.CreateAuthority(ctx, a), storage.ErrInvalid)
			})
		}
		got, err := s.ListAuthorities(ctx)
		must(t, err)
		if len(got) != 0 {
			t.Fatalf("invalid authorities stored: %+v", got)
		}
	})
	sub(t, newStore, "Activate", func(t *testing.T, ctx context.Context, s storage.Store) {
		r1 := fullAuthority("r1", storage.AuthorityRoot, 1, storage.AuthorityActive)
		r2 := fullAuthority("r2", storage.AuthorityRoot, 2, storage.AuthorityPrepared)
		i1 := fullAuthority("i1", storage.AuthorityIntermediate, 1, storage.AuthorityActive)
		for _, a := range []storage.CAAuthority{r1, r2, i1} {
			must(t, s.CreateAuthority(ctx, a))
		}
		at := t0.Add(time.Hour)
		must(t, s.ActivateAuthority(ctx, "r2", at))
		r1.State, r1.RetiredAt = storage.AuthorityRetired, at
		r2.State, r2.ActivatedAt = storage.AuthorityActive, at
		got, err := s.ListAuthorities(ctx)
		must(t, err)
		equal(t, got, []storage.CAAuthority{i1, r1, r2}) // the other kind is untouched

		// Neither an active nor a retired authority can be activated again.
		for _, id := range []string{"r2", "r1"} {
			wantErr(t, s.ActivateAuthority(ctx, id, at.Add(time.Hour)), storage.ErrAlreadyUsed)
		}
		wantErr(t, s.ActivateAuthority(ctx, "nope", at), storage.ErrNotFound)
		got, err = s.ListAuthorities(ctx)
		must(t, err)
		equal(t, got, []storage.CAAuthority{i1, r1, r2}) // nothing changed
	})
	sub(t, newStore, "ActivateFirst", func(t *testing.T, ctx context.Context, s storage.Store) {
		// With no active authority of the kind, only the prepared one changes.
		i1 := fullAuthority("i1", storage.AuthorityIntermediate, 1, storage.AuthorityPrepared)
		must(t, s.CreateAuthority(ctx, i1))
		must(t, s.ActivateAuthority(ctx, "i1", t0.Add(time.Minute)))
		i1.State, i1.ActivatedAt = storage.AuthorityActive, t0.Add(time.Minute)
		equal(t, authorityByID(t, ctx, s, "i1"), i1)
	})
	sub(t, newStore, "MT/ca/concurrent-activation", func(t *testing.T, ctx context.Context, s storage.Store) {
		must(t, s.CreateAuthority(ctx, fullAuthority("i1", storage.AuthorityIntermediate, 1, storage.AuthorityActive)))
		must(t, s.CreateAuthority(ctx, fullAuthority("i2", storage.AuthorityIntermediate, 2, storage.AuthorityPrepared)))
		const n = 8
		errs := race(n, func(i int) error {
			return s.ActivateAuthority(ctx, "i2", t0.Add(time.Duration(i+1)*time.Minute))
		})
		ok, used := countErrs(t, errs, storage.ErrAlreadyUsed)
		if ok != 1 || used != n-1 {
			t.Fatalf("concurrent activation: %d succeeded, %d ErrAlreadyUsed; want 1 and %d", ok, used, n-1)
		}
		assertOneActive(t, ctx, s, storage.AuthorityIntermediate, "i2")
		i1 := authorityByID(t, ctx, s, "i1")
		i2 := authorityByID(t, ctx, s, "i2")
		if i1.State != storage.AuthorityRetired || !i1.RetiredAt.Equal(i2.ActivatedAt) {
			t.Fatalf("previous authority not retired at the activation time: %+v / %+v", i1, i2)
		}
	})
	sub(t, newStore, "MT/ca/concurrent-activation-of-rivals", func(t *testing.T, ctx context.Context, s storage.Store) {
		// Two prepared successors activated at once: one active at the end.
		must(t, s.CreateAuthority(ctx, fullAuthority("r1", storage.AuthorityRoot, 1, storage.AuthorityActive)))
		const n = 8
		for i := range n {
			must(t, s.CreateAuthority(ctx, fullAuthority(fmt.Sprintf("r-next-%d", i), storage.AuthorityRoot, int64(i+2), storage.AuthorityPrepared)))
		}
		errs := race(n, func(i int) error {
			return s.ActivateAuthority(ctx, fmt.Sprintf("r-next-%d", i), t0.Add(time.Hour))
		})
		for _, err := range errs {
			must(t, err) // each activates its own prepared authority
		}
		assertOneActive(t, ctx, s, storage.AuthorityRoot, "")
	})
	sub(t, newStore, "Delete", func(t *testing.T, ctx context.Context, s storage.Store) {
		for _, a := range []storage.CAAuthority{
			fullAuthority("r1", storage.AuthorityRoot, 1, storage.AuthorityRetired),
			fullAuthority("r2", storage.AuthorityRoot, 2, storage.AuthorityActive),
			fullAuthority("r3", storage.AuthorityRoot, 3, storage.AuthorityPrepared),
		} {
			must(t, s.CreateAuthority(ctx, a))
		}
		wantErr(t, s.DeleteAuthority(ctx, "r2"), storage.ErrInvalid)
		wantErr(t, s.DeleteAuthority(ctx, "r3"), storage.ErrInvalid)
		wantErr(t, s.DeleteAuthority(ctx, "nope"), storage.ErrNotFound)
		must(t, s.DeleteAuthority(ctx, "r1"))
		wantErr(t, s.DeleteAuthority(ctx, "r1"), storage.ErrNotFound)
		got, err := s.ListAuthorities(ctx)
		must(t, err)
		if len(got) != 2 || got[0].ID != "r2" || got[1].ID != "r3" {
			t.Fatalf("after delete: %+v", got)
		}
		// The deleted authority's (kind, generation) is free again.
		must(t, s.CreateAuthority(ctx, fullAuthority("r1-again", storage.AuthorityRoot, 1, storage.AuthorityRetired)))
	})
}

// assertOneActive fails unless exactly one authority of kind is active (and,
// when want is not empty, it is want).
func assertOneActive(t *testing.T, ctx context.Context, s storage.Store, kind, want string) {
	t.Helper()
	all, err := s.ListAuthorities(ctx)
	must(t, err)
	var active []string
	for _, a := range all {
		if a.Kind == kind && a.State == storage.AuthorityActive {
			active = append(active, a.ID)
		}
	}
	if len(active) != 1 || (want != "" && active[0] != want) {
		t.Fatalf("active %s authorities = %v, want exactly one %s", kind, active, want)
	}
}

func newJoinToken(hash string) storage.JoinToken {
	return storage.JoinToken{
		Hash:      hash,
		SPIFFEID:  "spiffe://gatehouse.test/orders",
		CreatedAt: t0,
		ExpiresAt: t0.Add(10 * time.Minute),
	}
}

func testJoinTokens(t *testing.T, newStore func(*testing.T) storage.Store) {
	sub(t, newStore, "ConsumeOnce", func(t *testing.T, ctx context.Context, s storage.Store) {
		jt := newJoinToken("h1")
		must(t, s.CreateJoinToken(ctx, jt))
		now := t0.Add(time.Minute)
		got, err := s.ConsumeJoinToken(ctx, "h1", now)
		must(t, err)
		jt.UsedAt = now
		equal(t, got, jt)
		got, err = s.ConsumeJoinToken(ctx, "h1", now.Add(time.Second))
		wantErr(t, err, storage.ErrAlreadyUsed)
		equal(t, got, jt) // filled in, UsedAt of the first use
	})
	sub(t, newStore, "Expired", func(t *testing.T, ctx context.Context, s storage.Store) {
		jt := newJoinToken("h1")
		must(t, s.CreateJoinToken(ctx, jt))
		_, err := s.ConsumeJoinToken(ctx, "h1", jt.ExpiresAt) // now ≥ ExpiresAt
		wantErr(t, err, storage.ErrExpired)
		_, err = s.ConsumeJoinToken(ctx, "h1", jt.ExpiresAt.Add(time.Hour))
		wantErr(t, err, storage.ErrExpired) // left unused, so still "expired"
		// Still unused: one microsecond before expiry it is consumed.
		got, err := s.ConsumeJoinToken(ctx, "h1", jt.ExpiresAt.Add(-time.Microsecond))
		must(t, err)
		if !got.UsedAt.Equal(jt.ExpiresAt.Add(-time.Microsecond)) {
			t.Fatalf("UsedAt = %v", got.UsedAt)
		}
	})
	sub(t, newStore, "Errors", func(t *testing.T, ctx context.Context, s storage.Store) {
		_, err := s.ConsumeJoinToken(ctx, "nope", t0)
		wantErr(t, err, storage.ErrNotFound)
		_, err = s.ConsumeJoinToken(ctx, "", t0)
		wantErr(t, err, storage.ErrNotFound)
		must(t, s.CreateJoinToken(ctx, newJoinToken("h1")))
		dup := newJoinToken("h1")
		dup.SPIFFEID = "spiffe://gatehouse.test/other"
		wantErr(t, s.CreateJoinToken(ctx, dup), storage.ErrAlreadyExists)
		for _, tc := range []struct {
			name   string
			change func(*storage.JoinToken)
		}{
			{"empty-hash", func(j *storage.JoinToken) { j.Hash = "" }},
			{"empty-spiffe-id", func(j *storage.JoinToken) { j.SPIFFEID = "" }},
			{"expires-at-creation", func(j *storage.JoinToken) { j.ExpiresAt = j.CreatedAt }},
			{"expires-before-creation", func(j *storage.JoinToken) { j.ExpiresAt = j.CreatedAt.Add(-time.Second) }},
			{"already-used", func(j *storage.JoinToken) { j.UsedAt = t0 }},
		} {
			t.Run(tc.name, func(t *testing.T) {
				j := newJoinToken("h-" + tc.name)
				tc.change(&j)
				wantErr(t, s.CreateJoinToken(ctx, j), storage.ErrInvalid)
				if j.Hash != "" {
					_, err := s.ConsumeJoinToken(ctx, j.Hash, t0.Add(time.Second))
					wantErr(t, err, storage.ErrNotFound)
				}
			})
		}
	})
	sub(t, newStore, "MT-04/concurrent-double-use", func(t *testing.T, ctx context.Context, s storage.Store) {
		must(t, s.CreateJoinToken(ctx, newJoinToken("h1")))
		const n = 16
		got := make([]storage.JoinToken, n)
		errs := race(n, func(i int) error {
			var err error
			got[i], err = s.ConsumeJoinToken(ctx, "h1", t0.Add(time.Duration(i+1)*time.Second))
			return err
		})
		ok, used := countErrs(t, errs, storage.ErrAlreadyUsed)
		if ok != 1 || used != n-1 {
			t.Fatalf("concurrent join token use: %d succeeded, %d ErrAlreadyUsed; want 1 and %d", ok, used, n-1)
		}
		for i, err := range errs {
			if err == nil && !got[i].UsedAt.Equal(t0.Add(time.Duration(i+1)*time.Second)) {
				t.Fatalf("winner's token UsedAt = %v", got[i].UsedAt)
			}
			if got[i].SPIFFEID != "spiffe://gatehouse.test/orders" || got[i].UsedAt.IsZero() {
				t.Fatalf("caller %d got %+v", i, got[i])
			}
		}
	})
	sub(t, newStore, "GC", func(t *testing.T, ctx context.Context, s storage.Store) {
		now := t0.Add(time.Hour)
		for h, exp := range map[string]time.Time{"dead": now.Add(-time.Second), "at-now": now, "live": now.Add(time.Hour), "used": now.Add(time.Hour)} {
			j := newJoinToken(h)
			j.ExpiresAt = exp
			must(t, s.CreateJoinToken(ctx, j))
		}
		_, err := s.ConsumeJoinToken(ctx, "used", t0.Add(time.Minute))
		must(t, err)
		n, err := s.GC(ctx, now)
		must(t, err)
		if n != 3 {
			t.Fatalf("GC removed %d rows, want 3", n)
		}
		for _, h := range []string{"dead", "at-now", "used"} {
			_, err = s.ConsumeJoinToken(ctx, h, t0)
			wantErr(t, err, storage.ErrNotFound)
		}
		_, err = s.ConsumeJoinToken(ctx, "live", now)
		must(t, err)
	})
}

func testClientSPIFFEID(t *testing.T, newStore func(*testing.T) storage.Store) {
	sub(t, newStore, "RoundTrip", func(t *testing.T, ctx context.Context, s storage.Store) {
		c := fullClient("c1")
		c.SPIFFEID = "spiffe://gatehouse.test/billing"
		must(t, s.CreateClient(ctx, c))
		plain := fullClient("c2") // no SPIFFE ID
		must(t, s.CreateClient(ctx, plain))
		got, err := s.GetClient(ctx, "c1")
		must(t, err)
		equal(t, got, c)
		all, err := s.ListClients(ctx)
		must(t, err)
		equal(t, all, []storage.Client{c, plain})

		c.SPIFFEID = "spiffe://gatehouse.test/billing/v2"
		must(t, s.UpdateClient(ctx, "c1", func(storage.Client) (storage.Client, error) { return c, nil }))
		got, err = s.GetClient(ctx, "c1")
		must(t, err)
		equal(t, got, c)
		c.SPIFFEID = ""
		must(t, s.UpdateClient(ctx, "c1", func(storage.Client) (storage.Client, error) { return c, nil }))
		got, err = s.GetClient(ctx, "c1")
		must(t, err)
		equal(t, got, c)
	})
	// One client per SPIFFE ID; any number of clients without one.
	sub(t, newStore, "Unique", func(t *testing.T, ctx context.Context, s storage.Store) {
		const id = "spiffe://gatehouse.test/billing"
		a, b := fullClient("a"), fullClient("b")
		a.SPIFFEID = id
		must(t, s.CreateClient(ctx, a))
		must(t, s.CreateClient(ctx, b)) // empty spiffe_id: never a conflict
		must(t, s.CreateClient(ctx, fullClient("c")))
		dup := fullClient("d")
		dup.SPIFFEID = id
		wantErr(t, s.CreateClient(ctx, dup), storage.ErrAlreadyExists)
		err := s.UpdateClient(ctx, "b", func(c storage.Client) (storage.Client, error) { c.SPIFFEID = id; return c, nil })
		wantErr(t, err, storage.ErrAlreadyExists)
		got, err := s.GetClient(ctx, "b")
		must(t, err)
		equal(t, got.SPIFFEID, "")
		// Freed by a change or a deletion, the ID can be registered again.
		must(t, s.UpdateClient(ctx, "a", func(c storage.Client) (storage.Client, error) { c.SPIFFEID = ""; return c, nil }))
		must(t, s.UpdateClient(ctx, "b", func(c storage.Client) (storage.Client, error) { c.SPIFFEID = id; return c, nil }))
		must(t, s.DeleteClient(ctx, "b", t0))
		must(t, s.CreateClient(ctx, dup))
	})
	testSPIFFERevocations(t, newStore)
}

// revocations returns s as a SPIFFERevocationStore or fails the test.
func revocations(t *testing.T, s storage.Store) storage.SPIFFERevocationStore {
	t.Helper()
	rs, ok := s.(storage.SPIFFERevocationStore)
	if !ok {
		t.Fatalf("%T does not implement storage.SPIFFERevocationStore", s)
	}
	return rs
}

func testSPIFFERevocations(t *testing.T, newStore func(*testing.T) storage.Store) {
	sub(t, newStore, "SPIFFERevocations", func(t *testing.T, ctx context.Context, s storage.Store) {
		rs := revocations(t, s)
		got, err := rs.ListSPIFFERevocations(ctx)
		must(t, err)
		equal(t, len(got), 0)
		const a, b = "spiffe://gatehouse.test/a", "spiffe://gatehouse.test/b"
		must(t, rs.RevokeSPIFFEID(ctx, a, t0.Add(time.Minute)))
		must(t, rs.RevokeSPIFFEID(ctx, b, t0))
		must(t, rs.RevokeSPIFFEID(ctx, a, t0)) // earlier: the latest time stays
		must(t, rs.RevokeSPIFFEID(ctx, b, t0.Add(time.Hour)))
		got, err = rs.ListSPIFFERevocations(ctx)
		must(t, err)
		equal(t, got, map[string]time.Time{a: t0.Add(time.Minute), b: t0.Add(time.Hour)})
		wantErr(t, rs.RevokeSPIFFEID(ctx, "", t0), storage.ErrInvalid)
		wantErr(t, rs.RevokeSPIFFEID(ctx, a, time.Time{}), storage.ErrInvalid)
	})
	sub(t, newStore, "SPIFFERevocationsGC", func(t *testing.T, ctx context.Context, s storage.Store) {
		rs := revocations(t, s)
		now := t0.Add(48 * time.Hour)
		const old, edge, live = "spiffe://gatehouse.test/old", "spiffe://gatehouse.test/edge", "spiffe://gatehouse.test/live"
		must(t, rs.RevokeSPIFFEID(ctx, old, now.Add(-storage.SPIFFERevocationRetention-time.Second)))
		must(t, rs.RevokeSPIFFEID(ctx, edge, now.Add(-storage.SPIFFERevocationRetention)))
		must(t, rs.RevokeSPIFFEID(ctx, live, now.Add(-24*time.Hour)))
		n, err := s.GC(ctx, now)
		must(t, err)
		equal(t, n, int64(2))
		got, err := rs.ListSPIFFERevocations(ctx)
		must(t, err)
		equal(t, got, map[string]time.Time{live: now.Add(-24 * time.Hour)})
	})
}
