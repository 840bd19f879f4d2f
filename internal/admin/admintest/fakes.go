// Package admintest provides in-memory fakes of the admin API's dependencies
// and a ready test server, for the tests of the admin client and CLI.
package admintest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse/internal/admin"
	"github.com/gatehouse/gatehouse/internal/storage"
)

// Store is an in-memory ClientStore, UserStore and admin.JoinTokenStore that
// honours the contract's side effects: disabling a user or changing their
// password ends their sessions (counted by EndedFor). It is safe for
// concurrent use.
type Store struct {
	mu         sync.Mutex
	clients    map[string]storage.Client
	users      map[string]storage.User
	tokens     map[string]storage.JoinToken // join tokens by hash
	ended      map[string]int               // user id -> times sessions/grants were ended
	deleted    []string                     // clients deleted (grants revoked)
	fail       error                        // returned by every call when set
	revoked    map[string]time.Time         // revoked SPIFFE IDs
	revokeFail error                        // returned by RevokeSPIFFEID when set
}

// NewStore returns an empty Store.
func NewStore() *Store {
	return &Store{clients: map[string]storage.Client{}, users: map[string]storage.User{},
		tokens: map[string]storage.JoinToken{}, ended: map[string]int{}}
}

// JoinTokens returns the stored join tokens ordered by hash.
func (s *Store) JoinTokens() []storage.JoinToken {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []storage.JoinToken
	for _, t := range s.tokens {
		out = append(out, t)
	}
	slices.SortFunc(out, func(a, b storage.JoinToken) int { return cmpStr(a.Hash, b.Hash) })
	return out
}

func (s *Store) CreateJoinToken(_ context.Context, t storage.JoinToken) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return s.fail
	}
	if t.Hash == "" || t.SPIFFEID == "" || !t.ExpiresAt.After(t.CreatedAt) || !t.UsedAt.IsZero() {
		return fmt.Errorf("join token: %w", storage.ErrInvalid)
	}
	if _, ok := s.tokens[t.Hash]; ok {
		return fmt.Errorf("join token: %w", storage.ErrAlreadyExists)
	}
	s.tokens[t.Hash] = t
	return nil
}

// Client returns a stored client (under the lock).
func (s *Store) Client(id string) (storage.Client, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.clients[id]
	return c, ok
}

// User returns a stored user (under the lock).
func (s *Store) User(id string) (storage.User, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[id]
	return u, ok
}

// EndedFor reports how many times the user's sessions and grants were ended.
func (s *Store) EndedFor(id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ended[id]
}

// DeletedClients returns the ids of deleted clients, in order.
func (s *Store) DeletedClients() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.deleted)
}

// Len returns the number of stored clients and users.
func (s *Store) Len() (clients, users int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.clients), len(s.users)
}

// SetFail makes every later call return err (nil to stop).
func (s *Store) SetFail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = err
}

func (s *Store) CreateClient(_ context.Context, c storage.Client) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return s.fail
	}
	if _, ok := s.clients[c.ID]; ok {
		return fmt.Errorf("client %s: %w", c.ID, storage.ErrAlreadyExists)
	}
	if err := s.spiffeTaken(c.SPIFFEID, c.ID); err != nil {
		return err
	}
	s.clients[c.ID] = c
	return nil
}

func (s *Store) GetClient(_ context.Context, id string) (storage.Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return storage.Client{}, s.fail
	}
	c, ok := s.clients[id]
	if !ok {
		return storage.Client{}, storage.ErrNotFound
	}
	return c, nil
}

func (s *Store) ListClients(context.Context) ([]storage.Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return nil, s.fail
	}
	var out []storage.Client
	for _, c := range s.clients {
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b storage.Client) int { return cmpStr(a.ID, b.ID) })
	return out, nil
}

func (s *Store) UpdateClient(_ context.Context, id string, fn func(storage.Client) (storage.Client, error)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return s.fail
	}
	c, ok := s.clients[id]
	if !ok {
		return storage.ErrNotFound
	}
	n, err := fn(c)
	if err != nil {
		return fmt.Errorf("update client: %w", err)
	}
	n.ID = id
	if err := s.spiffeTaken(n.SPIFFEID, id); err != nil {
		return err
	}
	s.clients[id] = n
	return nil
}

func (s *Store) DeleteClient(_ context.Context, id string, _ time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return s.fail
	}
	if _, ok := s.clients[id]; !ok {
		return storage.ErrNotFound
	}
	delete(s.clients, id)
	s.deleted = append(s.deleted, id)
	return nil
}

func (s *Store) CreateUser(_ context.Context, u storage.User) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return s.fail
	}
	for _, o := range s.users {
		if o.ID == u.ID || o.Username == u.Username || (u.Email != "" && o.Email == u.Email) {
			return storage.ErrAlreadyExists
		}
	}
	s.users[u.ID] = u
	return nil
}

func (s *Store) GetUser(_ context.Context, id string) (storage.User, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return storage.User{}, s.fail
	}
	u, ok := s.users[id]
	if !ok {
		return storage.User{}, storage.ErrNotFound
	}
	return u, nil
}

func (s *Store) GetUserByUsername(_ context.Context, name string) (storage.User, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, u := range s.users {
		if u.Username == name {
			return u, nil
		}
	}
	return storage.User{}, storage.ErrNotFound
}

func (s *Store) ListUsers(context.Context) ([]storage.User, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return nil, s.fail
	}
	var out []storage.User
	for _, u := range s.users {
		out = append(out, u)
	}
	slices.SortFunc(out, func(a, b storage.User) int { return cmpStr(a.Username, b.Username) })
	return out, nil
}

func (s *Store) UpdateUser(_ context.Context, id string, fn func(storage.User) (storage.User, error)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return s.fail
	}
	u, ok := s.users[id]
	if !ok {
		return storage.ErrNotFound
	}
	n, err := fn(u)
	if err != nil {
		return fmt.Errorf("update user: %w", err)
	}
	for _, o := range s.users {
		if o.ID != id && n.Email != "" && o.Email == n.Email {
			return storage.ErrAlreadyExists
		}
	}
	n.ID = id
	if n.Disabled || n.PasswordHash != u.PasswordHash {
		s.ended[id]++
	}
	s.users[id] = n
	return nil
}

func (s *Store) DeleteUser(_ context.Context, id string, _ time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return s.fail
	}
	if _, ok := s.users[id]; !ok {
		return storage.ErrNotFound
	}
	delete(s.users, id)
	s.ended[id]++
	return nil
}

func cmpStr(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// KeyAdmin is an in-memory admin.KeyAdmin.
type KeyAdmin struct {
	mu   sync.Mutex
	keys []admin.KeyInfo
	fail error
	// Now is the clock for the times of new and revoked keys.
	Now func() time.Time
}

// SetFail makes every later call return err (nil to stop).
func (k *KeyAdmin) SetFail(err error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.fail = err
}

// Keys lists the keys.
func (k *KeyAdmin) Keys(context.Context) ([]admin.KeyInfo, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.fail != nil {
		return nil, k.fail
	}
	return slices.Clone(k.keys), nil
}

// Rotate retires the active key and adds a new active one.
func (k *KeyAdmin) Rotate(context.Context) (admin.KeyInfo, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.fail != nil {
		return admin.KeyInfo{}, k.fail
	}
	now := k.Now()
	for i := range k.keys {
		if k.keys[i].State == "active" {
			k.keys[i].State = "retired"
			k.keys[i].RetiredAt = now
		}
	}
	n := admin.KeyInfo{
		ID:         fmt.Sprintf("k%d", len(k.keys)+1),
		Algorithm:  "ES256",
		Generation: int64(len(k.keys) + 1),
		State:      "active",
		CreatedAt:  now,
		ActivateAt: now,
	}
	k.keys = append(k.keys, n)
	return n, nil
}

// Revoke marks a key revoked; unknown kids give storage.ErrNotFound.
func (k *KeyAdmin) Revoke(_ context.Context, kid string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.fail != nil {
		return k.fail
	}
	for i := range k.keys {
		if k.keys[i].ID == kid {
			k.keys[i].State = "revoked"
			k.keys[i].RevokedAt = k.Now()
			return nil
		}
	}
	return fmt.Errorf("key %q: %w", kid, storage.ErrNotFound)
}

// Hasher is a deterministic stand-in for Argon2id.
type Hasher struct{ Fail error }

// Hash returns a fake PHC string derived from SHA-256 of pw.
func (f Hasher) Hash(pw string) (string, error) {
	if f.Fail != nil {
		return "", f.Fail
	}
	s := sha256.Sum256([]byte(pw))
	return "$argon2id$fake$" + hex.EncodeToString(s[:]), nil
}

// MinLenPolicy refuses passwords under 8 bytes.
func MinLenPolicy(pw string) error {
	if len(pw) < 8 {
		return errors.New("must be at least 8 characters")
	}
	return nil
}

// spiffeTaken is ErrAlreadyExists when another client than except has the
// non-empty SPIFFE ID id (the unique index of the real stores).
func (s *Store) spiffeTaken(id, except string) error {
	if id == "" {
		return nil
	}
	for cid, c := range s.clients {
		if cid != except && c.SPIFFEID == id {
			return fmt.Errorf("spiffe_id %s: %w", id, storage.ErrAlreadyExists)
		}
	}
	return nil
}

// RevokeSPIFFEID records a revocation, keeping the latest time.
func (s *Store) RevokeSPIFFEID(_ context.Context, id string, at time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.revokeFail != nil {
		return s.revokeFail
	}
	if s.revoked == nil {
		s.revoked = map[string]time.Time{}
	}
	if at.After(s.revoked[id]) {
		s.revoked[id] = at
	}
	return nil
}

// Revoked returns the revoked SPIFFE IDs.
func (s *Store) Revoked() map[string]time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.revoked)
}

// FailRevocations makes RevokeSPIFFEID return err (nil: succeed again).
func (s *Store) FailRevocations(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.revokeFail = err
}
