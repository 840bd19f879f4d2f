package ca

import (
	"crypto"
	"crypto/x509"
	"errors"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// Config is the CA's configuration. Zero durations take the defaults noted.
type Config struct {
	TrustDomain     spiffeid.TrustDomain
	KEK             []byte        // 32-byte key-encryption key sealing the private keys
	RootTTL         time.Duration // generated root lifetime (default 8760h)
	IntermediateTTL time.Duration // default 24h, never past the root
	SVIDTTL         time.Duration // maximum and default SVID lifetime (default 1h)
	Backdate        time.Duration // NotBefore = now - Backdate (default 30s)
	RefreshInterval time.Duration // reload from storage + rotation tick (default 10s)
	Upstream        *Upstream     // nil: generate the root
}

// Upstream is an imported root: its certificate and private key. It is never
// stored and never rotated by the CA.
type Upstream struct {
	Cert *x509.Certificate
	Key  crypto.Signer
}

// SVID is an issued X.509 SVID: the leaf first, then the intermediate.
type SVID struct {
	ID           spiffeid.ID
	Certificates []*x509.Certificate
	NotAfter     time.Time
}

// Errors with public messages; causes are wrapped with %w.
var (
	ErrBadCSR   = errors.New("ca: the CSR is malformed or its signature does not verify")
	ErrWeakKey  = errors.New("ca: unsupported or weak public key (accepted: ECDSA P-256/P-384, Ed25519, RSA 2048-8192)")
	ErrNotReady = errors.New("ca: not ready")
	ErrBadID    = errors.New("ca: the SPIFFE ID is not in the CA's trust domain or has no path")
)
