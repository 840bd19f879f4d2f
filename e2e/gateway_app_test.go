package e2e

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/testutil/redistest"
)

// TestAllInOneGatewaySharedLimitKeys runs the gateway as app wiring builds
// it beside the IdP, with a shared limit in a Redis of its own: the limit
// holds, and the keys in Redis are HMACs under the pepper (no raw limit key
// such as the client address or route name can be read there).
func TestAllInOneGatewaySharedLimitKeys(t *testing.T) {
	rs := redistest.Start(t)
	up := okUpstream(t)
	e := newEnv(t, "sqlite", "file:"+t.TempDir()+"/gh.db", func(c *config.Config) {
		c.Gateway.Listen = "127.0.0.1:0"
		c.Gateway.Redis.Addr = rs.Addr()
		c.Gateway.Redis.Timeout = config.Duration(time.Second)
		c.Gateway.Routes = []config.GatewayRoute{{Name: "limited", PathPrefix: "/limited", Upstreams: []string{up},
			Auth: config.GatewayAuth{Mode: "anonymous"}, Token: "strip",
			RateLimits: []config.GatewayRateRule{{By: "ip", Rate: 2, Period: config.Duration(time.Hour), Shared: true, OnRedisDown: "closed"}}}}
	})
	if e.App.Gateway == nil {
		t.Fatal("the gateway was not built")
	}
	gw := httptest.NewServer(e.App.Gateway)
	t.Cleanup(gw.Close)
	var codes []int
	for range 3 {
		resp, err := http.Get(gw.URL + "/limited/x")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		codes = append(codes, resp.StatusCode)
	}
	if codes[0] != 200 || codes[1] != 200 || codes[2] != 429 {
		t.Fatalf("statuses %v, want [200 200 429]", codes)
	}
	rc := redis.NewClient(&redis.Options{Addr: rs.Addr()})
	defer rc.Close()
	keys, err := rc.Keys(context.Background(), "*").Result()
	if err != nil || len(keys) != 1 {
		t.Fatalf("keys %v (%v), want exactly one", keys, err)
	}
	if !strings.HasPrefix(keys[0], "gatehouse:rlk:") || strings.Contains(keys[0], "127.0.0.1") || strings.Contains(keys[0], "limited") {
		t.Fatalf("key %q is not a keyed hash under gatehouse:rlk:", keys[0])
	}
}
