package caserver

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"sync"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// maxVerified bounds the verification cache: the renewal certificates of
// that many workloads, a few hundred bytes each.
const maxVerified = 10000

// verifyCache remembers the client certificate chains that verified against
// the bundle, so that a workload renewing (or fetching the policy) over a
// keep-alive connection does not pay for the chain's signature checks on
// every request.
//
// An entry is keyed by the SHA-256 of the presented chain (every
// certificate's full DER, length-prefixed): no other chain can hit it. It
// keeps the validity window of the chain that verified (the latest
// NotBefore and the earliest NotAfter of leaf, intermediates and root);
// signatures do not depend on time, so the same chain verifies again at any
// instant inside that window, against the same bundle. The cache belongs to
// one bundle, identified by its sequence number and its root certificates
// (the very objects: the CA shares them between snapshots, and the cache
// holds them so they cannot be reused): any change empties it. Only
// successes are cached; the callers still run every check that is not a
// signature (ID, trust domain, SANs, usages, the leaf's dates) each time.
type verifyCache struct {
	mu      sync.Mutex
	seq     uint64
	roots   []*x509.Certificate
	entries map[[sha256.Size]byte]verified
}

// verified is a chain that verified against the cache's bundle.
type verified struct {
	id        spiffeid.ID
	notBefore time.Time // the latest NotBefore of the verified chain
	notAfter  time.Time // the earliest NotAfter of the verified chain
}

func newVerifyCache() *verifyCache {
	return &verifyCache{entries: map[[sha256.Size]byte]verified{}}
}

// chainKey is the cache key of a presented chain.
func chainKey(certs []*x509.Certificate) [sha256.Size]byte {
	h := sha256.New()
	var n [4]byte
	for _, c := range certs {
		binary.BigEndian.PutUint32(n[:], uint32(len(c.Raw)))
		h.Write(n[:])
		h.Write(c.Raw)
	}
	var k [sha256.Size]byte
	h.Sum(k[:0])
	return k
}

// lookup reports whether the chain with key k verified against bundle
// (sequence seq) and that result holds at now, and for which ID.
func (vc *verifyCache) lookup(k [sha256.Size]byte, bundle *x509bundle.Bundle, seq uint64, now time.Time) (spiffeid.ID, bool) {
	vc.mu.Lock()
	defer vc.mu.Unlock()
	if !vc.sameBundle(bundle, seq) {
		return spiffeid.ID{}, false
	}
	v, ok := vc.entries[k]
	if !ok {
		return spiffeid.ID{}, false
	}
	if now.Before(v.notBefore) || now.After(v.notAfter) {
		delete(vc.entries, k)
		return spiffeid.ID{}, false
	}
	return v.id, true
}

// store records that the chain with key k verified against bundle
// (sequence seq) as chain, with ID id. A new bundle empties the cache; a
// full cache drops one arbitrary entry.
func (vc *verifyCache) store(k [sha256.Size]byte, bundle *x509bundle.Bundle, seq uint64, id spiffeid.ID, chain []*x509.Certificate) {
	if len(chain) == 0 {
		return
	}
	v := verified{id: id, notBefore: chain[0].NotBefore, notAfter: chain[0].NotAfter}
	for _, c := range chain[1:] {
		if c.NotBefore.After(v.notBefore) {
			v.notBefore = c.NotBefore
		}
		if c.NotAfter.Before(v.notAfter) {
			v.notAfter = c.NotAfter
		}
	}
	vc.mu.Lock()
	defer vc.mu.Unlock()
	if !vc.sameBundle(bundle, seq) {
		clear(vc.entries)
		vc.seq, vc.roots = seq, bundle.X509Authorities()
	}
	if _, ok := vc.entries[k]; !ok && len(vc.entries) >= maxVerified {
		for old := range vc.entries { // map order is random: a random eviction
			delete(vc.entries, old)
			break
		}
	}
	vc.entries[k] = v
}

// sameBundle reports whether bundle (sequence seq) is the cache's bundle:
// the same sequence and the same root certificate objects, in order.
func (vc *verifyCache) sameBundle(bundle *x509bundle.Bundle, seq uint64) bool {
	if seq != vc.seq || vc.roots == nil {
		return false
	}
	roots := bundle.X509Authorities()
	if len(roots) != len(vc.roots) {
		return false
	}
	for i, r := range roots {
		if r != vc.roots[i] {
			return false
		}
	}
	return true
}

// len returns the number of cached chains.
func (vc *verifyCache) len() int {
	vc.mu.Lock()
	defer vc.mu.Unlock()
	return len(vc.entries)
}
