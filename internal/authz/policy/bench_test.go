package policy

import (
	"math/rand/v2"
	"testing"

	"github.com/cedar-policy/cedar-go/types"
)

// benchSpec is the performance goal's shape: ~100 actions × 10 resource
// types. Only the policy count differs between the two benchmarks.
func benchSpec(n int) genSpec {
	return genSpec{nActions: 100, nTypes: 10, nPolicies: n, open: 2, seed: 11}
}

// benchRequests are requests spread over the buckets, the same for both sizes.
func benchRequests(g genSpec) []Request {
	r := rand.New(rand.NewPCG(99, 1))
	reqs := make([]Request, 256)
	for i := range reqs {
		reqs[i] = g.randomRequest(r)
	}
	return reqs
}

func benchAuthorize(b *testing.B, n int) {
	g := benchSpec(n)
	s := mustLoad(b, g.files())
	reqs := benchRequests(g)
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		if _, err := s.Authorize(reqs[i&255]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkAuthorize10(b *testing.B)   { benchAuthorize(b, 10) }
func BenchmarkAuthorize1000(b *testing.B) { benchAuthorize(b, 1000) }

// TestAuthorizeScaling runs both benchmarks and reports the ratio of their
// costs. It asserts no timing (the machine may be loaded); the bench script
// reads the log line.
func TestAuthorizeScaling(t *testing.T) {
	if testing.Short() {
		t.Log("short mode: one iteration each")
	}
	r10 := testing.Benchmark(BenchmarkAuthorize10)
	r1000 := testing.Benchmark(BenchmarkAuthorize1000)
	if r10.N == 0 || r1000.N == 0 {
		t.Fatal("a benchmark did not run")
	}
	avg := func(n int) float64 {
		g := benchSpec(n)
		s := mustLoad(t, g.files())
		total := 0
		for _, req := range benchRequests(g) {
			total += len(s.actions[req.Action].buckets[types.EntityType(req.Resource.Type)].pols)
		}
		return float64(total) / 256
	}
	t.Logf("policies evaluated per request: %.2f with 10, %.2f with 1000", avg(10), avg(1000))
	ns10, ns1000 := float64(r10.NsPerOp()), float64(r1000.NsPerOp())
	t.Logf("Authorize: 10 policies %.0f ns/op (%d allocs), 1000 policies %.0f ns/op (%d allocs), ratio %.2f",
		ns10, r10.AllocsPerOp(), ns1000, r1000.AllocsPerOp(), ns1000/max(ns10, 1))
}
