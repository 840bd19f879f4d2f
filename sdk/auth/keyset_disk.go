package auth

// This file holds the key set's document handling: the strict JWKS parser
// and the on-disk JWKS cache.

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/gatehouse/gatehouse/sdk/jwtx"
)

const (
	// jwksMaxKeys bounds the keys examined in one document.
	jwksMaxKeys = 100
	// jwksMaxKidLen matches jwtx's kid bound: a longer kid can never match.
	jwksMaxKidLen  = 256
	jwksMinRSABits = 2048
	// jwksMaxRSABits bounds verification cost.
	jwksMaxRSABits = 8192
	// jwksMaxDepth bounds JSON nesting (a JWKS needs 3 levels).
	jwksMaxDepth = 32
)

// jwkNote says why one key of a document was skipped. It never holds key
// material; kid is truncated.
type jwkNote struct {
	index      int
	kid        string
	reason     string
	suspicious bool // private members, duplicate kid, symmetric key
}

// jwkPublicMembers are the only members handed to go-jose, under their exact
// names, so that its case-insensitive matching never sees a variant.
var jwkPublicMembers = [...]string{"kty", "crv", "x", "y", "n", "e", "x5c", "x5t", "x5t#S256"}

// parseJWKS turns a JWKS document into usable keys, each bound to one
// algorithm from allowed. The document must be strict JSON (valid UTF-8, one
// object, no duplicate or case-variant members, bounded depth) with a "keys"
// array. A key is skipped (with a note) when it lacks a unique non-empty
// kid, has use other than "sig" or key_ops without "verify", carries private
// or symmetric material (JWT-G01), is an RSA key outside 2048..8192 bits, an
// unsupported curve or type, or when its alg (given, or inferred from the
// key type) does not fit the key or is not allowed. Both keys sharing a kid
// are skipped (keys skipped for another reason do not count). A document with no usable key is an error (RL-02): the result
// is never empty without an error.
func parseJWKS(data []byte, allowed []string) (map[string]keyEntry, []jwkNote, error) {
	doc, err := jwksStrictObject(data)
	if err != nil {
		return nil, nil, err
	}
	var raws []json.RawMessage
	if rk, ok := doc["keys"]; !ok || json.Unmarshal(rk, &raws) != nil || raws == nil {
		return nil, nil, fmt.Errorf("%w: \"keys\" missing or not an array", errJWKSDocument)
	}
	var notes []jwkNote
	if len(raws) > jwksMaxKeys {
		notes = append(notes, jwkNote{index: jwksMaxKeys, reason: fmt.Sprintf("only the first %d of %d keys examined", jwksMaxKeys, len(raws))})
		raws = raws[:jwksMaxKeys]
	}
	keys := make(map[string]keyEntry, len(raws))
	dups := make(map[string]bool)
	for i, raw := range raws {
		kid, e, reason, suspicious := parseJWK(raw, allowed)
		if reason != "" {
			notes = append(notes, jwkNote{index: i, kid: jwksTruncate(kid, 64), reason: reason, suspicious: suspicious})
			continue
		}
		if _, seen := keys[kid]; seen {
			dups[kid] = true
			continue
		}
		keys[kid] = e
	}
	for kid := range dups {
		notes = append(notes, jwkNote{index: -1, kid: jwksTruncate(kid, 64), reason: "duplicate kid: every key with it ignored", suspicious: true})
		delete(keys, kid)
	}
	if len(keys) == 0 {
		return nil, notes, errJWKSNoKeys
	}
	return keys, notes, nil
}

// parseJWK checks one JWK. On success reason is empty.
func parseJWK(raw json.RawMessage, allowed []string) (kid string, e keyEntry, reason string, suspicious bool) {
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil || m == nil {
		return "", e, "not an object", false
	}
	kid, _ = jwksString(m["kid"])
	kty, _ := jwksString(m["kty"])
	if kty == "oct" {
		return kid, e, "symmetric key", true
	}
	for name := range m {
		switch strings.ToLower(name) {
		case "d", "p", "q", "k", "dp", "dq", "qi", "oth", "priv":
			return kid, e, "private key member present (JWT-G01)", true
		}
	}
	if kid == "" {
		return "", e, "missing kid", false
	}
	if len(kid) > jwksMaxKidLen {
		return kid, e, "kid too long", false
	}
	if v, ok := m["use"]; ok {
		if use, ok := jwksString(v); !ok || use != "sig" {
			return kid, e, "use is not sig", false
		}
	}
	if v, ok := m["key_ops"]; ok {
		var ops []string
		if json.Unmarshal(v, &ops) != nil || !slices.Contains(ops, "verify") {
			return kid, e, "key_ops lacks verify", false
		}
	}
	alg := ""
	if v, ok := m["alg"]; ok {
		if alg, ok = jwksString(v); !ok || alg == "" {
			return kid, e, "alg is not a string", false
		}
	}
	canon := make(map[string]json.RawMessage, len(jwkPublicMembers))
	for _, n := range jwkPublicMembers {
		if v, ok := m[n]; ok {
			canon[n] = v
		}
	}
	b, err := json.Marshal(canon)
	if err != nil {
		return kid, e, "invalid key", false
	}
	var jwk jose.JSONWebKey
	if err := jwk.UnmarshalJSON(b); err != nil || !jwk.IsPublic() || !jwk.Valid() {
		return kid, e, "invalid or unsupported key", false
	}
	var fits []string // algorithms the key type allows; the first is the default
	switch pk := jwk.Key.(type) {
	case *rsa.PublicKey:
		if bits := pk.N.BitLen(); bits < jwksMinRSABits || bits > jwksMaxRSABits {
			return kid, e, fmt.Sprintf("RSA key of %d bits", bits), false
		}
		fits = []string{jwtx.RS256, jwtx.PS256}
	case *ecdsa.PublicKey:
		switch pk.Curve {
		case elliptic.P256():
			fits = []string{jwtx.ES256}
		case elliptic.P384():
			fits = []string{jwtx.ES384}
		default:
			return kid, e, "unsupported curve", false
		}
	case ed25519.PublicKey:
		fits = []string{jwtx.EdDSA}
	default:
		return kid, e, "unsupported key type", false
	}
	if alg == "" {
		alg = fits[0]
	} else if !slices.Contains(fits, alg) {
		return kid, e, "alg does not fit the key type", false
	}
	if !slices.Contains(allowed, alg) {
		return kid, e, "algorithm not allowed", false
	}
	return kid, keyEntry{key: jwk.Key, alg: alg}, "", false
}

// jwksStrictObject checks data with jwtx.CheckObject and returns its
// top-level members.
func jwksStrictObject(data []byte) (map[string]json.RawMessage, error) {
	if err := jwtx.CheckObject(data); err != nil {
		return nil, fmt.Errorf("%w: %w", errJWKSDocument, err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("%w: %w", errJWKSDocument, err)
	}
	return m, nil
}

// jwksString decodes a JSON string member; ok is false when absent or not a
// string.
func jwksString(v json.RawMessage) (string, bool) {
	if len(v) == 0 || v[0] != '"' {
		return "", false
	}
	var s string
	if json.Unmarshal(v, &s) != nil {
		return "", false
	}
	return s, true
}

// jwksCacheFile is the on-disk cache wrapper. The issuer binds the cached
// keys to their issuer (a cache file shared by mistake is not used for
// another issuer, JWT-B06).
type jwksCacheFile struct {
	Issuer    string          `json:"issuer"`
	FetchedAt time.Time       `json:"fetched_at"`
	JWKS      json.RawMessage `json:"jwks"`
}

// loadCache installs the keys of cfg.CacheFile when it exists and parses to
// a usable set for this issuer. Any problem is logged and ignored.
func (k *keySet) loadCache() {
	path := k.cfg.CacheFile
	if path == "" {
		return
	}
	keys, fetchedAt, err := jwksReadCache(path, k.cfg.Issuer, k.cfg.Algorithms)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			k.log.Debug("no JWKS disk cache yet", "path", path)
		} else {
			k.log.Warn("JWKS disk cache ignored", "path", path, "error", err)
		}
		return
	}
	k.install(keys)
	k.log.Info("JWKS loaded from disk cache", "path", path, "keys", len(keys), "fetched_at", fetchedAt)
}

// jwksReadCache reads and validates a cache file.
func jwksReadCache(path, issuer string, allowed []string) (map[string]keyEntry, time.Time, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, time.Time{}, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, 2*jwksMaxBody+1))
	if err != nil {
		return nil, time.Time{}, err
	}
	if len(data) > 2*jwksMaxBody {
		return nil, time.Time{}, fmt.Errorf("%w: cache file too large", errJWKSDocument)
	}
	m, err := jwksStrictObject(data)
	if err != nil {
		return nil, time.Time{}, err
	}
	if iss, ok := jwksString(m["issuer"]); !ok || iss != issuer {
		return nil, time.Time{}, fmt.Errorf("%w: cache file is for another issuer", errJWKSDocument)
	}
	var fetchedAt time.Time
	if v, ok := m["fetched_at"]; ok {
		_ = json.Unmarshal(v, &fetchedAt)
	}
	keys, _, err := parseJWKS(m["jwks"], allowed)
	if err != nil {
		return nil, time.Time{}, err
	}
	return keys, fetchedAt, nil
}

// writeCache stores the raw JWKS document atomically: a 0600 temp file in
// the same directory, fsync, rename, then a best-effort directory fsync.
// Failures are logged, never fatal. Only called with a usable document.
func (k *keySet) writeCache(jwks []byte) {
	path := k.cfg.CacheFile
	if path == "" {
		return
	}
	data, err := json.Marshal(jwksCacheFile{Issuer: k.cfg.Issuer, FetchedAt: k.cfg.Now().UTC(), JWKS: jwks})
	if err == nil {
		err = jwksWriteFileAtomic(path, data)
	}
	if err != nil {
		k.log.Warn("writing JWKS disk cache failed", "path", path, "error", err)
		return
	}
	k.log.Debug("JWKS disk cache written", "path", path)
}

func jwksWriteFileAtomic(path string, data []byte) (err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	if err = f.Chmod(0o600); err != nil {
		return err
	}
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp, path); err != nil {
		return err
	}
	if d, derr := os.Open(dir); derr == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}
