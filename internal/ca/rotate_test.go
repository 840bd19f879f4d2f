package ca

import (
	"context"
	"crypto/elliptic"
	"crypto/x509"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/gatehouse/gatehouse/internal/storage"
	"github.com/gatehouse/gatehouse/internal/storage/sqlstore"
	"github.com/gatehouse/gatehouse/internal/testutil/pgtest"
)

func states(list []storage.CAAuthority) map[int64]string {
	out := map[int64]string{}
	for _, a := range list {
		out[a.Generation] = a.State
	}
	return out
}

func TestIntermediateRotationSchedule(t *testing.T) {
	st := newMemStore()
	clk := newClock()
	cfg := testConfig()
	cfg.IntermediateTTL = 6 * time.Hour
	cfg.Backdate = time.Nanosecond // lifetime = TTL exactly, up to a second
	c := newTestCA(t, st, cfg, clk)
	_, seq0 := c.Bundle()
	gen1 := snap(c).inter.cert
	id := mustID(t, "spiffe://example.org/a")
	pub := ecKey(t, elliptic.P256()).Public()

	steps := []struct {
		at   time.Duration // since start
		want map[int64]string
	}{
		{2*time.Hour + 59*time.Minute, map[int64]string{1: "active"}},
		{3*time.Hour + time.Minute, map[int64]string{1: "active", 2: "prepared"}},
		{4*time.Hour + 59*time.Minute, map[int64]string{1: "active", 2: "prepared"}},
		{5*time.Hour + time.Minute, map[int64]string{1: "retired", 2: "active"}},
		{5*time.Hour + 59*time.Minute, map[int64]string{1: "retired", 2: "active"}},
		{6*time.Hour + 30*time.Second, map[int64]string{2: "active"}}, // gen 1 expired and pruned
		{6*time.Hour + 2*time.Minute, map[int64]string{2: "active", 3: "prepared"}},
	}
	start := clk.Now()
	for _, step := range steps {
		clk.Advance(start.Add(step.at).Sub(clk.Now()))
		refresh(t, c)
		got := states(st.list(storage.AuthorityIntermediate))
		if len(got) != len(step.want) {
			t.Fatalf("at %v: intermediates %v, want %v", step.at, got, step.want)
		}
		for g, s := range step.want {
			if got[g] != s {
				t.Fatalf("at %v: intermediates %v, want %v", step.at, got, step.want)
			}
		}
		svid, err := c.Issue(context.Background(), id, pub, 0)
		if err != nil {
			t.Fatalf("at %v: %v", step.at, err)
		}
		wantIssuer := gen1
		if got[2] == "active" {
			wantIssuer = snap(c).inter.cert
		}
		if !svid.Certificates[1].Equal(wantIssuer) {
			t.Fatalf("at %v: issued by the wrong intermediate", step.at)
		}
		b, seq := c.Bundle()
		if seq != seq0 || len(b.X509Authorities()) != 1 {
			t.Fatalf("at %v: intermediate rotation changed the bundle (seq %d → %d)", step.at, seq0, seq)
		}
		if _, _, err := x509svid.Verify(svid.Certificates, b, x509svid.WithTime(clk.Now())); err != nil {
			t.Fatalf("at %v: %v", step.at, err)
		}
	}
}

// TestRootRotationBundle drives a whole root lifetime: the bundle goes
// old → old+new → new+newer (the new root's successor is prepared at its
// half-life measured from its creation, which with equal lifetimes is when
// the old root expires: both happen on the same tick, sequence 2 → 4), with
// an increasing sequence, and every SVID issued along the way verifies
// against the bundle of its time.
func TestRootRotationBundle(t *testing.T) {
	st := newMemStore()
	clk := newClock()
	cfg := testConfig()
	cfg.RootTTL = 60 * time.Hour
	cfg.IntermediateTTL = 6 * time.Hour
	c := newTestCA(t, st, cfg, clk)
	reg := newRegistry(t, c)
	id := mustID(t, "spiffe://example.org/a")
	pub := ecKey(t, elliptic.P256()).Public()
	root1 := snap(c).root.cert

	type phase struct {
		roots int
		seq   uint64
	}
	var phases []phase
	var last *SVID
	start := clk.Now()
	for clk.Now().Before(start.Add(70 * time.Hour)) {
		if d := clk.Now().Sub(start); d >= 59*time.Hour && d < 61*time.Hour {
			clk.Advance(10 * time.Second)
		} else {
			clk.Advance(time.Hour)
		}
		refresh(t, c)
		b, seq := c.Bundle()
		if len(phases) == 0 || phases[len(phases)-1].seq != seq {
			if len(phases) > 0 && seq <= phases[len(phases)-1].seq {
				t.Fatalf("sequence went from %d to %d", phases[len(phases)-1].seq, seq)
			}
			phases = append(phases, phase{len(b.X509Authorities()), seq})
		}
		if got := gather(t, reg)["gatehouse_ca_bundle_sequence"]; got != float64(seq) {
			t.Fatalf("bundle sequence metric %v, want %d", got, seq)
		}
		// The SVID of the previous hour still verifies.
		if last != nil && clk.Now().Before(last.NotAfter) {
			if _, _, err := x509svid.Verify(last.Certificates, b, x509svid.WithTime(clk.Now())); err != nil {
				t.Fatalf("previous SVID rejected after refresh: %v", err)
			}
		}
		svid, err := c.Issue(context.Background(), id, pub, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := x509svid.Verify(svid.Certificates, b, x509svid.WithTime(clk.Now())); err != nil {
			t.Fatal(err)
		}
		s := snap(c)
		if s.signing.cert.CheckSignatureFrom(s.root.cert) != nil {
			t.Fatal("active intermediate not signed by the active root")
		}
		last = svid
	}
	want := []phase{{1, 1}, {2, 2}, {2, 4}}
	if !slices.Equal(phases, want) {
		t.Fatalf("bundle phases (roots, sequence) %v, want %v", phases, want)
	}
	b, _ := c.Bundle()
	if b.HasX509Authority(root1) {
		t.Fatal("the expired root is still in the bundle")
	}
	if got := states(st.list(storage.AuthorityRoot)); got[1] != "" || got[2] != "active" || got[3] != "prepared" {
		t.Fatalf("roots %v: gen 1 not pruned or gen 2 not active", got)
	}
	// No prepared intermediate is left behind from the old root.
	for _, a := range st.list(storage.AuthorityIntermediate) {
		cert, _ := x509.ParseCertificate(a.CertDER)
		if a.State == storage.AuthorityPrepared && cert.CheckSignatureFrom(snap(c).root.cert) != nil {
			t.Fatal("stale prepared intermediate left")
		}
	}
}

func TestRotateNow(t *testing.T) {
	st := newMemStore()
	clk := newClock()
	c := newTestCA(t, st, testConfig(), clk)
	ctx := context.Background()
	if err := c.RotateNow(ctx, storage.AuthorityIntermediate); err != nil {
		t.Fatal(err)
	}
	if got := states(st.list(storage.AuthorityIntermediate)); got[1] != "retired" || got[2] != "active" {
		t.Fatalf("intermediates %v", got)
	}
	_, seq := c.Bundle()
	if err := c.RotateNow(ctx, storage.AuthorityRoot); err != nil {
		t.Fatal(err)
	}
	s := snap(c)
	if s.root.rec.Generation != 2 || s.signing.cert.CheckSignatureFrom(s.root.cert) != nil {
		t.Fatal("root rotation did not re-issue the intermediate under the new root")
	}
	b, seq2 := c.Bundle()
	if len(b.X509Authorities()) != 2 || seq2 <= seq {
		t.Fatalf("bundle after root rotation: %d roots, seq %d → %d", len(b.X509Authorities()), seq, seq2)
	}
	if err := c.RotateNow(ctx, "leaf"); err == nil {
		t.Fatal("RotateNow of an unknown kind succeeded")
	}
}

// TestReplicasAgree: CAs on one store start together, rotate once per due
// step (not once per replica) and publish the same bundle.
func TestReplicasAgree(t *testing.T) {
	t.Run("memory", func(t *testing.T) { testReplicas(t, newMemStore()) })
	t.Run("sqlite", func(t *testing.T) {
		s, err := sqlstore.Open(t.Context(), sqlstore.DriverSQLite, filepath.Join(t.TempDir(), "ca.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		testReplicas(t, s)
	})
	t.Run("postgres", func(t *testing.T) {
		s, err := sqlstore.Open(t.Context(), sqlstore.DriverPostgres, pgtest.SchemaDSN(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		testReplicas(t, s)
	})
}

func testReplicas(t *testing.T, st storage.CAStore) {
	replicaGens := runReplicas(t, st, 3)
	aloneGens := runReplicas(t, newMemStore(), 1)
	if replicaGens != aloneGens {
		t.Fatalf("max (root, intermediate) generations: %v with replicas, %v alone", replicaGens, aloneGens)
	}
}

// runReplicas runs n CAs on st through 70 h and returns the highest root
// and intermediate generations created.
func runReplicas(t *testing.T, st storage.CAStore, n int) [2]int64 {
	clk := newClock()
	cfg := testConfig()
	cfg.RootTTL = 60 * time.Hour
	cfg.IntermediateTTL = 6 * time.Hour
	cfg.RefreshInterval = time.Hour
	cas := make([]*CA, n)
	for i := range cas {
		c, err := New(st, cfg, clk.Now, quietLog())
		if err != nil {
			t.Fatal(err)
		}
		cas[i] = c
	}
	parallel := func(f func(c *CA) error) {
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i, c := range cas {
			wg.Go(func() { errs[i] = f(c) })
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	parallel(func(c *CA) error { return c.Start(t.Context()) })
	for _, c := range cas {
		t.Cleanup(c.Stop)
	}
	for range 70 {
		clk.Advance(time.Hour)
		parallel(func(c *CA) error { return c.refresh(t.Context()) })
		// The replicas that refreshed before the last writer reload now.
		parallel(func(c *CA) error { return c.refresh(t.Context()) })
		b0, seq0 := cas[0].Bundle()
		for _, c := range cas[1:] {
			b, seq := c.Bundle()
			if seq != seq0 || !b.Equal(b0) || !snap(c).signing.cert.Equal(snap(cas[0]).signing.cert) {
				t.Fatalf("replicas disagree at %v", clk.Now())
			}
		}
	}
	recs, err := st.ListAuthorities(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var maxRoot, maxInter int64
	for _, a := range recs {
		if a.Kind == storage.AuthorityRoot {
			maxRoot = max(maxRoot, a.Generation)
		} else {
			maxInter = max(maxInter, a.Generation)
		}
	}
	return [2]int64{maxRoot, maxInter}
}

func TestRefreshStorageDown(t *testing.T) {
	st := newMemStore()
	clk := newClock()
	c := newTestCA(t, st, testConfig(), clk)
	st.mu.Lock()
	st.failList = true
	st.mu.Unlock()
	clk.Advance(time.Hour)
	if err := c.refresh(context.Background()); err == nil {
		t.Fatal("refresh with storage down succeeded")
	}
	if !c.Ready() {
		t.Fatal("storage down made the CA unready: the loaded authorities must keep issuing")
	}
	if _, err := c.Issue(context.Background(), mustID(t, "spiffe://example.org/a"), ecKey(t, elliptic.P256()).Public(), 0); err != nil {
		t.Fatal(err)
	}
}

func TestSchedulerRunsAndStops(t *testing.T) {
	st := newMemStore()
	clk := newClock()
	cfg := testConfig()
	cfg.RefreshInterval = 5 * time.Millisecond
	cfg.IntermediateTTL = 6 * time.Hour
	c := newTestCA(t, st, cfg, clk)
	clk.Advance(5*time.Hour + time.Minute) // past 5/6: prepare then activate
	deadline := time.Now().Add(10 * time.Second)
	for snap(c).inter.rec.Generation < 2 {
		if time.Now().After(deadline) {
			t.Fatal("the scheduler did not rotate the intermediate")
		}
		time.Sleep(5 * time.Millisecond)
	}
	c.Stop()
	c.Stop() // idempotent
}
