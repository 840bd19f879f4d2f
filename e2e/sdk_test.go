package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/storage"
	"github.com/gatehouse/gatehouse/sdk/auth"
)

// tokenKid is the kid in a JWT's header ("" when it has none).
func tokenKid(tok string) string {
	h, _, _ := strings.Cut(tok, ".")
	raw, err := base64.RawURLEncoding.DecodeString(h)
	if err != nil {
		return ""
	}
	var hdr struct {
		Kid string `json:"kid"`
	}
	_ = json.Unmarshal(raw, &hdr)
	return hdr.Kid
}

// switchable wraps a whole Gatehouse so that a test can take it down (every
// request answered 503, as a dead IdP behind a load balancer is).
type switchable struct{ down atomic.Bool }

func (s *switchable) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// serviceToken gets a client-credentials token for the "service" client.
func (e *Env) serviceToken(t *testing.T) string {
	t.Helper()
	status, tok, _ := e.postForm(t, "/oauth/token", url.Values{"grant_type": {"client_credentials"}, "scope": {"orders:read"},
		"resource": {apiAudience}}, "service", e.Secrets["service"])
	if status != 200 {
		t.Fatalf("token: %d %v", status, tok)
	}
	at := str(tok["access_token"])
	e.remember(at)
	return at
}

func sdkVerifier(t *testing.T, e *Env, tweak func(*auth.IssuerConfig), cacheSize int) *auth.Verifier {
	t.Helper()
	ic := auth.IssuerConfig{Issuer: e.Issuer, Audience: apiAudience, MinRefresh: 100 * time.Millisecond,
		MaxRefresh: time.Second, RefetchInterval: 100 * time.Millisecond}
	if tweak != nil {
		tweak(&ic)
	}
	v, err := auth.NewVerifier(auth.VerifierConfig{Issuers: []auth.IssuerConfig{ic}, CacheSize: cacheSize})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	return v
}

func waitReady(t *testing.T, v *auth.Verifier) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := v.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestSDKAgainstGatehouse: the SDK verifies real Gatehouse tokens for every
// signing algorithm, tells users from services, and refuses the IdP's other
// token kinds (JWT-D01).
func TestSDKAgainstGatehouse(t *testing.T) {
	for _, alg := range []string{"RS256", "ES256", "EdDSA"} {
		t.Run(alg, func(t *testing.T) {
			e := newEnv(t, "sqlite", "file:"+filepath.Join(t.TempDir(), "g.db"), func(c *config.Config) { c.IDP.Signing.Algorithm = alg })
			v := sdkVerifier(t, e, nil, 0)
			waitReady(t, v)
			ctx := context.Background()

			svc, err := v.Authenticate(ctx, e.serviceToken(t))
			if err != nil {
				t.Fatalf("service token: %v", err)
			}
			if svc.EndUser() || svc.ClientID != "service" || !svc.HasScope("orders:read") {
				t.Fatalf("service claims %+v", svc)
			}
			tok := e.codeFlow(t, "web")
			user, err := v.Authenticate(ctx, str(tok["access_token"]))
			if err != nil {
				t.Fatalf("user token: %v", err)
			}
			if !user.EndUser() || user.Subject != "usr_alice" || user.ClientID != "web" || user.Tenant != "acme" || !user.HasRole("reader") {
				t.Fatalf("user claims %+v", user)
			}
			for name, bad := range map[string]string{
				"JWT-D01/id-token":      str(tok["id_token"]),
				"JWT-D01/refresh-token": str(tok["refresh_token"]),
			} {
				if _, err := v.Authenticate(ctx, bad); !errors.Is(err, auth.ErrInvalidToken) {
					t.Fatalf("%s: %v", name, err)
				}
			}
			// Another API's verifier refuses the token (JWT-C03).
			other := sdkVerifier(t, e, func(ic *auth.IssuerConfig) { ic.Audience = "https://other.example.com" }, 0)
			waitReady(t, other)
			if _, err := other.Authenticate(ctx, str(tok["access_token"])); !errors.Is(err, auth.ErrInvalidToken) {
				t.Fatalf("other audience accepted: %v", err)
			}
		})
	}
}

// TestSDKIntrospectionSeesRevocation: in introspection mode a revoked token
// is refused as soon as the cache entry lapses.
func TestSDKIntrospectionSeesRevocation(t *testing.T) {
	e := newEnv(t, "sqlite", "file:"+filepath.Join(t.TempDir(), "g.db"), nil)
	in, err := auth.NewIntrospector(auth.IntrospectorConfig{Endpoint: e.Issuer + "/oauth/introspect", ClientID: "api",
		ClientSecret: e.Secrets["api"], Issuer: e.Issuer, Audience: apiAudience, CacheSize: -1})
	if err != nil {
		t.Fatal(err)
	}
	tok := e.serviceToken(t)
	ctx := context.Background()
	if c, err := in.Authenticate(ctx, tok); err != nil || c.ClientID != "service" {
		t.Fatalf("active token: %+v %v", c, err)
	}
	if status, body, _ := e.postForm(t, "/oauth/revoke", url.Values{"token": {tok}}, "service", e.Secrets["service"]); status != 200 {
		t.Fatalf("revoke: %d %v", status, body)
	}
	if _, err := in.Authenticate(ctx, tok); !errors.Is(err, auth.ErrInvalidToken) {
		t.Fatalf("revoked token accepted: %v", err)
	}
}

// TestSDKIdPDown covers RL-01 and RL-02 with a real Gatehouse: once keys
// are loaded, the IdP going down changes nothing for valid tokens; a service
// restarted with the disk cache validates at once; a cold start with neither
// IdP nor cache is not ready, refuses every token, and recovers when the IdP
// comes back.
func TestSDKIdPDown(t *testing.T) {
	sw := &switchable{}
	e := newEnvWith(t, "sqlite", "file:"+filepath.Join(t.TempDir(), "g.db"), nil, envOptions{outer: sw.wrap})
	cacheFile := filepath.Join(t.TempDir(), "jwks.json")
	ctx := context.Background()
	tok := e.serviceToken(t)

	v := sdkVerifier(t, e, func(ic *auth.IssuerConfig) { ic.CacheFile = cacheFile }, -1) // no token cache: keys only
	waitReady(t, v)
	if _, err := v.Authenticate(ctx, tok); err != nil {
		t.Fatal(err)
	}
	sw.down.Store(true)

	t.Run("RL-01/valid-tokens-keep-working", func(t *testing.T) {
		deadline := time.Now().Add(time.Second) // several failed background refreshes
		for time.Now().Before(deadline) {
			if _, err := v.Authenticate(ctx, tok); err != nil {
				t.Fatalf("refused while IdP down: %v", err)
			}
			time.Sleep(50 * time.Millisecond)
		}
		if err := v.Ready(); err != nil {
			t.Fatalf("not ready with cached keys: %v", err)
		}
	})
	t.Run("RL-01/restart-with-disk-cache", func(t *testing.T) {
		v2 := sdkVerifier(t, e, func(ic *auth.IssuerConfig) { ic.CacheFile = cacheFile }, -1)
		waitReady(t, v2)
		if _, err := v2.Authenticate(ctx, tok); err != nil {
			t.Fatalf("restarted service refused a valid token: %v", err)
		}
	})
	t.Run("RL-02/cold-start-not-ready", func(t *testing.T) {
		cold := sdkVerifier(t, e, nil, -1)
		short, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		defer cancel()
		if err := cold.WaitReady(short); !errors.Is(err, auth.ErrUnavailable) {
			t.Fatalf("cold start: %v", err)
		}
		if _, err := cold.Authenticate(ctx, tok); !errors.Is(err, auth.ErrUnavailable) {
			t.Fatalf("cold start accepted or misreported: %v", err)
		}
		sw.down.Store(false)
		waitReady(t, cold)
		if _, err := cold.Authenticate(ctx, tok); err != nil {
			t.Fatalf("after recovery: %v", err)
		}
	})
}

// TestSDKKeyRotationUnderLoad (RL-03): tokens are minted and verified
// continuously while Gatehouse rotates its signing key several times, both
// on schedule (published ahead) and in an emergency (signing at once);
// not one valid token is refused, and tokens signed by the last new key
// were among those verified. Keys are published 6 s ahead: the JWKS
// max-age (1 s), Gatehouse's refresh (1 s) and the verifier's refresh (1 s)
// leave seconds of slack for a loaded machine before a new key signs.
func TestSDKKeyRotationUnderLoad(t *testing.T) {
	for _, mode := range []string{"publish-ahead", "emergency"} {
		t.Run("RL-03/"+mode, func(t *testing.T) {
			e := newEnv(t, "sqlite", "file:"+filepath.Join(t.TempDir(), "g.db"), func(c *config.Config) {
				c.IDP.Signing.RotationPeriod = 0
				c.IDP.Signing.JWKSMaxAge = config.Duration(time.Second)
				c.IDP.Signing.PublishAhead = config.Duration(6 * time.Second)
				c.IDP.Signing.RefreshInterval = config.Duration(time.Second)
			})
			refetch := time.Hour // publish-ahead must work from the scheduled refresh alone
			if mode == "emergency" {
				refetch = 200 * time.Millisecond // an unknown kid triggers a refetch
			}
			v := sdkVerifier(t, e, func(ic *auth.IssuerConfig) {
				ic.MinRefresh, ic.MaxRefresh, ic.RefetchInterval = 500*time.Millisecond, time.Second, refetch
			}, -1)
			waitReady(t, v)

			ctx, stop := context.WithCancel(context.Background())
			var ok, failed atomic.Int64
			var firstErr atomic.Value
			var verifiedMu sync.Mutex
			verified := map[string]int64{} // kid → tokens verified
			verifiedBy := func(kid string) int64 {
				verifiedMu.Lock()
				defer verifiedMu.Unlock()
				return verified[kid]
			}
			var wg sync.WaitGroup
			for range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for ctx.Err() == nil {
						tok := e.serviceToken(t)
						if _, err := v.Authenticate(context.Background(), tok); err != nil {
							failed.Add(1)
							firstErr.CompareAndSwap(nil, err)
							continue
						}
						ok.Add(1)
						verifiedMu.Lock()
						verified[tokenKid(tok)]++
						verifiedMu.Unlock()
					}
				}()
			}
			kids := map[string]bool{}
			var lastKid string
			for range 3 {
				time.Sleep(1500 * time.Millisecond)
				var k storage.SigningKey
				var err error
				if mode == "emergency" {
					k, err = e.App.Keys.RotateNow(context.Background())
				} else {
					k, err = e.App.Keys.Rotate(context.Background())
				}
				if err != nil {
					t.Error(err)
				}
				lastKid = k.ID
			}
			// Let the last key start signing (6 s ahead when published
			// ahead): wait until tokens it signed are verified, then keep
			// the load on a little longer.
			deadline := time.Now().Add(30 * time.Second)
			for lastKid != "" && verifiedBy(lastKid) < 20 && failed.Load() == 0 && time.Now().Before(deadline) {
				time.Sleep(50 * time.Millisecond)
			}
			time.Sleep(500 * time.Millisecond)
			stop()
			wg.Wait()
			infos, err := e.App.Keys.Keys(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range infos {
				kids[k.ID] = true
			}
			if failed.Load() != 0 {
				t.Fatalf("%d of %d verifications failed during rotation; first: %v", failed.Load(), ok.Load()+failed.Load(), firstErr.Load())
			}
			if len(kids) < 4 || ok.Load() < 50 {
				t.Fatalf("rotation did not happen under load: %d keys, %d verifications", len(kids), ok.Load())
			}
			if n := verifiedBy(lastKid); n == 0 {
				t.Fatalf("no token signed by the last rotated key %q was verified (the new key never signed under load)", lastKid)
			}
			t.Logf("%d verifications across %d keys, 0 failures", ok.Load(), len(kids))
		})
	}
}
