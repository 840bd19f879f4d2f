package secret

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
)

// Private keys at rest (token-signing keys in internal/keys, CA keys in
// internal/ca) are sealed with AES-256-GCM under the key-encryption key:
// nonce || ciphertext, with the record's id as additional data so that a
// sealed value cannot be moved to another record.

// ErrUnseal is returned by Open when sealed data does not decrypt: a wrong
// key-encryption key, a value moved to another record, or corrupted data.
var ErrUnseal = errors.New("secret: cannot unseal (wrong key-encryption key, another record's value or corrupted data)")

// NewAEAD returns AES-256-GCM under a 32-byte key-encryption key.
func NewAEAD(kek []byte) (cipher.AEAD, error) {
	if len(kek) != 32 {
		return nil, fmt.Errorf("secret: the key-encryption key must be 32 bytes, got %d", len(kek))
	}
	block, err := aes.NewCipher(kek)
	if err != nil {
		return nil, fmt.Errorf("secret: key-encryption key: %w", err)
	}
	return cipher.NewGCM(block)
}

// Seal encrypts plaintext for the record id.
func Seal(aead cipher.AEAD, id string, plaintext []byte) []byte {
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plaintext)+aead.Overhead())
	// crypto/rand.Read never returns an error on supported platforms.
	_, _ = rand.Read(nonce)
	return aead.Seal(nonce, nonce, plaintext, []byte(id))
}

// Open decrypts what Seal produced for the same record id.
func Open(aead cipher.AEAD, id string, sealed []byte) ([]byte, error) {
	n := aead.NonceSize()
	if len(sealed) < n+aead.Overhead() {
		return nil, ErrUnseal
	}
	pt, err := aead.Open(nil, sealed[:n], sealed[n:], []byte(id))
	if err != nil {
		return nil, ErrUnseal
	}
	return pt, nil
}
