package password

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func testHasher(t testing.TB, p Params) *Hasher {
	t.Helper()
	h, err := NewInsecureHasherForTests(p)
	if err != nil {
		t.Fatalf("NewInsecureHasherForTests(%+v): %v", p, err)
	}
	return h
}

func TestNewHasher(t *testing.T) {
	tests := []struct {
		name string
		p    Params
		want error
	}{
		{"owasp", OWASP, nil},
		{"stronger", Params{Memory: 64 * 1024, Time: 3, Threads: 1, SaltLen: 16, KeyLen: 32}, nil},
		{"PW-01/memory-below-19MiB", Params{Memory: 19*1024 - 1, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}, ErrWeakParams},
		{"PW-01/time-below-2", Params{Memory: 19 * 1024, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}, ErrWeakParams},
		{"PW-01/short-salt", Params{Memory: 19 * 1024, Time: 2, Threads: 1, SaltLen: 8, KeyLen: 32}, ErrWeakParams},
		{"PW-01/short-key", Params{Memory: 19 * 1024, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 16}, ErrWeakParams},
		{"zero-threads", Params{Memory: 19 * 1024, Time: 2, Threads: 0, SaltLen: 16, KeyLen: 32}, ErrInvalidParams},
		{"memory-over-1GiB", Params{Memory: 1<<20 + 1, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}, ErrInvalidParams},
		{"time-over-10", Params{Memory: 19 * 1024, Time: 11, Threads: 1, SaltLen: 16, KeyLen: 32}, ErrInvalidParams},
		{"zero", Params{}, ErrWeakParams},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewHasher(tt.p)
			if !errors.Is(err, tt.want) {
				t.Fatalf("NewHasher(%+v) = %v, want %v", tt.p, err, tt.want)
			}
		})
	}
	if _, err := NewInsecureHasherForTests(TestParams); err != nil {
		t.Fatalf("NewInsecureHasherForTests(TestParams): %v", err)
	}
}

func TestPW01(t *testing.T) {
	h := testHasher(t, TestParams)

	t.Run("PW-01/owasp-encoding", func(t *testing.T) {
		oh, err := NewHasher(OWASP)
		if err != nil {
			t.Fatal(err)
		}
		enc, err := oh.Hash("correct horse battery")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(enc, "$argon2id$v=19$m=19456,t=2,p=1$") {
			t.Fatalf("Hash = %q, want argon2id m=19456,t=2,p=1 PHC string", enc)
		}
		ok, rehash, err := oh.Verify("correct horse battery", enc)
		if !ok || rehash || err != nil {
			t.Fatalf("Verify = %v, %v, %v; want true, false, nil", ok, rehash, err)
		}
	})

	t.Run("PW-01/unique-salt", func(t *testing.T) {
		seen := map[string]bool{}
		for range 5 {
			enc, err := h.Hash("same password")
			if err != nil {
				t.Fatal(err)
			}
			salt := strings.Split(enc, "$")[4]
			if seen[salt] {
				t.Fatalf("salt %q reused", salt)
			}
			seen[salt] = true
		}
	})

	t.Run("PW-01/round-trip", func(t *testing.T) {
		for _, pw := range []string{"", "a", "correct horse battery", "pässwörd ✓ 密码", strings.Repeat("x", MaxLen)} {
			enc, err := h.Hash(pw)
			if err != nil {
				t.Fatalf("Hash(len %d): %v", len(pw), err)
			}
			if ok, _, err := h.Verify(pw, enc); !ok || err != nil {
				t.Fatalf("Verify(len %d) = %v, %v; want true", len(pw), ok, err)
			}
			if ok, _, err := h.Verify(pw+"!", enc); ok || err != nil {
				t.Fatalf("Verify(wrong, len %d) = %v, %v; want false, nil", len(pw), ok, err)
			}
		}
	})

	t.Run("PW-01/no-truncation", func(t *testing.T) {
		// bcrypt truncates at 72 bytes; some systems cut at 1000 or so.
		for _, n := range []int{72, 1000, MaxLen - 1} {
			a := strings.Repeat("p", n) + "a"
			b := strings.Repeat("p", n) + "b"
			enc, err := h.Hash(a)
			if err != nil {
				t.Fatal(err)
			}
			if ok, _, _ := h.Verify(b, enc); ok {
				t.Fatalf("passwords differing only at byte %d verify as equal", n+1)
			}
		}
	})

	t.Run("PW-01/over-long-refused", func(t *testing.T) {
		long := strings.Repeat("x", MaxLen+1)
		if _, err := h.Hash(long); !errors.Is(err, ErrTooLong) {
			t.Fatalf("Hash(%d bytes) = %v, want ErrTooLong", len(long), err)
		}
		if err := Policy(long); !errors.Is(err, ErrTooLong) {
			t.Fatalf("Policy(%d bytes) = %v, want ErrTooLong", len(long), err)
		}
		// Never matches, even the hash of its MaxLen-byte prefix.
		enc, err := h.Hash(long[:MaxLen])
		if err != nil {
			t.Fatal(err)
		}
		if ok, _, err := h.Verify(long, enc); ok || err != nil {
			t.Fatalf("Verify(over-long) = %v, %v; want false, nil", ok, err)
		}
	})

	t.Run("PW-01/unicode-normalized", func(t *testing.T) {
		composed, decomposed := "caf\u00e9-password", "cafe\u0301-password"
		enc, err := h.Hash(composed)
		if err != nil {
			t.Fatal(err)
		}
		if ok, _, _ := h.Verify(decomposed, enc); !ok {
			t.Fatal("NFD form of the password does not verify against its NFC hash")
		}
	})

	t.Run("PW-01/rehash-on-upgrade", func(t *testing.T) {
		enc, err := h.Hash("correct horse battery")
		if err != nil {
			t.Fatal(err)
		}
		upgrades := []Params{
			{Memory: TestParams.Memory * 2, Time: TestParams.Time, Threads: 1, SaltLen: 16, KeyLen: 32},
			{Memory: TestParams.Memory, Time: TestParams.Time + 1, Threads: 1, SaltLen: 16, KeyLen: 32},
			{Memory: TestParams.Memory, Time: TestParams.Time, Threads: 1, SaltLen: 32, KeyLen: 32},
			{Memory: TestParams.Memory, Time: TestParams.Time, Threads: 1, SaltLen: 16, KeyLen: 64},
		}
		for _, p := range upgrades {
			up := testHasher(t, p)
			ok, rehash, err := up.Verify("correct horse battery", enc)
			if !ok || !rehash || err != nil {
				t.Fatalf("Verify under %+v = %v, %v, %v; want true, true, nil", p, ok, rehash, err)
			}
			// A wrong password never asks for a rehash.
			if ok, rehash, _ := up.Verify("wrong horse battery", enc); ok || rehash {
				t.Fatalf("wrong password: ok=%v rehash=%v", ok, rehash)
			}
			// Once rehashed, no further rehash.
			enc2, err := up.Hash("correct horse battery")
			if err != nil {
				t.Fatal(err)
			}
			if ok, rehash, _ := up.Verify("correct horse battery", enc2); !ok || rehash {
				t.Fatalf("after rehash: ok=%v rehash=%v; want true, false", ok, rehash)
			}
		}
		// A stronger stored hash verified by a weaker hasher needs nothing.
		strong := testHasher(t, Params{Memory: 128, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32})
		enc3, err := strong.Hash("correct horse battery")
		if err != nil {
			t.Fatal(err)
		}
		if ok, rehash, _ := h.Verify("correct horse battery", enc3); !ok || rehash {
			t.Fatalf("stronger stored hash: ok=%v rehash=%v; want true, false", ok, rehash)
		}
	})
}

func TestVerifyRejectsTamperedHash(t *testing.T) {
	h := testHasher(t, TestParams)
	const salt, key = "c29tZXNhbHRzb21lc2FsdA", "3q2+796tvu/erb7v3q2+796tvu/erb7v3q2+796tvu8"
	tests := []struct{ name, enc string }{
		{"PW-01/empty", ""},
		{"PW-01/argon2i", "$argon2i$v=19$m=64,t=1,p=1$" + salt + "$" + key},
		{"PW-01/bcrypt", "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"},
		{"PW-01/version-16", "$argon2id$v=16$m=64,t=1,p=1$" + salt + "$" + key},
		{"PW-01/memory-over-1GiB", "$argon2id$v=19$m=1048577,t=1,p=1$" + salt + "$" + key},
		{"PW-01/memory-huge", "$argon2id$v=19$m=4294967295,t=1,p=1$" + salt + "$" + key},
		{"PW-01/memory-overflow", "$argon2id$v=19$m=99999999999,t=1,p=1$" + salt + "$" + key},
		{"PW-01/time-over-10", "$argon2id$v=19$m=64,t=11,p=1$" + salt + "$" + key},
		{"PW-01/threads-over-16", "$argon2id$v=19$m=256,t=1,p=17$" + salt + "$" + key},
		{"PW-01/threads-256", "$argon2id$v=19$m=4096,t=1,p=256$" + salt + "$" + key},
		{"PW-01/threads-zero", "$argon2id$v=19$m=64,t=1,p=0$" + salt + "$" + key},
		{"PW-01/time-zero", "$argon2id$v=19$m=64,t=0,p=1$" + salt + "$" + key},
		{"PW-01/memory-below-8p", "$argon2id$v=19$m=7,t=1,p=1$" + salt + "$" + key},
		{"PW-01/leading-zero", "$argon2id$v=19$m=064,t=1,p=1$" + salt + "$" + key},
		{"PW-01/signed", "$argon2id$v=19$m=+64,t=1,p=1$" + salt + "$" + key},
		{"PW-01/reordered", "$argon2id$v=19$t=1,m=64,p=1$" + salt + "$" + key},
		{"PW-01/extra-param", "$argon2id$v=19$m=64,t=1,p=1,x=1$" + salt + "$" + key},
		{"PW-01/short-salt", "$argon2id$v=19$m=64,t=1,p=1$c2FsdA$" + key},
		{"PW-01/empty-key", "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$"},
		{"PW-01/short-key", "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$AAAA"},
		{"PW-01/padded-base64", "$argon2id$v=19$m=64,t=1,p=1$" + salt + "==$" + key},
		{"PW-01/bad-base64", "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$***"},
		{"PW-01/trailing-field", "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + key + "$"},
		{"PW-01/over-long", "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + strings.Repeat("A", 600)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, rehash, err := h.Verify("password", tt.enc)
			if ok || rehash || !errors.Is(err, ErrInvalidHash) {
				t.Fatalf("Verify(%q) = %v, %v, %v; want false, false, ErrInvalidHash", tt.enc, ok, rehash, err)
			}
		})
	}
	// The well-formed base of the table parses, so the rows above fail for
	// the reason their names give.
	if _, err := decode("$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + key); err != nil {
		t.Fatalf("well-formed base: %v", err)
	}
}

func TestBF02DummyTiming(t *testing.T) {
	// Cheap but large enough for argon2 to dominate: about a millisecond or more.
	p := Params{Memory: 2048, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}
	h := testHasher(t, p)
	enc, err := h.Hash("the real password")
	if err != nil {
		t.Fatal(err)
	}
	huge := strings.Repeat("x", 1<<20)
	verify := func() { _, _, _ = h.Verify("a wrong password", enc) }
	cases := []struct {
		name string
		f    func()
	}{
		{"BF-02/dummy-vs-verify", func() { h.Dummy("a wrong password") }},
		{"BF-02/over-long-verify-vs-verify", func() { _, _, _ = h.Verify(huge, enc) }},
		{"BF-02/over-long-dummy-vs-verify", func() { h.Dummy(huge) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// The machine is shared: interleave the two, keep the fastest of
			// each, and allow a noisy attempt to be retried. A Dummy that
			// skipped the hash would be off by orders of magnitude every time.
			var ratio float64
			var got, want time.Duration
			for range 3 {
				got, want = fastestPair(c.f, verify, 5)
				if ratio = float64(got) / float64(want); ratio >= 0.5 && ratio <= 2 {
					return
				}
			}
			t.Fatalf("took %v against Verify's %v (ratio %.2f), want within 0.5x..2x", got, want, ratio)
		})
	}
}

// fastestPair runs a and b alternately n times and returns the fastest run of each.
func fastestPair(a, b func(), n int) (time.Duration, time.Duration) {
	bestA, bestB := time.Duration(1<<63-1), time.Duration(1<<63-1)
	for range n {
		start := time.Now()
		a()
		bestA = min(bestA, time.Since(start))
		start = time.Now()
		b()
		bestB = min(bestB, time.Since(start))
	}
	return bestA, bestB
}

func FuzzVerifyEncoded(f *testing.F) {
	h := testHasher(f, TestParams)
	good, err := h.Hash("password")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add("$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$3q2+796tvu/erb7v3q2+796tvu/erb7v3q2+796tvu8")
	f.Add("$argon2id$v=19$m=4294967295,t=4294967295,p=255$$")
	f.Add("$argon2id$$$$$")
	f.Add("$")
	f.Fuzz(func(t *testing.T, enc string) {
		d, err := decode(enc)
		if err != nil {
			if !errors.Is(err, ErrInvalidHash) {
				t.Fatalf("decode error %v is not ErrInvalidHash", err)
			}
			return
		}
		// The parser is strict: whatever it accepts re-encodes to itself.
		if got := encode(d.p, d.salt, d.key); got != enc {
			t.Fatalf("encode(decode(%q)) = %q", enc, got)
		}
		if err := checkBounds(d.p); err != nil {
			t.Fatalf("decode accepted out-of-bounds params %+v", d.p)
		}
		if d.p.Memory <= 1024 && d.p.Time <= 2 {
			if _, _, err := h.Verify("password", enc); err != nil {
				t.Fatalf("Verify(%q): %v", enc, err)
			}
		}
	})
}
