package ca

import (
	"crypto"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"time"

	"github.com/gatehouse/gatehouse/internal/secret"
	"github.com/gatehouse/gatehouse/internal/storage"
)

// ErrUnseal is returned when a stored CA private key cannot be decrypted: the
// KEK is wrong or the stored bytes were altered (or moved to another record).
var ErrUnseal = errors.New("ca: cannot unseal a CA private key (wrong key-encryption key or corrupted key data)")

// authority is a loaded CA certificate: the storage record, the parsed
// certificate and, once needed, the unsealed private key.
type authority struct {
	rec    storage.CAAuthority // Sealed is kept: the key is unsealed lazily
	cert   *x509.Certificate
	signer crypto.Signer // nil until unsealed (always set for the upstream root)
	// issuer is the id of the root that signed this intermediate, or "" when
	// none of the known roots did (checked once, when first seen).
	issuer string
	// issuerChecked records which roots were tried for issuer.
	issuerChecked map[string]bool
}

// upstreamID is the pseudo id of an imported upstream root.
const upstreamID = "upstream"

// newAEAD returns AES-256-GCM under kek.
func newAEAD(kek []byte) (cipher.AEAD, error) {
	aead, err := secret.NewAEAD(kek)
	if err != nil {
		return nil, fmt.Errorf("ca: %w", err)
	}
	return aead, nil
}

// seal encrypts plaintext: nonce || ciphertext, with the authority id as
// additional data so a sealed key cannot be moved to another record.
func seal(aead cipher.AEAD, id string, plaintext []byte) []byte {
	return secret.Seal(aead, id, plaintext)
}

func unseal(aead cipher.AEAD, id string, sealed []byte) ([]byte, error) {
	pt, err := secret.Open(aead, id, sealed)
	if err != nil {
		return nil, ErrUnseal
	}
	return pt, nil
}

// authorityID is the lower-case hex SHA-256 of a certificate.
func authorityID(der []byte) string {
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

// parseAuthority parses a stored record's certificate and cross-checks its id.
func parseAuthority(rec storage.CAAuthority) (*authority, error) {
	cert, err := x509.ParseCertificate(rec.CertDER)
	if err != nil {
		return nil, fmt.Errorf("ca: %s authority %d: parse certificate: %w", rec.Kind, rec.Generation, err)
	}
	if authorityID(rec.CertDER) != rec.ID {
		return nil, fmt.Errorf("ca: %s authority %d: id does not match the certificate", rec.Kind, rec.Generation)
	}
	if !cert.IsCA || !cert.BasicConstraintsValid {
		return nil, fmt.Errorf("ca: %s authority %d: certificate is not a CA", rec.Kind, rec.Generation)
	}
	return &authority{rec: rec, cert: cert}, nil
}

// unsealKey unseals a's private key and checks it matches the certificate.
func (a *authority) unsealKey(aead cipher.AEAD) error {
	if a.signer != nil {
		return nil
	}
	der, err := unseal(aead, a.rec.ID, a.rec.Sealed)
	if err != nil {
		return fmt.Errorf("%w (%s authority %d)", err, a.rec.Kind, a.rec.Generation)
	}
	defer clear(der)
	parsed, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return fmt.Errorf("ca: %s authority %d: parse private key: %w", a.rec.Kind, a.rec.Generation, err)
	}
	signer, ok := parsed.(crypto.Signer)
	if !ok || !publicKeysEqual(signer.Public(), a.cert.PublicKey) {
		return fmt.Errorf("ca: %s authority %d: private key does not match the certificate", a.rec.Kind, a.rec.Generation)
	}
	a.signer = signer
	return nil
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	eq, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && eq.Equal(b)
}

// lifetimeReached reports whether now is at or after start + num/den of
// the authority's life, from its start (lifeStart) to NotAfter.
func lifetimeReached(rec storage.CAAuthority, now time.Time, num, den int64) bool {
	start := lifeStart(rec)
	life := rec.NotAfter.Sub(start)
	return !now.Before(start.Add(life / time.Duration(den) * time.Duration(num)))
}

// lifeStart is when the authority's life began for the rotation schedule:
// its creation (CreatedAt), not its NotBefore, which is backdated by
// Config.Backdate (30 s) — with a short TTL, half-life measured from
// NotBefore would already be past at creation and every tick would rotate.
// An upstream root (no CreatedAt) starts at its NotBefore.
func lifeStart(rec storage.CAAuthority) time.Time {
	if rec.CreatedAt.IsZero() || rec.CreatedAt.Before(rec.NotBefore) || !rec.CreatedAt.Before(rec.NotAfter) {
		return rec.NotBefore
	}
	return rec.CreatedAt
}

// randomSerial returns a positive 128-bit random serial number.
func randomSerial() *big.Int {
	b := make([]byte, 16)
	for {
		_, _ = rand.Read(b)
		n := new(big.Int).SetBytes(b)
		if n.Sign() > 0 {
			return n
		}
	}
}

// randomHex returns n random bytes as lower-case hex.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// newAuthority generates a P-256 key and a CA certificate of kind and
// generation: self-signed for a root, signed by parent for an intermediate.
// The returned record is prepared, its key sealed under aead.
func (c *CA) newAuthority(kind string, gen int64, parent *authority, now time.Time) (*authority, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("ca: generate %s key: %w", kind, err)
	}
	notBefore := now.Add(-c.cfg.Backdate).Truncate(time.Second)
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(),
		Subject: pkix.Name{
			CommonName:   fmt.Sprintf("Gatehouse %s CA %d %s", kind, gen, randomHex(4)),
			Organization: []string{"Gatehouse"},
		},
		NotBefore:             notBefore,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		URIs:                  []*url.URL{c.cfg.TrustDomain.ID().URL()},
	}
	var issuerCert *x509.Certificate
	var issuerKey crypto.Signer
	switch kind {
	case storage.AuthorityRoot:
		tmpl.NotAfter = now.Add(c.cfg.RootTTL).Truncate(time.Second)
		tmpl.MaxPathLen = 1
		issuerCert, issuerKey = tmpl, key
	case storage.AuthorityIntermediate:
		if parent == nil || parent.signer == nil {
			return nil, fmt.Errorf("ca: no active root to sign the intermediate")
		}
		tmpl.NotAfter = now.Add(c.cfg.IntermediateTTL).Truncate(time.Second)
		if tmpl.NotAfter.After(parent.cert.NotAfter) {
			tmpl.NotAfter = parent.cert.NotAfter
		}
		tmpl.MaxPathLen = 0
		tmpl.MaxPathLenZero = true
		issuerCert, issuerKey = parent.cert, parent.signer
	default:
		return nil, fmt.Errorf("ca: unknown authority kind %q", kind)
	}
	if !tmpl.NotAfter.After(now) {
		return nil, fmt.Errorf("ca: the %s would already be expired (issuer expires %s)", kind, tmpl.NotAfter.Format(time.RFC3339))
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, issuerCert, key.Public(), issuerKey)
	if err != nil {
		return nil, fmt.Errorf("ca: create %s certificate: %w", kind, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("ca: parse %s certificate: %w", kind, err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("ca: encode %s key: %w", kind, err)
	}
	defer clear(pkcs8)
	id := authorityID(der)
	a := &authority{
		rec: storage.CAAuthority{
			ID:         id,
			Kind:       kind,
			Generation: gen,
			CertDER:    der,
			Sealed:     seal(c.aead, id, pkcs8),
			State:      storage.AuthorityPrepared,
			NotBefore:  cert.NotBefore,
			NotAfter:   cert.NotAfter,
			CreatedAt:  now,
		},
		cert:   cert,
		signer: key,
	}
	if parent != nil {
		a.issuer = parent.rec.ID
	}
	return a, nil
}

// checkSigningKey reports whether pub is an accepted key: ECDSA P-256/P-384,
// Ed25519 or RSA 2048–8192 bits. The error wraps ErrWeakKey.
func checkSigningKey(pub crypto.PublicKey) error {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k == nil || k.Curve == nil {
			return fmt.Errorf("%w: empty ECDSA key", ErrWeakKey)
		}
		if k.Curve != elliptic.P256() && k.Curve != elliptic.P384() {
			return fmt.Errorf("%w: ECDSA curve %s", ErrWeakKey, k.Curve.Params().Name)
		}
		if k.X == nil || k.Y == nil {
			return fmt.Errorf("%w: empty ECDSA key", ErrWeakKey)
		}
		if _, err := k.ECDH(); err != nil { // the point must be on the curve
			return fmt.Errorf("%w: invalid ECDSA key", ErrWeakKey)
		}
		return nil
	case ed25519.PublicKey:
		if len(k) != ed25519.PublicKeySize {
			return fmt.Errorf("%w: Ed25519 key of %d bytes", ErrWeakKey, len(k))
		}
		return nil
	case *rsa.PublicKey:
		if k == nil || k.N == nil {
			return fmt.Errorf("%w: empty RSA key", ErrWeakKey)
		}
		if bits := k.N.BitLen(); bits < 2048 || bits > 8192 {
			return fmt.Errorf("%w: RSA key of %d bits", ErrWeakKey, bits)
		}
		if k.E < 3 || k.E%2 == 0 {
			return fmt.Errorf("%w: RSA public exponent", ErrWeakKey)
		}
		return nil
	case nil:
		return fmt.Errorf("%w: no public key", ErrWeakKey)
	}
	return fmt.Errorf("%w: key type %T", ErrWeakKey, pub)
}
