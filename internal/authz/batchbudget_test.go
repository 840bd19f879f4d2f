package authz

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// TestBatchSharesOneBudget (AZ-04 for batches): 100 checks whose attribute
// fetches are all slow do not hold the request for 100 × decision_timeout;
// the batch has batchBudgetFactor decisions' time, and every check that
// runs out of it is a deny.
func TestBatchSharesOneBudget(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select { // slower than any fetch timeout
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { close(release); srv.Close() })
	const timeout = 50 * time.Millisecond
	e := newEnv(t, func(o *Options) {
		o.DecisionTimeout = timeout
		o.Fetch = map[string]FetchConfig{"order": {URL: srv.URL + "/orders/{id}", Timeout: time.Second}}
	})
	checks := make([]any, 100)
	for i := range checks { // distinct ids: no fetch is shared
		checks[i] = map[string]any{"action": "read", "resource": map[string]any{"type": "order", "id": fmt.Sprintf("o-x%d", i)}}
	}
	start := time.Now()
	st, out, _ := e.do(t, http.MethodPost, "/authorize/batch", callerToken(t, ScopeCheck),
		map[string]any{"principal": principal("usr_alice", "acme"), "checks": checks})
	elapsed := time.Since(start)
	if st != 200 {
		t.Fatalf("%d %v", st, out)
	}
	rs, _ := out["results"].([]any)
	if len(rs) != 100 {
		t.Fatalf("%d results", len(rs))
	}
	for i, r := range rs {
		if r.(map[string]any)["allow"] != false {
			t.Fatalf("results[%d] allowed: %v", i, r)
		}
	}
	// Without the shared budget this takes 100 × 50 ms = 5 s.
	if elapsed > 2*time.Second {
		t.Fatalf("the batch took %v: it has no overall budget", elapsed)
	}
}
