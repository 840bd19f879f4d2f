// Package jwtx parses and verifies compact-serialized JWS tokens (JWTs)
// strictly, following RFC 8725 and Gatehouse's security checklist (JWT-*).
//
// Verify accepts only what Gatehouse itself issues: three base64url segments
// in canonical unpadded encoding, a header of exactly alg, kid and optional
// typ, a signature by a key the caller supplies together with the one
// algorithm allowed for it, and a payload that is a single JSON object
// without duplicate or case-variant duplicate members. Every structural
// check runs before any cryptography; nothing is ever fetched (jku, x5u, jwk
// and x5c headers are rejected, not followed). Claims are then decoded with
// ParseClaims and checked with ValidateTime; issuer, audience and type policy
// belong to the caller.
//
// The package depends only on the standard library so that the IdP, the
// gateway and the SDK share one verifier. Errors are sentinels compared with
// errors.Is and never echo token content.
package jwtx

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"unicode/utf8"
)

// Algorithms Verify knows. The allowed one is always bound to the key.
const (
	RS256 = "RS256"
	PS256 = "PS256"
	ES256 = "ES256"
	ES384 = "ES384"
	EdDSA = "EdDSA"
	// HS256 is accepted only with an HMACKey bound to it by the caller's
	// configuration (a symmetric issuer); a public key is never an HMAC key
	// (JWT-A04).
	HS256 = "HS256"
)

// MinHMACKeyLen is the shortest HMACKey Verify accepts (RFC 7518 §3.2).
const MinHMACKeyLen = 32

// HMACKey is a shared secret for HS256. It is a distinct type so that a
// public key can never be mistaken for one.
type HMACKey []byte

// DefaultMaxLen is the default cap on the token length, checked before any
// decoding.
const DefaultMaxLen = 8192

// maxKidLen bounds the kid header value.
const maxKidLen = 256

// minRSABits is the smallest RSA modulus Verify accepts.
const minRSABits = 2048

// Sentinel errors. Wrapped errors add a fixed reason, never token content.
var (
	// ErrMalformed: the token is not a well-formed compact JWS (size,
	// segments, encoding, JSON).
	ErrMalformed = errors.New("jwtx: malformed token")
	// ErrHeader: the header carries a forbidden or unknown member (jwk, jku,
	// x5u, x5c, crit, cty, ...) or a member of the wrong type.
	ErrHeader = errors.New("jwtx: unacceptable header")
	// ErrAlgorithm: alg differs from the algorithm bound to the key.
	ErrAlgorithm = errors.New("jwtx: algorithm not allowed")
	// ErrType: typ is not one of Options.Typ.
	ErrType = errors.New("jwtx: token type not allowed")
	// ErrUnknownKey: no key for the kid; callers may refresh their key set
	// (rate-limited) and retry.
	ErrUnknownKey = errors.New("jwtx: unknown signing key")
	// ErrKey: the caller's key does not suit its bound algorithm (a
	// configuration error, not an attack).
	ErrKey = errors.New("jwtx: unusable verification key")
	// ErrSignature: the signature does not verify.
	ErrSignature = errors.New("jwtx: invalid signature")
	// ErrClaims: a registered claim is missing or has the wrong type.
	ErrClaims = errors.New("jwtx: invalid claims")
	// ErrExpired: exp has passed (beyond the leeway).
	ErrExpired = errors.New("jwtx: token expired")
	// ErrNotYetValid: nbf or iat lies in the future (beyond the leeway).
	ErrNotYetValid = errors.New("jwtx: token not yet valid")
)

// KeyFunc returns the public key for kid and the single algorithm allowed
// with it. Keys and algorithms come only from the caller's configuration,
// never from the token; kid is an opaque map key.
type KeyFunc func(kid string) (key crypto.PublicKey, alg string, ok bool)

// Options tunes Verify. The zero value is usable.
type Options struct {
	// MaxLen caps the token length in bytes (DefaultMaxLen when <= 0).
	MaxLen int
	// Typ lists the accepted typ header values, compared case-insensitively
	// and with an optional "application/" prefix (RFC 8725 §3.11), so "at+jwt"
	// accepts "at+jwt", "AT+JWT" and "application/at+jwt". When Typ is not
	// empty, a token without typ is rejected; when empty, any typ passes.
	Typ []string
	// KidOptional accepts a header without kid (KeyFunc then gets ""). Only
	// for a symmetric issuer with a single configured key; asymmetric key
	// sets are always selected by kid (JWT-G01).
	KidOptional bool
}

// Header is the verified JOSE header.
type Header struct {
	Alg string
	Kid string
	Typ string // empty when absent
}

// Verify checks token and returns its header and payload. The payload is a
// strict JSON object (see ParseClaims); time, issuer and audience checks are
// left to the caller.
func Verify(token string, keys KeyFunc, opt Options) (Header, []byte, error) {
	maxLen := opt.MaxLen
	if maxLen <= 0 {
		maxLen = DefaultMaxLen
	}
	if len(token) > maxLen {
		return Header{}, nil, fmt.Errorf("%w: token too long", ErrMalformed)
	}
	// Count separators without splitting (JWT-F01).
	switch n := strings.Count(token, "."); n {
	case 2:
	case 4:
		return Header{}, nil, fmt.Errorf("%w: JWE not accepted", ErrMalformed)
	default:
		return Header{}, nil, fmt.Errorf("%w: wrong number of segments", ErrMalformed)
	}
	i := strings.IndexByte(token, '.')
	j := i + 1 + strings.IndexByte(token[i+1:], '.')
	rawHeader, rawPayload, rawSig := token[:i], token[i+1:j], token[j+1:]
	signingInput := token[:j]
	if rawHeader == "" {
		return Header{}, nil, fmt.Errorf("%w: empty header", ErrMalformed)
	}

	headerJSON, err := decodeSegment(rawHeader)
	if err != nil {
		return Header{}, nil, err
	}
	payload, err := decodeSegment(rawPayload)
	if err != nil {
		return Header{}, nil, err
	}
	if rawSig == "" {
		return Header{}, nil, fmt.Errorf("%w: empty signature", ErrSignature)
	}
	sig, err := decodeSegment(rawSig)
	if err != nil {
		return Header{}, nil, err
	}

	h, err := parseHeader(headerJSON, opt.KidOptional)
	if err != nil {
		return Header{}, nil, err
	}
	if len(opt.Typ) > 0 && !typAllowed(h.Typ, opt.Typ) {
		return Header{}, nil, ErrType
	}
	key, alg, ok := keys(h.Kid)
	if !ok {
		return Header{}, nil, ErrUnknownKey
	}
	if alg == "" || h.Alg != alg {
		return Header{}, nil, ErrAlgorithm
	}
	if err := verifySignature(alg, key, []byte(signingInput), sig); err != nil {
		return Header{}, nil, err
	}
	if err := checkStrictObject(payload); err != nil {
		return Header{}, nil, fmt.Errorf("payload: %w", err)
	}
	return h, payload, nil
}

// decodeSegment decodes one base64url segment, accepting only the unpadded
// URL-safe alphabet and its canonical encoding (JWT-E01): Go's decoder would
// skip CR/LF and tolerate non-zero trailing bits.
func decodeSegment(s string) ([]byte, error) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return nil, fmt.Errorf("%w: invalid base64url character", ErrMalformed)
		}
	}
	// Strict() refuses non-zero trailing bits, so with the alphabet check
	// above every accepted string is the canonical encoding of its bytes.
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%w: invalid or non-canonical base64url", ErrMalformed)
	}
	return b, nil
}

// parseHeader applies the header policy: a strict JSON object whose only
// members are alg (string), kid (non-empty string) and typ (string).
func parseHeader(data []byte, kidOptional bool) (Header, error) {
	if err := checkStrictObject(data); err != nil {
		return Header{}, fmt.Errorf("header: %w", err)
	}
	var h Header
	err := members(data, func(name, raw []byte) error {
		var dst *string
		switch string(name) {
		case "alg":
			dst = &h.Alg
		case "kid":
			dst = &h.Kid
		case "typ":
			dst = &h.Typ
		default:
			// jwk, jku, x5u, x5c, x5t, crit, cty, b64, zip, and anything
			// else: we never follow or honour them (JWT-B01..B03, B07).
			return fmt.Errorf("%w: unsupported header member", ErrHeader)
		}
		if err := jsonString(raw, dst); err != nil {
			return fmt.Errorf("%w: header member is not a string", ErrHeader)
		}
		return nil
	})
	if err != nil {
		return Header{}, err
	}
	if h.Alg == "" {
		return Header{}, fmt.Errorf("%w: alg missing", ErrAlgorithm)
	}
	if (h.Kid == "" && !kidOptional) || len(h.Kid) > maxKidLen {
		return Header{}, fmt.Errorf("%w: kid missing or too long", ErrHeader)
	}
	return h, nil
}

// jsonString decodes raw into dst only if raw is a JSON string (not null).
func jsonString(raw json.RawMessage, dst *string) error {
	if len(raw) < 2 || raw[0] != '"' {
		return errors.New("not a string")
	}
	// Fast path: no escapes, valid UTF-8, no control characters.
	inner := raw[1 : len(raw)-1]
	if raw[len(raw)-1] == '"' && bytes.IndexByte(inner, '\\') < 0 && bytes.IndexByte(inner, '"') < 0 && utf8.Valid(inner) && !hasControl(inner) {
		*dst = string(inner)
		return nil
	}
	return json.Unmarshal(raw, dst)
}

func hasControl(b []byte) bool {
	for _, c := range b {
		if c < 0x20 {
			return true
		}
	}
	return false
}

// typAllowed compares typ with the allowed values per RFC 8725 §3.11.
func typAllowed(typ string, allowed []string) bool {
	if typ == "" {
		return false
	}
	t := trimApplication(typ)
	for _, a := range allowed {
		if strings.EqualFold(t, trimApplication(a)) {
			return true
		}
	}
	return false
}

func trimApplication(s string) string {
	const p = "application/"
	if len(s) >= len(p) && strings.EqualFold(s[:len(p)], p) {
		return s[len(p):]
	}
	return s
}

// verifySignature checks sig over input with key under alg.
func verifySignature(alg string, key crypto.PublicKey, input, sig []byte) error {
	switch alg {
	case RS256, PS256:
		pub, ok := key.(*rsa.PublicKey)
		if !ok || pub.N == nil || pub.N.BitLen() < minRSABits {
			return ErrKey
		}
		if len(sig) != pub.Size() {
			return fmt.Errorf("%w: wrong length", ErrSignature)
		}
		d := sha256.Sum256(input)
		var err error
		if alg == RS256 {
			err = rsa.VerifyPKCS1v15(pub, crypto.SHA256, d[:], sig)
		} else {
			err = rsa.VerifyPSS(pub, crypto.SHA256, d[:], sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
		}
		if err != nil {
			return ErrSignature
		}
		return nil
	case ES256, ES384:
		pub, ok := key.(*ecdsa.PublicKey)
		if !ok {
			return ErrKey
		}
		var digest []byte
		switch {
		case alg == ES256 && pub.Curve == elliptic.P256():
			d := sha256.Sum256(input)
			digest = d[:]
		case alg == ES384 && pub.Curve == elliptic.P384():
			d := sha512.Sum384(input)
			digest = d[:]
		default:
			return ErrKey
		}
		return verifyECDSA(pub, digest, sig)
	case HS256:
		k, ok := key.(HMACKey)
		if !ok || len(k) < MinHMACKeyLen {
			return ErrKey
		}
		m := hmac.New(sha256.New, k)
		m.Write(input)
		if len(sig) != sha256.Size || !hmac.Equal(m.Sum(nil), sig) {
			return ErrSignature
		}
		return nil
	case EdDSA:
		pub, ok := key.(ed25519.PublicKey)
		if !ok || len(pub) != ed25519.PublicKeySize {
			return ErrKey
		}
		if len(sig) != ed25519.SignatureSize || !ed25519.Verify(pub, input, sig) {
			return ErrSignature
		}
		return nil
	default:
		return ErrKey
	}
}

// verifyECDSA checks a JOSE ECDSA signature: r||s, each exactly the curve's
// byte length, with 1 <= r, s <= n-1 (JWT-A06: rejects the all-zero
// "psychic signature", r = s = n and DER encodings).
func verifyECDSA(pub *ecdsa.PublicKey, digest, sig []byte) error {
	params := pub.Curve.Params()
	size := (params.BitSize + 7) / 8
	if len(sig) != 2*size {
		return fmt.Errorf("%w: wrong length", ErrSignature)
	}
	r := new(big.Int).SetBytes(sig[:size])
	s := new(big.Int).SetBytes(sig[size:])
	if r.Sign() <= 0 || s.Sign() <= 0 || r.Cmp(params.N) >= 0 || s.Cmp(params.N) >= 0 {
		return fmt.Errorf("%w: scalar out of range", ErrSignature)
	}
	if !ecdsa.Verify(pub, digest, r, s) {
		return ErrSignature
	}
	return nil
}

// DecodeSegment decodes one JWS segment with the same strict, canonical
// base64url rules as Verify (JWT-E01). Callers that must peek at an
// unverified payload (to pick an issuer) use it and then verify.
func DecodeSegment(s string) ([]byte, error) { return decodeSegment(s) }
