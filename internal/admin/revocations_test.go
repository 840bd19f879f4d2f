package admin_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/admin/admintest"
	"github.com/gatehouse/gatehouse/internal/storage"
)

const (
	billingID = "spiffe://gatehouse.local/billing"
	ordersID  = "spiffe://gatehouse.local/orders"
)

// TestSPIFFERevocationEndpoint: POST /admin/v1/spiffe-revocations revokes
// one valid SPIFFE ID (201) and refuses malformed ones (400).
func TestSPIFFERevocationEndpoint(t *testing.T) {
	e := newEnv(t)
	w := e.do(http.MethodPost, "/admin/v1/spiffe-revocations", `{"spiffe_id":"`+billingID+`"}`)
	if w.Code != http.StatusCreated || !strings.Contains(w.Body.String(), `"revoked_at"`) {
		t.Fatalf("revoke: %d %s", w.Code, w.Body)
	}
	if at, ok := e.store.Revoked()[billingID]; !ok || !at.Equal(admintest.Now.UTC()) {
		t.Fatalf("revocations: %v", e.store.Revoked())
	}
	for _, body := range []string{`{}`, `{"spiffe_id":"spiffe://gatehouse.local"}`, `{"spiffe_id":"https://x/y"}`,
		`{"spiffe_id":"spiffe://gatehouse.local/gatehouse/ca"}`, `{"spiffe_id":"` + billingID + `","x":1}`} {
		if w := e.do(http.MethodPost, "/admin/v1/spiffe-revocations", body); w.Code != http.StatusBadRequest {
			t.Errorf("%s: %d %s", body, w.Code, w.Body)
		}
	}
}

// TestClientChangesRevokeSPIFFEID: deleting a client with a spiffe_id, or
// changing or clearing it, revokes the old ID; when the revocation cannot be
// written the request fails and nothing changes.
func TestClientChangesRevokeSPIFFEID(t *testing.T) {
	e := newEnv(t)
	create := func(id, spiffe string) {
		t.Helper()
		w := e.do(http.MethodPost, "/admin/v1/clients", `{"id":"`+id+`","name":"x","grant_types":["client_credentials"],"spiffe_id":"`+spiffe+`"}`)
		if w.Code != http.StatusCreated {
			t.Fatalf("create %s: %d %s", id, w.Code, w.Body)
		}
	}
	create("a", billingID)
	if w := e.do(http.MethodPatch, "/admin/v1/clients/a", `{"name":"renamed"}`); w.Code != http.StatusOK || len(e.store.Revoked()) != 0 {
		t.Fatalf("a patch without spiffe_id must revoke nothing: %d %v", w.Code, e.store.Revoked())
	}
	if w := e.do(http.MethodPatch, "/admin/v1/clients/a", `{"spiffe_id":"`+billingID+`"}`); w.Code != http.StatusOK || len(e.store.Revoked()) != 0 {
		t.Fatalf("an unchanged spiffe_id must revoke nothing: %d %v", w.Code, e.store.Revoked())
	}
	e.store.FailRevocations(errors.New("storage down"))
	if w := e.do(http.MethodPatch, "/admin/v1/clients/a", `{"spiffe_id":"`+ordersID+`"}`); w.Code < 500 || e.client("a").SPIFFEID != billingID {
		t.Fatalf("failed revocation: %d %s, spiffe_id %q", w.Code, w.Body, e.client("a").SPIFFEID)
	}
	if w := e.do(http.MethodDelete, "/admin/v1/clients/a", ""); w.Code < 500 || e.client("a").ID == "" {
		t.Fatalf("failed revocation on delete: %d %s", w.Code, w.Body)
	}
	e.store.FailRevocations(nil)
	if w := e.do(http.MethodPatch, "/admin/v1/clients/a", `{"spiffe_id":"`+ordersID+`"}`); w.Code != http.StatusOK {
		t.Fatalf("change: %d %s", w.Code, w.Body)
	}
	if _, ok := e.store.Revoked()[billingID]; !ok {
		t.Fatalf("changed spiffe_id not revoked: %v", e.store.Revoked())
	}
	if w := e.do(http.MethodPatch, "/admin/v1/clients/a", `{"spiffe_id":""}`); w.Code != http.StatusOK {
		t.Fatalf("clear: %d %s", w.Code, w.Body)
	}
	if _, ok := e.store.Revoked()[ordersID]; !ok {
		t.Fatalf("cleared spiffe_id not revoked: %v", e.store.Revoked())
	}
	create("b", "spiffe://gatehouse.local/ledger")
	if w := e.do(http.MethodDelete, "/admin/v1/clients/b", ""); w.Code != http.StatusNoContent {
		t.Fatalf("delete: %d %s", w.Code, w.Body)
	}
	if _, ok := e.store.Revoked()["spiffe://gatehouse.local/ledger"]; !ok {
		t.Fatalf("deleted client's spiffe_id not revoked: %v", e.store.Revoked())
	}
}

// TestClientSPIFFEIDUnique: a SPIFFE ID belongs to one client: 409 with a
// message naming spiffe_id, on create and on update.
func TestClientSPIFFEIDUnique(t *testing.T) {
	e := newEnv(t)
	body := func(id string) string {
		return `{"id":"` + id + `","name":"x","grant_types":["client_credentials"],"spiffe_id":"` + billingID + `"}`
	}
	if w := e.do(http.MethodPost, "/admin/v1/clients", body("a")); w.Code != http.StatusCreated {
		t.Fatalf("create: %d %s", w.Code, w.Body)
	}
	w := e.do(http.MethodPost, "/admin/v1/clients", body("b"))
	if w.Code != http.StatusConflict || !strings.Contains(w.Body.String(), "spiffe_id") {
		t.Fatalf("duplicate spiffe_id on create: %d %s", w.Code, w.Body)
	}
	if w := e.do(http.MethodPost, "/admin/v1/clients", `{"id":"b","name":"x","grant_types":["client_credentials"]}`); w.Code != http.StatusCreated {
		t.Fatalf("create b: %d %s", w.Code, w.Body)
	}
	w = e.do(http.MethodPatch, "/admin/v1/clients/b", `{"spiffe_id":"`+billingID+`"}`)
	if w.Code != http.StatusConflict || !strings.Contains(w.Body.String(), "spiffe_id") {
		t.Fatalf("duplicate spiffe_id on update: %d %s", w.Code, w.Body)
	}
	if w := e.do(http.MethodPost, "/admin/v1/clients", `{"id":"a","name":"x","grant_types":["client_credentials"],"spiffe_id":"spiffe://gatehouse.local/new"}`); w.Code != http.StatusConflict || strings.Contains(w.Body.String(), "spiffe_id") {
		t.Fatalf("a taken client id is not a spiffe_id conflict: %d %s", w.Code, w.Body)
	}
	_ = storage.ErrAlreadyExists
}
