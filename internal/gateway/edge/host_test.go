package edge

import (
	"strings"
	"testing"
)

func TestHostName(t *testing.T) {
	tests := []struct {
		name, in, want string // want "" means ok=false
	}{
		{"GW-03/host-plain", "api.example.com", "api.example.com"},
		{"GW-03/host-lowercased", "API.Example.COM", "api.example.com"},
		{"GW-03/host-port-removed", "api.example.com:8443", "api.example.com"},
		{"GW-03/host-trailing-dot", "api.example.com.", "api.example.com"},
		{"GW-03/host-trailing-dot-port", "api.example.com.:443", "api.example.com"},
		{"GW-03/host-punycode-kept", "xn--bcher-kva.example", "xn--bcher-kva.example"},
		{"GW-03/host-ipv4", "192.0.2.1:80", "192.0.2.1"},
		{"GW-03/host-ipv6", "[2001:DB8::1]:443", "[2001:db8::1]"},
		{"GW-03/host-ipv6-noncanonical", "[0:0:0:0:0:0:0:1]", "[::1]"},
		{"GW-03/host-empty-port", "example.com:", "example.com"},
		{"GW-03/host-underscore", "my_svc.internal", "my_svc.internal"},
		{"GW-03/host-empty", "", ""},
		{"GW-03/host-only-dot", ".", ""},
		{"GW-03/host-double-trailing-dot", "example.com..", ""},
		{"GW-03/host-empty-label", "a..example.com", ""},
		{"GW-03/host-leading-dot", ".example.com", ""},
		{"GW-03/host-control", "example.com\x00", ""},
		{"GW-03/host-crlf", "example.com\r\nX: y", ""},
		{"GW-03/host-space", "example .com", ""},
		{"GW-03/host-tab", "example.com\t", ""},
		{"GW-03/host-slash", "example.com/admin", ""},
		{"GW-03/host-backslash", "example.com\\admin", ""},
		{"GW-03/host-userinfo", "user@example.com", ""},
		{"GW-03/host-two-colons", "example.com:80:80", ""},
		{"GW-03/host-bare-ipv6", "2001:db8::1", ""},
		{"GW-03/host-bad-port", "example.com:http", ""},
		{"GW-03/host-port-too-big", "example.com:65536", ""},
		{"GW-03/host-port-too-long", "example.com:000080", ""},
		{"GW-03/host-too-long", strings.Repeat("a.", 127) + "ab", ""},
		{"GW-03/host-label-too-long", strings.Repeat("a", 64) + ".com", ""},
		{"GW-03/host-non-ascii", "bücher.example", ""},
		{"GW-03/host-percent", "ex%61mple.com", ""},
		{"GW-03/host-ipv6-zone", "[fe80::1%25eth0]", ""},
		{"GW-03/host-ipv4-in-brackets", "[192.0.2.1]", ""},
		{"GW-03/host-bracket-garbage-after", "[::1]x", ""},
		{"GW-03/host-unterminated-bracket", "[::1", ""},
		{"GW-03/host-star", "*.example.com", ""},
		{"GW-03/host-question", "example.com?x", ""},
		{"GW-03/host-hash", "example.com#x", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := HostName(tc.in)
			if tc.want == "" {
				if ok || got != "" {
					t.Fatalf("HostName(%q) = %q, %v; want rejection", tc.in, got, ok)
				}
				return
			}
			if !ok || got != tc.want {
				t.Fatalf("HostName(%q) = %q, %v; want %q", tc.in, got, ok, tc.want)
			}
			if again, ok := HostName(got); !ok || again != got {
				t.Fatalf("not idempotent: %q -> %q, %v", got, again, ok)
			}
		})
	}
}
