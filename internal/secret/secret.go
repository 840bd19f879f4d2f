// Package secret generates and hashes the high-entropy secrets Gatehouse
// hands out: authorization codes, refresh tokens, session ids, client secrets.
//
// Every generated value carries at least 128 bits from crypto/rand. Values
// that are looked up (codes, refresh tokens, session ids) are stored as their
// SHA-256 (Lookup); client secrets are stored as HMAC-SHA256 under a server
// pepper (Keyed) and verified in constant time. Being high-entropy, they need
// no slow password hash: verifying one costs microseconds.
package secret

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
)

// DefaultBytes is the size of generated tokens: 256 bits.
const DefaultBytes = 32

// Token returns a URL-safe random string of n bytes of entropy (n >= 16).
func Token(n int) string {
	if n < 16 {
		panic("secret: fewer than 128 bits requested")
	}
	b := make([]byte, n)
	// crypto/rand.Read never returns an error on supported platforms (Go 1.24+).
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// ID returns a 128-bit URL-safe random identifier (users, clients) that
// never begins with '-', so that it can be passed to a command line as an
// argument without being taken for a flag.
func ID() string {
	for {
		if id := Token(16); id[0] != '-' {
			return id
		}
	}
}

// New returns a 256-bit URL-safe random token.
func New() string { return Token(DefaultBytes) }

// Lookup returns the storage key of a high-entropy token: base64url(SHA-256).
func Lookup(token string) string {
	s := sha256.Sum256([]byte(token))
	return base64.RawURLEncoding.EncodeToString(s[:])
}

// Keyed hashes secrets with HMAC-SHA256 under a server pepper.
type Keyed struct{ pepper []byte }

// ErrShortPepper is returned for peppers under 32 bytes.
var ErrShortPepper = errors.New("secret: pepper must be at least 32 bytes")

// NewKeyed returns a Keyed hasher; the pepper must have at least 32 bytes.
func NewKeyed(pepper []byte) (*Keyed, error) {
	if len(pepper) < 32 {
		return nil, ErrShortPepper
	}
	return &Keyed{pepper: append([]byte(nil), pepper...)}, nil
}

// Sum returns HMAC-SHA256(pepper, secret).
func (k *Keyed) Sum(secret string) []byte {
	m := hmac.New(sha256.New, k.pepper)
	m.Write([]byte(secret))
	return m.Sum(nil)
}

// Verify reports whether secret hashes to sum, in constant time.
func (k *Keyed) Verify(secret string, sum []byte) bool {
	if len(sum) != sha256.Size {
		// Still do the work so timing does not reveal a malformed record.
		_ = k.Sum(secret)
		return false
	}
	return hmac.Equal(k.Sum(secret), sum)
}
