package gateway

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gatehouse/gatehouse/internal/config"
)

// BenchmarkProxy measures a JWT-authenticated proxied request end to end
// over loopback (client, gateway and a trivial upstream in one process).
func BenchmarkProxy(b *testing.B) {
	for _, mode := range []string{"jwt", "anonymous"} {
		b.Run(mode, func(b *testing.B) {
			up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				_, _ = w.Write([]byte(`{"ok":true}`))
			}))
			defer up.Close()
			is := newTestIssuer(b)
			route := config.GatewayRoute{Name: "api", PathPrefix: "/api", Upstreams: []string{up.URL}, Token: "strip",
				Auth: config.GatewayAuth{Mode: "anonymous"}}
			if mode == "jwt" {
				route.Auth = config.GatewayAuth{Mode: "jwt", Audience: testAudience, ScopesAll: []string{"orders:read"}}
			}
			cfg := gatewayConfig(is, route)
			tg := startGateway(b, is, cfg, nil)
			tok := is.mint(b, map[string]any{"scope": "orders:read"})
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
			b.ResetTimer()
			b.SetParallelism(16)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req, _ := http.NewRequest("GET", tg.Proxy.URL+"/api/hello", nil)
					req.Header.Set("Authorization", "Bearer "+tok)
					resp, err := client.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						b.Errorf("status %d", resp.StatusCode)
						return
					}
				}
			})
		})
	}
}
