package edge

import (
	"net/http"
	"testing"
)

func BenchmarkNormalizePath(b *testing.B) {
	for _, bc := range []struct{ name, path string }{
		{"clean", "/api/v1/orders/12345/items"},
		{"escaped", "/api/v1/caf%c3%a9/%7Euser/../orders"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := NormalizePath(bc.path); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkScrubIdentityHeaders(b *testing.B) {
	base := http.Header{
		"Accept": {"*/*"}, "Accept-Encoding": {"gzip"}, "Authorization": {"Bearer x"},
		"Content-Type": {"application/json"}, "User-Agent": {"bench"}, "X-Request-Id": {"1"},
		"X-Forwarded-For": {"1.2.3.4"}, "Cookie": {"a=b"}, "X-Auth-Subject": {"evil"}, "X_user_id": {"1"},
	}
	b.ReportAllocs()
	for b.Loop() {
		h := make(http.Header, len(base))
		for k, v := range base {
			h[k] = v
		}
		ScrubIdentityHeaders(h, true, "X-Tenant")
	}
}
