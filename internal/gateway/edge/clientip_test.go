package edge

import (
	"net/http"
	"net/netip"
	"strings"
	"testing"
)

func TestClientIP(t *testing.T) {
	trusted, err := ParsePrefixes([]string{"10.0.0.0/8", "192.168.1.1", "fd00::/8"})
	if err != nil {
		t.Fatal(err)
	}
	longXFF := strings.Repeat("10.0.0.1, ", 10_000) + "10.0.0.2"
	tests := []struct {
		name   string
		remote string
		h      http.Header
		want   string // "" means ok=false
	}{
		{"GW-02/untrusted-peer-xff-ignored", "203.0.113.7:5555", http.Header{"X-Forwarded-For": {"1.1.1.1"}}, "203.0.113.7"},
		{"GW-02/untrusted-peer-forwarded-ignored", "203.0.113.7:5555", http.Header{"Forwarded": {"for=1.1.1.1"}}, "203.0.113.7"},
		{"GW-02/untrusted-peer-real-ip-ignored", "203.0.113.7:5555", http.Header{"X-Real-Ip": {"1.1.1.1"}}, "203.0.113.7"},
		{"GW-02/trusted-peer-no-headers", "10.1.2.3:80", http.Header{}, "10.1.2.3"},
		{"GW-02/trusted-peer-rightmost-untrusted", "10.1.2.3:80", http.Header{"X-Forwarded-For": {"6.6.6.6, 198.51.100.1, 10.9.9.9"}}, "198.51.100.1"},
		{"GW-02/spoofed-left-entries-ignored", "10.1.2.3:80", http.Header{"X-Forwarded-For": {"127.0.0.1, 198.51.100.1"}}, "198.51.100.1"},
		{"GW-02/all-trusted-leftmost", "10.1.2.3:80", http.Header{"X-Forwarded-For": {"10.0.0.5, 192.168.1.1"}}, "10.0.0.5"},
		{"GW-02/multiple-lines-concatenated", "10.1.2.3:80", http.Header{"X-Forwarded-For": {"198.51.100.9", "10.0.0.7"}}, "198.51.100.9"},
		{"GW-02/multiple-lines-right-line-wins", "10.1.2.3:80", http.Header{"X-Forwarded-For": {"6.6.6.6", "198.51.100.2"}}, "198.51.100.2"},
		{"GW-02/malformed-entry-stops", "10.1.2.3:80", http.Header{"X-Forwarded-For": {"6.6.6.6, bogus, 10.0.0.9"}}, "10.0.0.9"},
		{"GW-02/malformed-rightmost", "10.1.2.3:80", http.Header{"X-Forwarded-For": {"6.6.6.6, not-an-ip"}}, "10.1.2.3"},
		{"GW-02/empty-entry-stops", "10.1.2.3:80", http.Header{"X-Forwarded-For": {"6.6.6.6,,10.0.0.9"}}, "10.0.0.9"},
		{"GW-02/empty-xff-line", "10.1.2.3:80", http.Header{"X-Forwarded-For": {""}, "X-Real-Ip": {"6.6.6.6"}}, "10.1.2.3"},
		{"GW-02/xff-zone-rejected", "10.1.2.3:80", http.Header{"X-Forwarded-For": {"fe80::1%eth0"}}, "10.1.2.3"},
		{"GW-02/xff-with-port", "10.1.2.3:80", http.Header{"X-Forwarded-For": {"198.51.100.3:1234"}}, "198.51.100.3"},
		{"GW-02/xff-ipv6-bracket-port", "10.1.2.3:80", http.Header{"X-Forwarded-For": {"[2001:db8::1]:443"}}, "2001:db8::1"},
		{"GW-02/xff-huge-entry", "10.1.2.3:80", http.Header{"X-Forwarded-For": {strings.Repeat("1", 1<<20)}}, "10.1.2.3"},
		{"GW-02/xff-10000-hops-bounded", "10.1.2.3:80", http.Header{"X-Forwarded-For": {"6.6.6.6, " + longXFF}}, "10.0.0.1"},
		{"GW-02/ipv4-mapped-xff", "10.1.2.3:80", http.Header{"X-Forwarded-For": {"::ffff:198.51.100.4"}}, "198.51.100.4"},
		{"GW-02/ipv4-mapped-trusted-entry", "10.1.2.3:80", http.Header{"X-Forwarded-For": {"198.51.100.4, ::ffff:10.0.0.1"}}, "198.51.100.4"},
		{"GW-02/ipv4-mapped-peer-trusted", "[::ffff:10.1.2.3]:80", http.Header{"X-Forwarded-For": {"198.51.100.5"}}, "198.51.100.5"},
		{"GW-02/ipv4-mapped-peer-untrusted", "[::ffff:203.0.113.9]:80", http.Header{"X-Forwarded-For": {"198.51.100.5"}}, "203.0.113.9"},
		{"GW-02/ipv6-peer-trusted", "[fd00::1]:80", http.Header{"X-Forwarded-For": {"2001:db8::9"}}, "2001:db8::9"},
		{"GW-02/forwarded-quoted-ipv6", "10.1.2.3:80", http.Header{"Forwarded": {`for="[2001:db8:cafe::17]:4711"`}}, "2001:db8:cafe::17"},
		{"GW-02/forwarded-multi", "10.1.2.3:80", http.Header{"Forwarded": {`for=6.6.6.6, for=198.51.100.6;proto=https;by=10.0.0.1, for=10.0.0.2`}}, "198.51.100.6"},
		{"GW-02/forwarded-case-and-lines", "10.1.2.3:80", http.Header{"Forwarded": {"For=198.51.100.7", "for=10.0.0.3"}}, "198.51.100.7"},
		{"GW-02/forwarded-unknown-stops", "10.1.2.3:80", http.Header{"Forwarded": {"for=6.6.6.6, for=unknown, for=10.0.0.4"}}, "10.0.0.4"},
		{"GW-02/forwarded-obfuscated-stops", "10.1.2.3:80", http.Header{"Forwarded": {"for=6.6.6.6, for=_hidden"}}, "10.1.2.3"},
		{"GW-02/forwarded-unquoted-ipv6-malformed", "10.1.2.3:80", http.Header{"Forwarded": {"for=[2001:db8::1]"}}, "10.1.2.3"},
		{"GW-02/forwarded-unterminated-quote", "10.1.2.3:80", http.Header{"Forwarded": {`for=6.6.6.6, for="198.51.100.8`}}, "10.1.2.3"},
		{"GW-02/forwarded-quote-smuggles-comma", "10.1.2.3:80", http.Header{"Forwarded": {`for="6.6.6.6, for=7.7.7.7"`}}, "10.1.2.3"},
		{"GW-02/forwarded-duplicate-for", "10.1.2.3:80", http.Header{"Forwarded": {"for=198.51.100.1;for=6.6.6.6"}}, "10.1.2.3"},
		{"GW-02/forwarded-no-for", "10.1.2.3:80", http.Header{"Forwarded": {"for=6.6.6.6, proto=https"}}, "10.1.2.3"},
		{"GW-02/forwarded-escape-rejected", "10.1.2.3:80", http.Header{"Forwarded": {`for="198.51.100.\1"`}}, "10.1.2.3"},
		{"GW-02/forwarded-10000-hops-bounded", "10.1.2.3:80", http.Header{"Forwarded": {"for=6.6.6.6, " + strings.Repeat("for=10.0.0.1, ", 10_000) + "for=10.0.0.2"}}, "10.0.0.1"},
		{"GW-02/xff-wins-over-forwarded", "10.1.2.3:80", http.Header{"X-Forwarded-For": {"198.51.100.10"}, "Forwarded": {"for=6.6.6.6"}}, "198.51.100.10"},
		{"GW-02/real-ip-trusted-peer", "10.1.2.3:80", http.Header{"X-Real-Ip": {"198.51.100.11"}}, "198.51.100.11"},
		{"GW-02/real-ip-two-lines-ignored", "10.1.2.3:80", http.Header{"X-Real-Ip": {"198.51.100.11", "6.6.6.6"}}, "10.1.2.3"},
		{"GW-02/real-ip-garbage", "10.1.2.3:80", http.Header{"X-Real-Ip": {"evil"}}, "10.1.2.3"},
		{"GW-02/real-ip-ignored-when-xff", "10.1.2.3:80", http.Header{"X-Real-Ip": {"6.6.6.6"}, "X-Forwarded-For": {"198.51.100.12"}}, "198.51.100.12"},
		{"GW-02/peer-without-port", "203.0.113.7", nil, "203.0.113.7"},
		{"GW-02/peer-zone-dropped", "[fe80::1%eth0]:80", nil, "fe80::1"},
		{"GW-02/peer-unparseable", "not-an-address", http.Header{"X-Forwarded-For": {"1.1.1.1"}}, ""},
		{"GW-02/peer-empty", "", nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := ClientIP(tc.remote, tc.h, trusted)
			if tc.want == "" {
				if ok || got.IsValid() {
					t.Fatalf("ClientIP = %v, %v; want invalid", got, ok)
				}
				return
			}
			if !ok || got != netip.MustParseAddr(tc.want) {
				t.Fatalf("ClientIP = %v, %v; want %s", got, ok, tc.want)
			}
		})
	}
}

func TestParsePrefixes(t *testing.T) {
	got, err := ParsePrefixes([]string{"10.0.0.0/8", " 192.168.1.1 ", "2001:db8::/32", "::1", "::ffff:10.0.0.0/104", "::ffff:1.2.3.4"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"10.0.0.0/8", "192.168.1.1/32", "2001:db8::/32", "::1/128", "10.0.0.0/8", "1.2.3.4/32"}
	if len(got) != len(want) {
		t.Fatalf("got %v", got)
	}
	for i := range want {
		if got[i].String() != want[i] {
			t.Errorf("entry %d = %v, want %s", i, got[i], want[i])
		}
	}
	bad := []string{"", "10.0.0.1/8", "999.0.0.0/8", "fe80::1%eth0", "host.example", "10.0.0.0/33"}
	_, err = ParsePrefixes(bad)
	if err == nil {
		t.Fatal("GW-02: invalid trusted proxy entries accepted")
	}
	for i := range bad {
		if !strings.Contains(err.Error(), "entry "+string(rune('0'+i))) {
			t.Errorf("error does not mention entry %d: %v", i, err)
		}
	}
}
