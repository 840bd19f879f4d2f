// Package storage defines Gatehouse's persistent domain types and one narrow
// interface per domain (clients, users, signing keys, authorization requests
// and codes, grants and refresh tokens, IdP sessions, revocations, and the
// authorization service's relationship tuples and entities: relations.go).
//
// Backends (internal/storage/sqlstore: SQLite and PostgreSQL) implement every
// interface; internal/storage/conformance is the single suite every backend
// must pass. Single-use and rotation semantics (RedeemAuthCode,
// RotateRefreshToken) are atomic compare-and-swap operations: of any number of
// concurrent callers exactly one wins.
//
// Secrets never reach storage in plaintext: client secrets, authorization
// codes, refresh tokens and session ids are stored as hashes computed by the
// caller; signing keys are stored encrypted by internal/keys.
package storage

import (
	"context"
	"errors"
	"time"
)

// Errors returned by every backend. Callers compare with errors.Is.
var (
	ErrNotFound      = errors.New("storage: not found")
	ErrAlreadyExists = errors.New("storage: already exists")
	// ErrAlreadyUsed is returned by the single-use operations when the code or
	// refresh token was already redeemed/rotated. The returned value is still
	// filled in so the caller can revoke the grant it belongs to.
	ErrAlreadyUsed = errors.New("storage: already used")
	// ErrExpired is returned when a single-use item exists but has expired.
	ErrExpired = errors.New("storage: expired")
	// ErrRevoked is returned when the grant a refresh token belongs to is revoked.
	ErrRevoked = errors.New("storage: revoked")
	// ErrUnavailable wraps backend connectivity failures (database down).
	ErrUnavailable = errors.New("storage: unavailable")
)

// Client is a registered OAuth 2.0 client.
type Client struct {
	ID   string
	Name string
	// SecretHash is the keyed hash (HMAC-SHA256 with the server pepper) of the
	// client secret; empty for public clients.
	SecretHash []byte
	// SecretHint is a short display hint of the secret (first characters).
	SecretHint             string
	Public                 bool
	FirstParty             bool // consent is skipped
	RedirectURIs           []string
	PostLogoutRedirectURIs []string
	GrantTypes             []string // authorization_code, refresh_token, client_credentials
	Scopes                 []string // scopes the client may request
	Audiences              []string // audiences the client may request
	// SPIFFEID, when set, is the workload identity (spiffe://td/path) the
	// client may obtain from the workload CA with its client credentials.
	SPIFFEID string
	// Lifetimes; zero means the server default.
	AccessTokenTTL time.Duration
	RefreshIdleTTL time.Duration
	RefreshMaxTTL  time.Duration
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// User is an end user who logs in on the IdP pages.
type User struct {
	ID            string // opaque, random; the `sub` claim
	Username      string // unique, case-sensitive as stored (callers normalise to lower case)
	Email         string // unique when not empty
	EmailVerified bool
	Name          string
	PasswordHash  string // PHC-format Argon2id
	Roles         []string
	Groups        []string
	Tenant        string
	Disabled      bool
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

// SigningKey is an asymmetric key used to sign tokens. The private key is
// sealed (AES-GCM) by internal/keys before it reaches storage.
type SigningKey struct {
	ID         string    // kid
	Algorithm  string    // RS256, ES256, EdDSA
	Generation int64     // unique; rotation inserts max+1, so two replicas never rotate twice
	Sealed     []byte    // AES-GCM(nonce||ciphertext) of the PKCS#8 private key, AAD = kid
	PublicJWK  []byte    // JSON of the public JWK (no private members)
	CreatedAt  time.Time // published in the JWKS from this instant
	ActivateAt time.Time // may sign from this instant (CreatedAt + publish-ahead)
	RetiredAt  time.Time // zero while current; set when superseded: stops signing
	ExpiresAt  time.Time // zero until retired; removed from the JWKS after this instant
	RevokedAt  time.Time // zero unless revoked in an emergency: removed at once
}

// AuthRequest is a pending /authorize transaction, between the authorization
// request and the issuance of a code.
type AuthRequest struct {
	ID                  string
	ClientID            string
	RedirectURI         string
	State               string
	Nonce               string
	ResponseMode        string
	Scopes              []string
	Audience            []string
	CodeChallenge       string
	CodeChallengeMethod string
	Prompt              []string
	MaxAge              int64 // seconds; -1 when absent
	LoginHint           string
	// Set when the user has authenticated.
	UserID    string
	SessionID string // id (hash) of the IdP session that authenticated
	AuthTime  time.Time
	AMR       []string
	ACR       string
	Consented bool
	CreatedAt time.Time
	ExpiresAt time.Time
}

// AuthCode is an issued authorization code, stored by the SHA-256 hash of the
// code. It snapshots what the token endpoint needs.
type AuthCode struct {
	Hash          string
	GrantID       string // the grant (token family) the redemption creates
	ClientID      string
	RedirectURI   string
	UserID        string
	SessionID     string
	Scopes        []string
	Audience      []string
	Nonce         string
	CodeChallenge string
	AuthTime      time.Time
	AMR           []string
	ACR           string
	CreatedAt     time.Time
	ExpiresAt     time.Time
	UsedAt        time.Time // zero until redeemed
}

// Grant is a token family: everything issued from one code redemption (or one
// future device/token-exchange grant). Revoking it revokes its refresh tokens
// and makes its access tokens inactive at introspection.
type Grant struct {
	ID           string
	ClientID     string
	UserID       string
	SessionID    string
	Scopes       []string
	Audience     []string
	AuthTime     time.Time
	AMR          []string
	ACR          string
	CreatedAt    time.Time
	ExpiresAt    time.Time // absolute lifetime of the family
	RevokedAt    time.Time
	RevokeReason string
}

// RefreshToken is one opaque refresh token of a grant, stored by hash.
type RefreshToken struct {
	Hash      string
	GrantID   string
	ClientID  string
	CreatedAt time.Time
	ExpiresAt time.Time // idle expiry of this token (never after the grant's)
	UsedAt    time.Time // zero until rotated
}

// Session is a server-side IdP browser session, stored by the hash of its id.
type Session struct {
	IDHash     string
	UserID     string
	AuthTime   time.Time
	AMR        []string
	CreatedAt  time.Time
	LastSeenAt time.Time
	ExpiresAt  time.Time // absolute
}

// RevokedGrant is one entry of the revocation feed used by replicas.
type RevokedGrant struct {
	GrantID   string
	RevokedAt time.Time
}

// RevokedToken is an individually revoked access token (by jti) that must be
// reported inactive until ExpiresAt.
type RevokedToken struct {
	JTI       string
	ExpiresAt time.Time
	RevokedAt time.Time
}

// ClientStore persists clients.
type ClientStore interface {
	CreateClient(ctx context.Context, c Client) error // ErrAlreadyExists
	GetClient(ctx context.Context, id string) (Client, error)
	ListClients(ctx context.Context) ([]Client, error)
	// UpdateClient applies fn to the stored client atomically.
	UpdateClient(ctx context.Context, id string, fn func(Client) (Client, error)) error
	// DeleteClient deletes the client and, in the same transaction, revokes
	// every grant of that client.
	DeleteClient(ctx context.Context, id string, now time.Time) error
}

// UserStore persists users.
type UserStore interface {
	CreateUser(ctx context.Context, u User) error // ErrAlreadyExists on id, username or email
	GetUser(ctx context.Context, id string) (User, error)
	GetUserByUsername(ctx context.Context, username string) (User, error)
	ListUsers(ctx context.Context) ([]User, error)
	// UpdateUser applies fn atomically. When the result is Disabled or its
	// PasswordHash changed, the backend deletes the user's sessions and
	// revokes the user's grants in the same transaction.
	UpdateUser(ctx context.Context, id string, fn func(User) (User, error)) error
	DeleteUser(ctx context.Context, id string, now time.Time) error // also sessions and grants
}

// KeyStore persists signing keys.
type KeyStore interface {
	// CreateSigningKey inserts a key; ErrAlreadyExists when its ID or its
	// Generation is taken (another replica rotated first).
	CreateSigningKey(ctx context.Context, k SigningKey) error
	ListSigningKeys(ctx context.Context) ([]SigningKey, error) // ordered by Generation
	UpdateSigningKey(ctx context.Context, id string, fn func(SigningKey) (SigningKey, error)) error
}

// AuthRequestStore persists pending authorization requests.
type AuthRequestStore interface {
	CreateAuthRequest(ctx context.Context, r AuthRequest) error
	// GetAuthRequest returns ErrNotFound, or ErrExpired once now reaches ExpiresAt.
	GetAuthRequest(ctx context.Context, id string, now time.Time) (AuthRequest, error)
	// UpdateAuthRequest applies fn atomically; an expired request gives ErrExpired.
	UpdateAuthRequest(ctx context.Context, id string, now time.Time, fn func(AuthRequest) (AuthRequest, error)) error
	DeleteAuthRequest(ctx context.Context, id string) error
}

// CodeStore persists authorization codes.
type CodeStore interface {
	// CreateAuthCode stores a code and, in the same transaction, deletes the
	// auth request it came from (authReqID may be empty).
	CreateAuthCode(ctx context.Context, c AuthCode, authReqID string) error
	// RedeemAuthCode atomically marks the code used. Exactly one of any number
	// of concurrent callers gets a nil error. Later callers get ErrAlreadyUsed
	// together with the stored code (so the caller can revoke c.GrantID);
	// expired codes give ErrExpired; unknown ones ErrNotFound.
	RedeemAuthCode(ctx context.Context, hash string, now time.Time) (AuthCode, error)
}

// GrantStore persists grants (token families) and their refresh tokens.
type GrantStore interface {
	// CreateGrant inserts the grant and, when first is not nil, its first
	// refresh token, in one transaction.
	CreateGrant(ctx context.Context, g Grant, first *RefreshToken) error
	GetGrant(ctx context.Context, id string) (Grant, error)
	GetRefreshToken(ctx context.Context, hash string) (RefreshToken, error)
	// RotateRefreshToken atomically marks the token oldHash used and inserts
	// next (same GrantID). Exactly one concurrent caller wins. A token already
	// used gives ErrAlreadyUsed with the stored token and grant (the caller
	// revokes the family); an expired token ErrExpired; a token of a revoked
	// grant ErrRevoked; unknown ErrNotFound.
	RotateRefreshToken(ctx context.Context, oldHash string, next RefreshToken, now time.Time) (RefreshToken, Grant, error)
	// RevokeGrant marks the grant revoked (idempotent) and invalidates its
	// refresh tokens.
	RevokeGrant(ctx context.Context, id, reason string, now time.Time) error
	RevokeGrantsForUser(ctx context.Context, userID, reason string, now time.Time) error
	RevokeGrantsForSession(ctx context.Context, sessionID, reason string, now time.Time) error
	// RevokedGrantsSince lists grants revoked at or after since (the feed
	// replicas poll to keep their revocation cache current).
	RevokedGrantsSince(ctx context.Context, since time.Time) ([]RevokedGrant, error)
}

// SessionStore persists IdP browser sessions.
type SessionStore interface {
	CreateSession(ctx context.Context, s Session) error
	GetSession(ctx context.Context, idHash string) (Session, error)
	TouchSession(ctx context.Context, idHash string, now time.Time) error
	DeleteSession(ctx context.Context, idHash string) error
	DeleteSessionsForUser(ctx context.Context, userID string) error
}

// RevocationStore persists individually revoked access tokens.
type RevocationStore interface {
	RevokeAccessToken(ctx context.Context, t RevokedToken) error // idempotent
	RevokedTokensSince(ctx context.Context, since time.Time) ([]RevokedToken, error)
}

// Store is everything a backend provides. Components take only the narrow
// interfaces they need.
type Store interface {
	ClientStore
	UserStore
	KeyStore
	AuthRequestStore
	CodeStore
	GrantStore
	SessionStore
	RevocationStore
	RelationStore
	CAStore
	SPIFFERevocationStore
	// GC deletes expired auth requests, codes, refresh tokens, sessions,
	// revoked-token entries, used or expired join tokens, and SPIFFE
	// revocations older than SPIFFERevocationRetention; it returns how many
	// rows it removed.
	GC(ctx context.Context, now time.Time) (int64, error)
	Ping(ctx context.Context) error
	Close() error
}
