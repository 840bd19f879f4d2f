package authz

import (
	"context"
	"testing"
)

// BenchmarkDecideLogged is BenchmarkDecide with the decision log on (to
// io.Discard, every decision sampled), as the service runs by default.
func BenchmarkDecideLogged(b *testing.B) {
	e := newEnv(b)
	in := Input{Principal: entity("user", "usr_alice"), Action: "read", Resource: orderEntity("o-2001", "open")}
	if res := e.svc.Decide(context.Background(), in); !res.Allow {
		b.Fatalf("%+v", res)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if !e.svc.Decide(context.Background(), in).Allow {
			b.Fatal("deny")
		}
	}
}
