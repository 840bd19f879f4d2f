package cli

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// checkDevTour follows the billing part of the "Alice and her orders" tour
// against a running gatehouse dev: the tour names the services and the
// billing secret, the billing token creates a payment, and is refused by
// orders (401, its audience is payments only).
func checkDevTour(t *testing.T, tour string, st devState, ordersURL, paymentsURL, billingTok string) {
	t.Helper()
	for _, want := range []string{ordersURL + "/orders", paymentsURL + "/payments", "demo-billing:" + st.DemoBillingSecret,
		"go run ./examples/login", "carol / " + demoCarolPassword, "-> 403", "-> 401"} {
		if !strings.Contains(tour, want) {
			t.Errorf("tour lacks %q", want)
		}
	}
	do := func(method, u, body string) (int, string) {
		req, _ := http.NewRequest(method, u, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+billingTok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("WWW-Authenticate") + string(b)
	}
	if code, body := do("POST", paymentsURL+"/payments", `{"invoice_id":"inv-1","amount_cents":1200}`); code != http.StatusCreated {
		t.Errorf("billing payment: %d %s", code, body)
	}
	if code, body := do("GET", ordersURL+"/orders", ""); code != http.StatusUnauthorized || !strings.Contains(body, "invalid_token") {
		t.Errorf("billing read orders: %d %s", code, body)
	}
}

// TestDevStateGainsBillingSecret: a data directory from before the billing
// demo gets a billing secret, and the file stays 0600 with the old secrets.
func TestDevStateGainsBillingSecret(t *testing.T) {
	p := filepath.Join(t.TempDir(), "dev-secrets.json")
	old := `{"key_encryption_key":"k","pepper":"p","admin_token":"gha_x","demo_web_secret":"w","demo_service_secret":"s","demo_api_secret":"a"}`
	if err := os.WriteFile(p, []byte(old), 0o644); err != nil {
		t.Fatal(err)
	}
	st, err := loadDevState(p)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(st.DemoBillingSecret, "ghs_") || st.KEK != "k" || st.DemoServiceSecret != "s" {
		t.Fatalf("%+v", st)
	}
	var again devState
	b, _ := os.ReadFile(p)
	if err := json.Unmarshal(b, &again); err != nil || again != st {
		t.Fatalf("not persisted: %v", err)
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", fi.Mode().Perm())
	}
	if st2, err := loadDevState(p); err != nil || st2 != st {
		t.Fatalf("second load changed the state: %v", err)
	}
}
