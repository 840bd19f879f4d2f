package keys

import (
	"bytes"
	"crypto"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/gatehouse/gatehouse/internal/secret"
	"github.com/gatehouse/gatehouse/internal/storage"
)

// Supported signing algorithms.
const (
	RS256 = "RS256"
	ES256 = "ES256"
	EdDSA = "EdDSA"
)

// rsaBits is the modulus size of generated RSA keys.
const rsaBits = 2048

// ErrUnseal is returned when a stored private key cannot be decrypted: the
// KEK is wrong or the stored bytes were altered (or moved to another kid).
var ErrUnseal = errors.New("keys: cannot unseal signing key (wrong KEK or corrupted key data)")

// loadedKey is a stored key with its parsed public and private halves.
type loadedKey struct {
	rec    storage.SigningKey
	pub    crypto.PublicKey
	jwk    jose.JSONWebKey // public members only
	signer crypto.Signer
	// hdr is the JOSE header up to (excluding) the closing brace or typ.
	hdr string
}

// generate creates a key pair for alg and returns its record (sealed) with
// the given times and generation.
func generate(aead cipher.AEAD, alg string, gen int64, created, activate time.Time) (storage.SigningKey, error) {
	var priv crypto.Signer
	var err error
	switch alg {
	case RS256:
		priv, err = rsa.GenerateKey(rand.Reader, rsaBits)
	case ES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case EdDSA:
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	default:
		return storage.SigningKey{}, fmt.Errorf("keys: unsupported algorithm %q", alg)
	}
	if err != nil {
		return storage.SigningKey{}, fmt.Errorf("keys: generate %s key: %w", alg, err)
	}
	kid := secret.ID() // 128 bits; never begins with '-' (gatehouse keys revoke KID)
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return storage.SigningKey{}, fmt.Errorf("keys: encode private key: %w", err)
	}
	defer clear(der)
	pubJWK, err := json.Marshal(publicJWK(priv.Public(), kid, alg))
	if err != nil {
		return storage.SigningKey{}, fmt.Errorf("keys: encode public key: %w", err)
	}
	return storage.SigningKey{
		ID:         kid,
		Algorithm:  alg,
		Generation: gen,
		Sealed:     seal(aead, kid, der),
		PublicJWK:  pubJWK,
		CreatedAt:  created,
		ActivateAt: activate,
	}, nil
}

func publicJWK(pub crypto.PublicKey, kid, alg string) jose.JSONWebKey {
	return jose.JSONWebKey{Key: pub, KeyID: kid, Algorithm: alg, Use: "sig"}
}

// seal encrypts plaintext with AES-256-GCM under the KEK: nonce || ciphertext,
// with the kid as additional data so a sealed key cannot be moved to another
// record.
func seal(aead cipher.AEAD, kid string, plaintext []byte) []byte {
	return secret.Seal(aead, kid, plaintext)
}

func unseal(aead cipher.AEAD, kid string, sealed []byte) ([]byte, error) {
	pt, err := secret.Open(aead, kid, sealed)
	if err != nil {
		return nil, ErrUnseal
	}
	return pt, nil
}

// load unseals and cross-checks a stored key: the private key must parse,
// match the algorithm, and match the stored public JWK.
func load(aead cipher.AEAD, rec storage.SigningKey) (*loadedKey, error) {
	der, err := unseal(aead, rec.ID, rec.Sealed)
	if err != nil {
		return nil, fmt.Errorf("key %s: %w", rec.ID, err)
	}
	defer clear(der)
	parsed, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("key %s: parse private key: %w", rec.ID, err)
	}
	priv, ok := parsed.(crypto.Signer)
	if !ok || !algMatches(rec.Algorithm, priv) {
		return nil, fmt.Errorf("key %s: private key does not match algorithm %q", rec.ID, rec.Algorithm)
	}
	var stored jose.JSONWebKey
	if err := stored.UnmarshalJSON(rec.PublicJWK); err != nil {
		return nil, fmt.Errorf("key %s: parse public JWK: %w", rec.ID, err)
	}
	eq, ok := priv.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !stored.IsPublic() || stored.KeyID != rec.ID || !ok || !eq.Equal(stored.Key) {
		return nil, fmt.Errorf("key %s: stored public JWK does not match the private key", rec.ID)
	}
	return &loadedKey{
		rec:    rec,
		pub:    priv.Public(),
		jwk:    publicJWK(priv.Public(), rec.ID, rec.Algorithm),
		signer: priv,
		// kid is base64url and alg a constant: no JSON escaping is needed.
		hdr: `{"alg":"` + rec.Algorithm + `","kid":"` + rec.ID + `"`,
	}, nil
}

func algMatches(alg string, priv crypto.Signer) bool {
	switch k := priv.(type) {
	case *rsa.PrivateKey:
		return alg == RS256 && k.N.BitLen() >= rsaBits
	case *ecdsa.PrivateKey:
		return alg == ES256 && k.Curve == elliptic.P256()
	case ed25519.PrivateKey:
		return alg == EdDSA
	}
	return false
}

// sign returns the JWS signature of input.
func (k *loadedKey) sign(input []byte) ([]byte, error) {
	switch priv := k.signer.(type) {
	case *ecdsa.PrivateKey:
		d := sha256.Sum256(input)
		der, err := ecdsa.SignASN1(rand.Reader, priv, d[:])
		if err != nil {
			return nil, err
		}
		return derToJOSE(der, 32)
	case *rsa.PrivateKey:
		d := sha256.Sum256(input)
		return rsa.SignPKCS1v15(rand.Reader, priv, crypto.SHA256, d[:])
	case ed25519.PrivateKey:
		return ed25519.Sign(priv, input), nil
	}
	return nil, errors.New("keys: unsupported private key type")
}

// derToJOSE converts an ASN.1 ECDSA signature to the JOSE form r||s, each
// left-padded to size bytes, without big.Int allocations.
func derToJOSE(der []byte, size int) ([]byte, error) {
	var seq, r, s cryptobyte.String
	in := cryptobyte.String(der)
	if !in.ReadASN1(&seq, cbasn1.SEQUENCE) || !in.Empty() ||
		!seq.ReadASN1(&r, cbasn1.INTEGER) || !seq.ReadASN1(&s, cbasn1.INTEGER) || !seq.Empty() {
		return nil, errors.New("keys: malformed ECDSA signature")
	}
	out := make([]byte, 2*size)
	for i, v := range [][]byte{r, s} {
		for len(v) > 0 && v[0] == 0 {
			v = v[1:]
		}
		if len(v) > size {
			return nil, errors.New("keys: malformed ECDSA signature")
		}
		copy(out[(i+1)*size-len(v):(i+1)*size], v)
	}
	return out, nil
}

// compact assembles header.payload.signature for the key.
func (k *loadedKey) compact(typ string, payload []byte) (string, error) {
	hdr := k.hdr
	if typ != "" {
		hdr += `,"typ":"` + typ + `"`
	}
	hdr += "}"
	enc := base64.RawURLEncoding
	hl, pl := enc.EncodedLen(len(hdr)), enc.EncodedLen(len(payload))
	buf := make([]byte, hl+1+pl, hl+1+pl+1+enc.EncodedLen(512))
	enc.Encode(buf, []byte(hdr))
	buf[hl] = '.'
	enc.Encode(buf[hl+1:], payload)
	sig, err := k.sign(buf)
	if err != nil {
		return "", fmt.Errorf("keys: sign: %w", err)
	}
	buf = append(buf, '.')
	buf = enc.AppendEncode(buf, sig)
	return string(buf), nil
}

// sameMaterial reports whether two records hold the same key material, so a
// reload can reuse the already unsealed key.
func sameMaterial(a, b storage.SigningKey) bool {
	return a.ID == b.ID && a.Algorithm == b.Algorithm &&
		bytes.Equal(a.Sealed, b.Sealed) && bytes.Equal(a.PublicJWK, b.PublicJWK)
}
