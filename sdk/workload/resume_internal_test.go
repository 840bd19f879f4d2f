package workload

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"testing"
	"time"
)

func TestResumeInfoRoundTrip(t *testing.T) {
	now := time.Unix(1_900_000_000, 123)
	good := resumeInfo{serverFP: sha256.Sum256([]byte("s")), clientStart: now, clientExpires: now.Add(time.Hour)}
	enc := good.encode()
	tests := []struct {
		name  string
		extra [][]byte
		ok    bool
	}{
		{"ours alone", [][]byte{enc}, true},
		{"after another layer's entry", [][]byte{[]byte("other/1\x00data"), enc}, true},
		{"none", nil, false},
		{"foreign only", [][]byte{[]byte("other/1\x00data")}, false},
		{"truncated", [][]byte{enc[:len(enc)-1]}, false},
		{"longer", [][]byte{append(bytes.Clone(enc), 0)}, false},
		{"other version", [][]byte{bytes.Replace(bytes.Clone(enc), []byte("/1\x00"), []byte("/2\x00"), 1)}, false},
	}
	for _, tc := range tests {
		got, ok := findResumeInfo(tc.extra)
		if ok != tc.ok {
			t.Fatalf("%s: ok %v, want %v", tc.name, ok, tc.ok)
		}
		if ok && (got.serverFP != good.serverFP || !got.clientStart.Equal(good.clientStart) || !got.clientExpires.Equal(good.clientExpires)) {
			t.Fatalf("%s: %+v, want %+v", tc.name, got, good)
		}
	}
}

func TestResumeMargin(t *testing.T) {
	for _, tc := range []struct{ life, want time.Duration }{
		{2 * time.Second, 800 * time.Millisecond},
		{3 * time.Second, 1200 * time.Millisecond},
		{10 * time.Second, 4 * time.Second},
		{time.Hour, 5 * time.Second},
		{20 * time.Second, 5 * time.Second},
		{-time.Second, 0},
	} {
		if got := resumeMargin(tc.life); got != tc.want {
			t.Errorf("resumeMargin(%v) = %v, want %v", tc.life, got, tc.want)
		}
	}
}

// TestSwitchGrace: tickets of the first third of a renewed SVID's life (at
// most 5 s) are not resumable.
func TestSwitchGrace(t *testing.T) {
	for _, tc := range []struct{ life, want time.Duration }{
		{3 * time.Second, time.Second},
		{time.Hour, 5 * time.Second},
		{-time.Second, 0},
	} {
		if got := switchGrace(tc.life); got != tc.want {
			t.Errorf("switchGrace(%v) = %v, want %v", tc.life, got, tc.want)
		}
	}
}

// TestNearExpiry: the last third of the leaf's life counted from start
// (first seen), the chain's earliest NotAfter deciding.
func TestNearExpiry(t *testing.T) {
	now := time.Now()
	leaf := func(nb, na time.Time) *x509.Certificate { return &x509.Certificate{NotBefore: nb, NotAfter: na} }
	tests := []struct {
		name  string
		chain []*x509.Certificate
		start time.Time
		want  bool
	}{
		{"fresh, backdated 30s, seen now", []*x509.Certificate{leaf(now.Add(-30*time.Second), now.Add(3*time.Second))}, now, false},
		{"half-life", []*x509.Certificate{leaf(now.Add(-30*time.Second), now.Add(3*time.Second))}, now.Add(-3 * time.Second), false},
		{"last third", []*x509.Certificate{leaf(now.Add(-30*time.Second), now.Add(time.Second))}, now.Add(-2 * time.Second), true},
		{"intermediate expires first", []*x509.Certificate{leaf(now.Add(-time.Hour), now.Add(time.Hour)), leaf(now.Add(-time.Hour), now.Add(time.Minute))}, now.Add(-time.Minute), true},
	}
	for _, tc := range tests {
		if got := nearExpiry(tc.chain, tc.start, now); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestLeafAgesBounded(t *testing.T) {
	a := newLeafAges()
	now := time.Now()
	for i := range maxLeafAges + 10 {
		c := &x509.Certificate{Raw: []byte{byte(i), byte(i >> 8), byte(i >> 16)}, NotAfter: now.Add(-time.Second)}
		a.start(c, now)
	}
	if n := len(a.seen); n > maxLeafAges {
		t.Fatalf("%d entries kept, want ≤ %d", n, maxLeafAges)
	}
	c := &x509.Certificate{Raw: []byte("x"), NotBefore: now.Add(-time.Minute), NotAfter: now.Add(time.Hour)}
	if s := a.start(c, now); !s.Equal(now) {
		t.Fatalf("first seen %v, want now", s)
	}
	if s := a.start(c, now.Add(time.Minute)); !s.Equal(now) {
		t.Fatalf("second sighting moved the start to %v", s)
	}
}

// FuzzResumeInfo: findResumeInfo never panics, and what it accepts
// re-encodes to the same bytes.
func FuzzResumeInfo(f *testing.F) {
	f.Add(resumeInfo{clientStart: time.Unix(1, 0), clientExpires: time.Unix(2, 0)}.encode())
	f.Add([]byte("gatehouse-workload-resume/1\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, ok := findResumeInfo([][]byte{b})
		if ok && !bytes.Equal(r.encode(), b) {
			t.Fatalf("re-encoding differs: %x vs %x", r.encode(), b)
		}
	})
}
