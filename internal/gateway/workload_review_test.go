package gateway

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gatehouse/gatehouse/internal/config"
)

// TestMT01GatewaySPIFFERouteNeverPlainHTTP: a route with
// upstream_tls.spiffe_id and an http:// upstream would send the request,
// user token included, in clear to whoever answers, with no identity
// check. The configuration file refuses it; the gateway must too (Reload
// and New are public and take routes as they come).
func TestMT01GatewaySPIFFERouteNeverPlainHTTP(t *testing.T) {
	reached := false
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reached = true }))
	t.Cleanup(plain.Close)
	ca := newTestCA(t)
	is := newTestIssuer(t)
	good, _ := spiffeUpstream(t, svidFor(t, ca, ordersID), gatewayID)
	g, err := New(gatewayConfig(is, spiffeRoute("orders", good, ordersID)), Deps{Issuer: is.URL, Workload: svidFor(t, ca, gatewayID)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	err = g.Reload([]config.GatewayRoute{spiffeRoute("orders", plain.URL, ordersID)})
	if err == nil {
		srv := httptest.NewServer(g)
		t.Cleanup(srv.Close)
		if resp, err := http.Get(srv.URL + "/orders/x"); err == nil {
			resp.Body.Close()
		}
		t.Fatalf("MT-01/spiffe-id-over-http: route compiled (upstream reached in clear: %v)", reached)
	}
}
