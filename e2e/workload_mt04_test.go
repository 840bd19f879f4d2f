package e2e

import (
	"context"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/sdk/workload"
)

// TestWorkloadMT04JoinTokenRace (MT-04): one join token from the admin API,
// 16 concurrent attempts to spend it (8 NewCASource, 8 raw POST /v1/svid):
// exactly one gets an SVID, every other is refused with invalid_token, and
// the stored row holds only the token's keyed hash, marked used.
func TestWorkloadMT04JoinTokenRace(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			driver, dsn := b.dsn(t)
			w := newWorkloadEnv(t, driver, dsn, wlSetup{})
			tok := w.joinToken(t, paymentsID)
			fp := w.App.CAFingerprint()
			const n = 16
			csrs := make([]string, n)
			for i := range csrs {
				_, csrs[i] = newCSR(t)
			}
			raw := w.caHTTP(t)
			results := make([]string, n) // "ok" or why not
			start := make(chan struct{})
			var wg sync.WaitGroup
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					if i%2 == 0 {
						ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
						defer cancel()
						src, err := workload.NewCASource(ctx, workload.CAConfig{URL: w.caURL(), TrustDomain: wlTD,
							RootFingerprint: fp, JoinToken: tok, PolicyRefresh: -1, Timeout: 60 * time.Second})
						if err != nil {
							results[i] = "NewCASource: " + err.Error()
							return
						}
						defer src.Close()
						sv, err := src.GetX509SVID()
						if err != nil || sv.ID != paymentsID {
							results[i] = fmt.Sprintf("NewCASource succeeded with a bad SVID: %v", err)
							return
						}
						results[i] = "ok"
						return
					}
					st, ans, err := w.postSVID(raw, "JoinToken "+tok, csrs[i])
					switch {
					case err != nil:
						results[i] = "POST: " + err.Error()
					case st == http.StatusOK && ans.SPIFFEID == paymentsID.String() && len(ans.X509SVID) == 2:
						results[i] = "ok"
					default:
						results[i] = fmt.Sprintf("POST: %d %s", st, ans.Error)
					}
				}()
			}
			close(start)
			wg.Wait()
			wins := 0
			for i, r := range results {
				switch {
				case r == "ok":
					wins++
				case !strings.Contains(r, "invalid_token"):
					t.Errorf("attempt %d failed otherwise than invalid_token: %s", i, r)
				}
			}
			if wins != 1 {
				t.Errorf("%d of %d concurrent attempts got an SVID with one join token, want exactly 1: %q", wins, n, results)
			}
			checkJoinTokenRows(t, w, driver, dsn, tok)
		})
	}
}

// checkJoinTokenRows reads join_tokens directly: one row, whose hash is
// the keyed hash of tok, marked used, and no column holding tok.
func checkJoinTokenRows(t *testing.T, w *wlEnv, driver, dsn, tok string) {
	t.Helper()
	name := map[string]string{"sqlite": "sqlite", "postgres": "pgx"}[driver]
	db, err := sql.Open(name, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.QueryContext(t.Context(), "SELECT hash, spiffe_id, created_at, expires_at, used_at FROM join_tokens")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	want := hex.EncodeToString(w.App.Secrets.Sum(tok))
	count := 0
	for rows.Next() {
		count++
		var hash, id string
		var created, expires, used int64
		if err := rows.Scan(&hash, &id, &created, &expires, &used); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(hash, tok) || strings.Contains(id, tok) {
			t.Error("the join token itself is stored")
		}
		if hash != want {
			t.Errorf("the stored hash is not the keyed hash of the token")
		}
		if id != paymentsID.String() || used == 0 || expires <= created {
			t.Errorf("stored join token: spiffe_id %q, created %d, expires %d, used %d; want %s, used", id, created, expires, used, paymentsID)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if count != 1 {
		t.Errorf("%d join token rows, want 1", count)
	}
}

// TestWorkloadAdminTrustDomain: the admin API refuses join tokens and
// client SPIFFE IDs outside ca.trust_domain (docs/workload.md: "validated as
// a SPIFFE ID in the CA's trust domain"); the CA would refuse to issue them.
func TestWorkloadAdminTrustDomain(t *testing.T) {
	w := newWorkloadEnv(t, "sqlite", "file:"+t.TempDir()+"/g.db", wlSetup{})
	other := "spiffe://elsewhere.example/payments"
	if st := w.adminPost(t, "/admin/v1/join-tokens", map[string]string{"spiffe_id": other}, nil); st != http.StatusBadRequest {
		t.Errorf("join token for %s: status %d, want 400", other, st)
	}
	req := map[string]any{"name": "foreign", "grant_types": []string{"client_credentials"},
		"audiences": []string{wlAudience}, "spiffe_id": other}
	if st := w.adminPost(t, "/admin/v1/clients", req, nil); st != http.StatusBadRequest {
		t.Errorf("client with spiffe_id %s: status %d, want 400", other, st)
	}
}
