package caserver

import (
	"testing"
	"time"
)

// TestServingCertShortTTLNoStorm: with svid_ttl 2s and NotBefore backdated
// 30s (the fake CA, like the real one), the serving certificate is renewed
// at half of the time between issuance and NotAfter: over 5 s of handshakes
// about 5 certificates, not one per handshake.
func TestServingCertShortTTLNoStorm(t *testing.T) {
	h := newHarnessWith(t, func(_ *Deps, c *Config) { c.SVIDTTL = 2 * time.Second })
	base := h.ca.issued.Load()
	end := time.Now().Add(5 * time.Second)
	handshakes := 0
	for time.Now().Before(end) {
		if _, err := h.srv.certs.get(t.Context()); err != nil {
			t.Fatal(err)
		}
		handshakes++
		time.Sleep(10 * time.Millisecond)
	}
	n := h.ca.issued.Load() - base
	if n < 3 || n > 7 {
		t.Fatalf("%d serving certificates issued over %d handshakes in 5s with a 2s TTL, want ~5 (3..7)", n, handshakes)
	}
}

func TestRenewalTime(t *testing.T) {
	now := time.Now()
	tests := []struct {
		name           string
		nb, na, issued time.Time
		want           time.Time
	}{
		{"backdated 30s, ttl 2s", now.Add(-30 * time.Second), now.Add(2 * time.Second), now, now.Add(time.Second)},
		{"not backdated", now, now.Add(time.Hour), now, now.Add(30 * time.Minute)},
		{"issued before NotBefore (skew)", now.Add(time.Second), now.Add(11 * time.Second), now, now.Add(6 * time.Second)},
	}
	for _, tc := range tests {
		if got := renewalTime(tc.nb, tc.na, tc.issued); !got.Equal(tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got.Sub(now), tc.want.Sub(now))
		}
	}
}
