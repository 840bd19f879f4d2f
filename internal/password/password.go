// Package password hashes and checks user passwords (checklist PW-01, BF-02).
//
// Hashes are Argon2id in the PHC string format
//
//	$argon2id$v=19$m=19456,t=2,p=1$<base64 salt>$<base64 key>
//
// with a fresh random salt per hash. Parameters are read back from the stored
// string when verifying, within bounds that keep a tampered row from turning
// a login into a denial of service, and Verify reports when a stored hash is
// weaker than the Hasher's current parameters so the caller can rehash it
// after a successful login.
//
// Policy checks new passwords: at least MinLen characters, at most MaxLen
// bytes (never silently truncated), valid UTF-8, and not on the embedded list
// of common passwords. Dummy spends the time of a real Verify so that an
// unknown user and a wrong password cannot be told apart by timing.
package password

import (
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"

	"golang.org/x/crypto/argon2"
)

// Params are Argon2id cost parameters.
type Params struct {
	Memory  uint32 // KiB
	Time    uint32 // passes over memory
	Threads uint8  // lanes
	SaltLen uint32 // bytes
	KeyLen  uint32 // bytes
}

// OWASP is the minimum accepted by NewHasher: m = 19 MiB, t = 2, p = 1
// (OWASP Password Storage Cheat Sheet).
var OWASP = Params{Memory: 19 * 1024, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}

// TestParams are cheap parameters for tests only; see NewInsecureHasherForTests.
var TestParams = Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

// Length limits of a password, in bytes for MaxLen and characters for MinLen.
const (
	MinLen = 8
	MaxLen = 1024
)

// Bounds on parameters accepted anywhere, including inside stored hashes.
const (
	maxMemory  = 1 << 20 // KiB: 1 GiB
	maxTime    = 10
	maxThreads = 16
	minSaltLen = 8
	maxSaltLen = 64
	minKeyLen  = 16
	maxKeyLen  = 64
)

// Errors returned by Policy, Hash, Verify and the constructors.
var (
	ErrTooShort      = errors.New("password: too short")
	ErrTooLong       = errors.New("password: too long")
	ErrCommon        = errors.New("password: too common")
	ErrInvalidUTF8   = errors.New("password: not valid UTF-8")
	ErrInvalidHash   = errors.New("password: invalid encoded hash")
	ErrWeakParams    = errors.New("password: parameters below the OWASP minimum")
	ErrInvalidParams = errors.New("password: invalid parameters")
)

// Hasher hashes and verifies passwords with fixed Argon2id parameters.
// It is safe for concurrent use.
type Hasher struct {
	p Params
	// dummySalt and dummyKey make Dummy follow the same code path as Verify.
	dummySalt []byte
	dummyKey  []byte
}

// NewHasher returns a Hasher with p, refusing parameters below OWASP
// (m >= 19 MiB, t >= 2, p >= 1, 16-byte salt, 32-byte key) or above the
// bounds Verify accepts (m <= 1 GiB, t <= 10, p <= 16).
func NewHasher(p Params) (*Hasher, error) {
	if p.Memory < OWASP.Memory || p.Time < OWASP.Time || p.SaltLen < OWASP.SaltLen || p.KeyLen < OWASP.KeyLen {
		return nil, fmt.Errorf("%w: got m=%d t=%d salt=%d key=%d", ErrWeakParams, p.Memory, p.Time, p.SaltLen, p.KeyLen)
	}
	return newHasher(p)
}

// NewInsecureHasherForTests returns a Hasher that accepts parameters below
// the OWASP minimum, such as TestParams. Never use it outside tests.
func NewInsecureHasherForTests(p Params) (*Hasher, error) {
	return newHasher(p)
}

func newHasher(p Params) (*Hasher, error) {
	if err := checkBounds(p); err != nil {
		return nil, err
	}
	h := &Hasher{p: p, dummySalt: make([]byte, p.SaltLen)}
	_, _ = rand.Read(h.dummySalt)
	// The dummy key is random: no password matches it.
	h.dummyKey = make([]byte, p.KeyLen)
	_, _ = rand.Read(h.dummyKey)
	return h, nil
}

func checkBounds(p Params) error {
	switch {
	case p.Threads < 1 || p.Threads > maxThreads:
		return fmt.Errorf("%w: threads %d not in [1, %d]", ErrInvalidParams, p.Threads, maxThreads)
	case p.Time < 1 || p.Time > maxTime:
		return fmt.Errorf("%w: time %d not in [1, %d]", ErrInvalidParams, p.Time, maxTime)
	case p.Memory < 8*uint32(p.Threads) || p.Memory > maxMemory:
		return fmt.Errorf("%w: memory %d KiB not in [8*threads, %d]", ErrInvalidParams, p.Memory, maxMemory)
	case p.SaltLen < minSaltLen || p.SaltLen > maxSaltLen:
		return fmt.Errorf("%w: salt length %d not in [%d, %d]", ErrInvalidParams, p.SaltLen, minSaltLen, maxSaltLen)
	case p.KeyLen < minKeyLen || p.KeyLen > maxKeyLen:
		return fmt.Errorf("%w: key length %d not in [%d, %d]", ErrInvalidParams, p.KeyLen, minKeyLen, maxKeyLen)
	}
	return nil
}

// Params returns the Hasher's parameters.
func (h *Hasher) Params() Params { return h.p }

// Hash returns the PHC string of pw under a fresh random salt. It refuses
// passwords over MaxLen bytes with ErrTooLong rather than truncating them.
// Hash does not apply Policy; call Policy first for new passwords. Valid
// UTF-8 is normalized to NFC before hashing, here and in Verify.
func (h *Hasher) Hash(pw string) (string, error) {
	if len(pw) > MaxLen {
		return "", ErrTooLong
	}
	salt := make([]byte, h.p.SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("password: salt: %w", err)
	}
	key := argon2.IDKey([]byte(normalize(pw)), salt, h.p.Time, h.p.Memory, h.p.Threads, h.p.KeyLen)
	return encode(h.p, salt, key), nil
}

// Verify reports whether pw matches the PHC string encoded, comparing in
// constant time with the parameters stored in encoded. needsRehash is true
// when pw matched and encoded is weaker than the Hasher's parameters; the
// caller should then store a fresh Hash(pw).
//
// A password over MaxLen bytes never matches: Verify returns false without
// hashing it, after spending the time of a dummy hash. A malformed or
// out-of-bounds encoded string yields ErrInvalidHash.
func (h *Hasher) Verify(pw, encoded string) (ok, needsRehash bool, err error) {
	d, err := decode(encoded)
	if err != nil {
		return false, false, err
	}
	if len(pw) > MaxLen {
		h.Dummy("")
		return false, false, nil
	}
	key := argon2.IDKey([]byte(normalize(pw)), d.salt, d.p.Time, d.p.Memory, d.p.Threads, uint32(len(d.key)))
	if subtle.ConstantTimeCompare(key, d.key) != 1 {
		return false, false, nil
	}
	return true, h.weaker(d.p), nil
}

// weaker reports whether q is below the Hasher's parameters in any respect.
func (h *Hasher) weaker(q Params) bool {
	return q.Memory < h.p.Memory || q.Time < h.p.Time || q.Threads != h.p.Threads ||
		q.SaltLen < h.p.SaltLen || q.KeyLen < h.p.KeyLen
}

// Dummy spends the time of a Verify against a hash made with the Hasher's
// parameters, and discards the result. Call it when the user is unknown so
// the response takes as long as a wrong password (BF-02).
func (h *Hasher) Dummy(pw string) {
	if len(pw) > MaxLen {
		pw = pw[:MaxLen]
	}
	key := argon2.IDKey([]byte(normalize(pw)), h.dummySalt, h.p.Time, h.p.Memory, h.p.Threads, h.p.KeyLen)
	_ = subtle.ConstantTimeCompare(key, h.dummyKey)
}
