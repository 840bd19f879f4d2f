package ca

import (
	"context"
	"crypto/elliptic"
	"crypto/x509"
	"testing"

	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/gatehouse/gatehouse/internal/storage"
)

// TestMT01InjectedRootIsNotTrusted: someone who can write the authorities
// table but does not hold the KEK inserts a root of his own (any state,
// bogus or foreign sealed key). It must not reach the trust bundle, or he
// could sign SVIDs for every ID of the trust domain; the genuine roots stay.
func TestMT01InjectedRootIsNotTrusted(t *testing.T) {
	clk := newClock()
	st := newMemStore()
	c := newTestCA(t, st, testConfig(), clk)
	genuine, _ := c.Bundle()
	s := snap(c)
	svid, err := c.Issue(context.Background(), mustID(t, "spiffe://example.org/orders"), ecKey(t, elliptic.P256()).Public(), 0)
	if err != nil {
		t.Fatal(err)
	}

	// The attacker's CA: a root of his own, its key sealed under another KEK.
	other, err := New(newMemStore(), Config{TrustDomain: testTD, KEK: testKEK(9)}, clk.Now, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	for i, tc := range []struct {
		name   string
		state  string
		sealed []byte
	}{
		{"MT-01/injected-prepared-root-foreign-kek", storage.AuthorityPrepared, nil},
		{"MT-01/injected-retired-root-garbage-key", storage.AuthorityRetired, []byte("not a sealed key at all, just bytes")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			evil, err := other.newAuthority(storage.AuthorityRoot, int64(50+i), nil, clk.Now())
			if err != nil {
				t.Fatal(err)
			}
			evilKey, leafKey := ecKey(t, elliptic.P256()), ecKey(t, elliptic.P256())
			evilInter := resign(t, s.signing.cert, evil.cert, evilKey, evil.signer)
			evilLeaf := resign(t, svid.Certificates[0], evilInter, leafKey, evilKey)
			rec := evil.rec
			rec.State = tc.state
			if tc.sealed != nil {
				rec.Sealed = tc.sealed
			}
			if err := st.CreateAuthority(context.Background(), rec); err != nil {
				t.Fatal(err)
			}
			refresh(t, c)
			b, _ := c.Bundle()
			for _, r := range b.X509Authorities() {
				if r.Equal(evil.cert) {
					t.Fatal("the injected root is in the trust bundle")
				}
			}
			if len(b.X509Authorities()) != len(genuine.X509Authorities()) {
				t.Fatalf("bundle changed: %d roots, want %d", len(b.X509Authorities()), len(genuine.X509Authorities()))
			}
			if _, _, err := x509svid.Verify([]*x509.Certificate{evilLeaf, evilInter}, b, x509svid.WithTime(clk.Now())); err == nil {
				t.Fatal("an SVID signed under the injected root verifies")
			}
			if !c.Ready() {
				t.Fatal("the CA stopped issuing")
			}
		})
	}
}
