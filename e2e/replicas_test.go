package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/keys"
	"github.com/gatehouse/gatehouse/internal/testutil/pgtest"
)

// srvURL is the base URL of an Env's own listener (replicas share the issuer string).
func (e *Env) srvURL() string { return e.Server.URL }

func jwksKids(t *testing.T, base string) map[string]bool {
	t.Helper()
	resp, err := http.Get(base + "/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	var set struct{ Keys []struct{ Kid string } }
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	out := map[string]bool{}
	for _, k := range set.Keys {
		out[k.Kid] = true
	}
	return out
}

// TestReplicasShareKeysAndRevocations: two replicas on one PostgreSQL. They
// agree on the signing key, a concurrent manual rotation creates exactly one
// new key, the new key is published by both before either signs with it, and
// a revocation on one replica reaches the other within the stated bound.
func TestReplicasShareKeysAndRevocations(t *testing.T) {
	a := newEnv(t, "postgres", pgtest.SchemaDSN(t), func(c *config.Config) { c.IDP.Signing.RefreshInterval = config.Duration(time.Second) })
	b := a.replica(t)
	ctx := context.Background()

	before, err := a.App.Keys.Keys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Both replicas rotate at the same moment. Whether the two calls overlap
	// is up to the scheduler: overlapping, one wins and the other gets
	// keys.ErrConcurrentRotation (forced deterministically in
	// keys.TestConcurrentManualRotationCreatesOneKey); one after the other,
	// both succeed. Either way each success is exactly one key, with
	// consecutive generations, and nothing else fails.
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, env := range []*Env{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = env.App.Keys.Rotate(ctx)
		}()
	}
	wg.Wait()
	after, err := a.App.Keys.Keys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, keys.ErrConcurrentRotation):
			t.Fatalf("rotation failed: %v", err)
		}
	}
	if won == 0 || len(after) != len(before)+won {
		t.Fatalf("%d rotations succeeded and created %d keys (errs %v)", won, len(after)-len(before), errs)
	}
	for i := 1; i < len(after); i++ {
		if after[i].Generation != after[i-1].Generation+1 {
			t.Fatalf("generations %d then %d: not consecutive", after[i-1].Generation, after[i].Generation)
		}
	}
	newKid := after[len(after)-1].ID
	// The pending key is published by both replicas (after their refresh) before it signs anything.
	deadline := time.Now().Add(10 * time.Second)
	for !(jwksKids(t, a.srvURL())[newKid] && jwksKids(t, b.srvURL())[newKid]) {
		if time.Now().After(deadline) {
			t.Fatal("RL-03: the new key is not published by both replicas")
		}
		time.Sleep(200 * time.Millisecond)
	}
	st, tok, _ := a.postForm(t, "/oauth/token", url.Values{"grant_type": {"client_credentials"}}, "service", a.Secrets["service"])
	if st != 200 {
		t.Fatal(st)
	}
	a.remember(str(tok["access_token"]))
	if h, _ := decodeJWT(t, str(tok["access_token"])); h["kid"] == newKid {
		t.Fatal("RL-03: a replica signed with a key before its activation time")
	}
	// A token issued by one replica introspects at the other.
	if in := b.introspect(t, str(tok["access_token"])); in["active"] != true {
		t.Fatalf("replica b rejects a token of replica a: %v", in)
	}

	// Revocation on a reaches b within the poll bound (2 s).
	full := a.codeFlow(t, "web")
	if b.introspect(t, str(full["access_token"]))["active"] != true {
		t.Fatal("inactive at b before revocation")
	}
	if st, _, _ := a.postForm(t, "/oauth/revoke", url.Values{"token": {str(full["refresh_token"])}}, "web", a.Secrets["web"]); st != 200 {
		t.Fatal(st)
	}
	start := time.Now()
	for b.introspect(t, str(full["access_token"]))["active"] != false {
		if time.Since(start) > 5*time.Second {
			t.Fatal("revocation did not reach the other replica within the bound")
		}
		time.Sleep(100 * time.Millisecond)
	}
}
