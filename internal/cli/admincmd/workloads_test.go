package admincmd

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/admin"
	"github.com/gatehouse/gatehouse/internal/admin/admintest"
	"github.com/gatehouse/gatehouse/internal/adminclient"
)

func TestWorkloadsRevoke(t *testing.T) {
	srv := admintest.NewServer(t)
	const id = "spiffe://gatehouse.local/orders"
	r := mustRun(t, srv, "", "workloads", "revoke", "--spiffe-id", id)
	if !strings.Contains(r.stdout, id) {
		t.Errorf("output lacks the ID:\n%s", r.stdout)
	}
	if _, ok := srv.Store.Revoked()[id]; !ok {
		t.Fatalf("not revoked: %v", srv.Store.Revoked())
	}
	r = mustRun(t, srv, "", "workloads", "revoke", "--spiffe-id", id, "--json")
	var got admin.SPIFFERevocationResponse
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || got.SPIFFEID != id || !got.RevokedAt.Equal(admintest.Now) {
		t.Fatalf("--json = %s (%v)", r.stdout, err)
	}
	if r := run(t, srv, "", "workloads", "revoke"); r.err == nil {
		t.Error("revoke without --spiffe-id succeeded")
	}
	if r := run(t, srv, "", "workloads", "revoke", "--spiffe-id", "spiffe://gatehouse.local"); !adminclient.IsStatus(r.err, 400) {
		t.Errorf("no path: %v", r.err)
	}
}
