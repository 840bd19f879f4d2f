package idp

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse/internal/storage"
)

// revocationFeed is the slice of storage the revocation cache reads.
type revocationFeed interface {
	RevokedGrantsSince(ctx context.Context, since time.Time) ([]storage.RevokedGrant, error)
	RevokedTokensSince(ctx context.Context, since time.Time) ([]storage.RevokedToken, error)
}

// grantRetention is how long a revoked grant is remembered: longer than the
// longest access token (24 h), so no token of the family outlives the entry.
const grantRetention = 25 * time.Hour

// revocationCache mirrors revoked grants and access tokens from storage so
// that introspection needs no database read. Local revocations apply at
// once; other replicas' within the poll interval (AZ-05-style bound, stated
// in docs/tokens.md).
type revocationCache struct {
	feed   revocationFeed
	now    func() time.Time
	mu     sync.RWMutex
	grants map[string]time.Time // grant id -> revoked at
	tokens map[string]time.Time // jti -> token expiry
	since  time.Time
}

func newRevocationCache(f revocationFeed, now func() time.Time) *revocationCache {
	return &revocationCache{feed: f, now: now, grants: map[string]time.Time{}, tokens: map[string]time.Time{}}
}

// refresh loads revocations newer than the last poll (with overlap, so a
// slow commit is not missed) and prunes entries that can no longer matter.
func (c *revocationCache) refresh(ctx context.Context) error {
	now := c.now()
	c.mu.RLock()
	since := c.since
	c.mu.RUnlock()
	if since.IsZero() {
		since = now.Add(-grantRetention)
	} else {
		since = since.Add(-10 * time.Second)
	}
	gs, err := c.feed.RevokedGrantsSince(ctx, since)
	if err != nil {
		return fmt.Errorf("revoked grants: %w", err)
	}
	ts, err := c.feed.RevokedTokensSince(ctx, since)
	if err != nil {
		return fmt.Errorf("revoked tokens: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, g := range gs {
		c.grants[g.GrantID] = g.RevokedAt
	}
	for _, t := range ts {
		c.tokens[t.JTI] = t.ExpiresAt
	}
	for id, at := range c.grants {
		if now.Sub(at) > grantRetention {
			delete(c.grants, id)
		}
	}
	for jti, exp := range c.tokens {
		if now.After(exp) {
			delete(c.tokens, jti)
		}
	}
	c.since = now
	return nil
}

func (c *revocationCache) addGrant(id string, at time.Time) {
	c.mu.Lock()
	c.grants[id] = at
	c.mu.Unlock()
}

func (c *revocationCache) addToken(jti string, exp time.Time) {
	c.mu.Lock()
	c.tokens[jti] = exp
	c.mu.Unlock()
}

func (c *revocationCache) isRevoked(grantID, jti string) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if grantID != "" {
		if _, ok := c.grants[grantID]; ok {
			return true
		}
	}
	if jti != "" {
		if _, ok := c.tokens[jti]; ok {
			return true
		}
	}
	return false
}
