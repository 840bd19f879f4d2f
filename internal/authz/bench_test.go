package authz

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"
)

// BenchmarkDecide measures an in-process decision with the demo policies
// and relation facts from a warm checker cache.
func BenchmarkDecide(b *testing.B) {
	e := newEnv(b, func(o *Options) { o.Log = nil })
	in := Input{Principal: entity("user", "usr_alice"), Action: "read", Resource: orderEntity("o-2001", "open")}
	if res := e.svc.Decide(context.Background(), in); !res.Allow {
		b.Fatalf("%+v", res)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if !e.svc.Decide(context.Background(), in).Allow {
				b.Fatal("deny")
			}
		}
	})
}

// BenchmarkHTTPAuthorize measures POST /authorize through an httptest
// server (caller token verification cached by the SDK verifier).
func BenchmarkHTTPAuthorize(b *testing.B) {
	e := newEnv(b, func(o *Options) { o.Log = nil })
	body, _ := json.Marshal(map[string]any{"principal": principal("usr_alice", "acme"), "action": "read",
		"resource": order("o-2001", "acme", "open")})
	tok := "Bearer " + callerToken(b, ScopeCheck)
	client := e.srv.Client()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/authorize", bytes.NewReader(body))
			req.Header.Set("Authorization", tok)
			req.Header.Set("Content-Type", "application/json")
			resp, err := client.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Fatal(resp.StatusCode)
			}
		}
	})
}
