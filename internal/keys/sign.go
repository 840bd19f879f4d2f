package keys

import (
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// maxTypLen bounds the typ header value accepted by Sign.
const maxTypLen = 64

// Sign returns a compact JWS of claims (marshalled with encoding/json)
// signed by the current key. The header holds alg, kid and, unless typ is
// empty, typ (letters, digits and "+-./" only). It touches no storage.
func (m *Manager) Sign(typ string, claims any) (string, error) {
	if !validTyp(typ) {
		return "", errors.New("keys: invalid typ")
	}
	k := m.snap.Load().signing(m.now())
	if k == nil {
		return "", ErrNoSigningKey
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("keys: encode claims: %w", err)
	}
	return k.compact(typ, payload)
}

func validTyp(typ string) bool {
	if len(typ) > maxTypLen {
		return false
	}
	for i := 0; i < len(typ); i++ {
		c := typ[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '+' || c == '-' || c == '.' || c == '/') {
			return false
		}
	}
	return true
}

// Algorithm returns the algorithm of the current signing key, or the
// configured algorithm when none is loaded.
func (m *Manager) Algorithm() string {
	if k := m.snap.Load().signing(m.now()); k != nil {
		return k.rec.Algorithm
	}
	return m.cfg.Algorithm
}

// JWKS returns the published public keys (pending, active and retired but
// unexpired; never revoked) and the max-age for its Cache-Control header.
func (m *Manager) JWKS() (jose.JSONWebKeySet, time.Duration) {
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{}}
	if s := m.snap.Load(); s != nil {
		now := m.now()
		for _, k := range s.keys {
			if published(k, now) {
				set.Keys = append(set.Keys, k.jwk)
			}
		}
	}
	return set, m.cfg.JWKSMaxAge
}

// PublicKey returns a published key and its algorithm; its signature fits
// jwtx.KeyFunc.
func (m *Manager) PublicKey(kid string) (crypto.PublicKey, string, bool) {
	s := m.snap.Load()
	if s == nil {
		return nil, "", false
	}
	now := m.now()
	for _, k := range s.keys {
		if k.rec.ID == kid && published(k, now) {
			return k.pub, k.rec.Algorithm, true
		}
	}
	return nil, "", false
}

// Ready reports whether a signing key is loaded.
func (m *Manager) Ready() bool {
	return m.snap.Load().signing(m.now()) != nil
}
