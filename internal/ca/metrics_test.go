package ca

import (
	"context"
	"crypto/elliptic"
	"testing"
)

func TestCollectors(t *testing.T) {
	c := newTestCA(t, nil, testConfig(), nil)
	reg := newRegistry(t, c)
	ctx := WithMethod(context.Background(), MethodJoinToken)
	if _, err := c.Issue(ctx, mustID(t, "spiffe://example.org/a"), ecKey(t, elliptic.P256()).Public(), 0); err != nil {
		t.Fatal(err)
	}
	_, _ = c.IssueCSR(ctx, mustID(t, "spiffe://example.org/a"), []byte("junk"), 0)
	_, _ = c.Issue(ctx, mustID(t, "spiffe://other.org/a"), ecKey(t, elliptic.P256()).Public(), 0)
	got := gather(t, reg)
	want := map[string]float64{
		`gatehouse_ca_svids_issued_total{method="join_token"}`:                      1,
		`gatehouse_ca_svids_issued_total{method="renewal"}`:                         0,
		`gatehouse_ca_issue_failures_total{reason="bad_csr"}`:                       1,
		`gatehouse_ca_issue_failures_total{reason="bad_id"}`:                        1,
		`gatehouse_ca_bundle_sequence`:                                              1,
		`gatehouse_ca_authority_expiry_seconds{kind="intermediate",state="active"}`: DefaultIntermediateTTL.Seconds(),
		`gatehouse_ca_authority_expiry_seconds{kind="root",state="active"}`:         DefaultRootTTL.Seconds(),
	}
	for k, v := range want {
		g, ok := got[k]
		if !ok || g < v-1 || g > v+1 {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
		}
	}
}
