package caserver

import (
	"net/http"
	"testing"

	"github.com/gatehouse/gatehouse/internal/storage"
	"github.com/gatehouse/gatehouse/sdk/auth"
)

// TestMT04ClientTokenAudience: a client registered with several audiences
// (the CA's and an API's) that asks for a token without naming one gets
// all of them. The API receiving such a token must not be able to replay
// it to the CA and obtain the client's SVID for a key of its own: only a
// token for the CA alone is accepted (the verifier already requires the
// CA's audience among them).
func TestMT04ClientTokenAudience(t *testing.T) {
	h := newHarness(t)
	c := h.client(nil, nil)
	h.clients.clients["svc"] = storage.Client{ID: "svc", SPIFFEID: "spiffe://gatehouse.test/payments"}
	cc := func(aud ...string) *auth.Claims { return &auth.Claims{Subject: "svc", ClientID: "svc", Audience: aud} }
	h.tokens.claims["ca-only"] = cc("gatehouse-ca")
	h.tokens.claims["ca-and-api"] = cc("orders-api", "gatehouse-ca")
	h.tokens.claims["api-and-ca"] = cc("gatehouse-ca", "orders-api")
	for _, tc := range []struct {
		name, token string
		status      int
	}{
		{"MT-04/ca-audience-only", "ca-only", http.StatusOK},
		{"MT-04/replayed-multi-audience", "ca-and-api", http.StatusUnauthorized},
		{"MT-04/replayed-multi-audience-ca-first", "api-and-ca", http.StatusUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body, _ := svidBody(t)
			a := h.do(c, http.MethodPost, "/v1/svid", "Bearer "+tc.token, body)
			if a.status != tc.status {
				t.Fatalf("%d %s, want %d", a.status, a.raw, tc.status)
			}
			if tc.status != http.StatusOK && a.code() != "invalid_token" {
				t.Fatalf("code %q, want invalid_token", a.code())
			}
		})
	}
}
