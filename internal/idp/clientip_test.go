package idp

import (
	"net/http/httptest"
	"net/netip"
	"testing"
)

// TestClientIP: X-Forwarded-For is believed only from configured proxies
// (GW-02), so a client cannot dodge the per-address throttle by lying.
func TestClientIP(t *testing.T) {
	p := &Provider{cfg: Config{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}}
	cases := []struct {
		name, remote string
		xff          []string
		want         string
	}{
		{"direct", "192.0.2.7:5555", nil, "192.0.2.7"},
		{"GW-02/spoofed-xff-from-untrusted", "192.0.2.7:5555", []string{"203.0.113.9"}, "192.0.2.7"},
		{"trusted-proxy", "10.1.2.3:443", []string{"203.0.113.9"}, "203.0.113.9"},
		{"GW-02/trusted-proxy-rightmost-entry", "10.1.2.3:443", []string{"1.1.1.1, 203.0.113.9"}, "203.0.113.9"},
		{"GW-02/trusted-proxy-last-header", "10.1.2.3:443", []string{"1.1.1.1", "203.0.113.10"}, "203.0.113.10"},
		{"GW-02/garbage-xff", "10.1.2.3:443", []string{"not-an-ip"}, "10.1.2.3"},
		{"trusted-proxy-no-xff", "10.1.2.3:443", nil, "10.1.2.3"},
		{"ipv4-mapped", "[::ffff:192.0.2.7]:1", nil, "192.0.2.7"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/login", nil)
			r.RemoteAddr = c.remote
			for _, v := range c.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := p.clientIP(r); got != c.want {
				t.Fatalf("clientIP = %q, want %q", got, c.want)
			}
		})
	}
}
