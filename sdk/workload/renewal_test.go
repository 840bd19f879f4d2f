package workload

import (
	"crypto/x509"
	"testing"
	"time"
)

// TestRenewalDelayBackdatedSVID: the CA backdates NotBefore by 30 s; with a
// 2 s svid_ttl the renewal comes ~1 s after the SVID was obtained, not at
// once (half-life measured from NotBefore is already past).
func TestRenewalDelayBackdatedSVID(t *testing.T) {
	now := time.Now()
	tests := []struct {
		name        string
		nb, na, got time.Time
		lo, hi      time.Duration
	}{
		{"backdated 30s, ttl 2s", now.Add(-30 * time.Second), now.Add(2 * time.Second), now, 800 * time.Millisecond, 1200 * time.Millisecond},
		{"backdated 30s, ttl 1h", now.Add(-30 * time.Second), now.Add(time.Hour), now, 24 * time.Minute, 36 * time.Minute},
		{"not backdated", now, now.Add(100 * time.Second), now, 40 * time.Second, 60 * time.Second},
		{"obtained unknown: NotBefore", now, now.Add(100 * time.Second), time.Time{}, 40 * time.Second, 60 * time.Second},
		{"obtained 1s ago", now.Add(-31 * time.Second), now.Add(9 * time.Second), now.Add(-time.Second), 3 * time.Second, 5 * time.Second},
	}
	for _, tc := range tests {
		for _, r := range []float64{0, 0.5, 0.999999} {
			src := &CASource{opt: caOptions{now: func() time.Time { return now }, rand: func() float64 { return r }}}
			leaf := &x509.Certificate{NotBefore: tc.nb, NotAfter: tc.na}
			if d := src.renewalDelay(caSVIDWith(leaf), tc.got); d < tc.lo || d > tc.hi {
				t.Errorf("%s, rand %v: delay %v outside [%v, %v]", tc.name, r, d, tc.lo, tc.hi)
			}
		}
	}
}

// TestCASourceNoRenewalStormWithBackdate: a fake CA backdating NotBefore by
// 30 s with a 2 s svid_ttl; over 5 s the source renews about every second
// (half-life), not non-stop. The upper bound scales with the time that
// actually passed (a loaded machine may sleep longer); a stall may only
// lower the count, so the lower bound is one renewal.
func TestCASourceNoRenewalStormWithBackdate(t *testing.T) {
	f := newFakeCA(t)
	f.set(func(f *fakeCA) {
		f.ttl = 2 * time.Second
		f.backdate = 30 * time.Second
	})
	s := startCASource(t, f.baseConfig("jt-storm", nil), caFastOpts)
	began := time.Now()
	start := f.count("renewal")
	time.Sleep(5 * time.Second)
	n := f.count("renewal") - start
	_ = s.Close()
	elapsed := time.Since(began)
	// Half-life of 2s ± 10 %: at most 1 renewal per 0.9 s (request latency
	// only spaces them further), plus one in flight at each end of the window.
	hi := int(elapsed/(900*time.Millisecond)) + 2
	if n < 1 || n > hi {
		t.Fatalf("%d renewals in %v with svid_ttl 2s (backdated 30s), want 1..%d (~1 per second, no storm)", n, elapsed, hi)
	}
}
