package admin

import "time"

// ClientRequest is the body of POST /admin/v1/clients.
type ClientRequest struct {
	// ID is generated (16 random bytes, base64url) when empty.
	ID                     string   `json:"id,omitempty"`
	Name                   string   `json:"name"`
	Public                 bool     `json:"public,omitempty"`
	FirstParty             bool     `json:"first_party,omitempty"`
	RedirectURIs           []string `json:"redirect_uris,omitempty"`
	PostLogoutRedirectURIs []string `json:"post_logout_redirect_uris,omitempty"`
	// GrantTypes defaults to authorization_code and refresh_token.
	GrantTypes []string `json:"grant_types,omitempty"`
	Scopes     []string `json:"scopes,omitempty"`
	Audiences  []string `json:"audiences,omitempty"`
	// Lifetimes as Go duration strings ("15m"); empty means the server default.
	AccessTokenTTL string `json:"access_token_ttl,omitempty"`
	RefreshIdleTTL string `json:"refresh_idle_ttl,omitempty"`
	RefreshMaxTTL  string `json:"refresh_max_ttl,omitempty"`
	// SPIFFEID is the workload identity (spiffe://trust-domain/path) the
	// client may obtain from the workload CA with its client credentials.
	SPIFFEID string `json:"spiffe_id,omitempty"`
}

// ClientPatch is the body of PATCH /admin/v1/clients/{id}. Nil fields are
// left unchanged; an empty lifetime string resets it to the server default,
// an empty spiffe_id removes it.
// Whether a client is public cannot be changed.
type ClientPatch struct {
	Name                   *string   `json:"name,omitempty"`
	FirstParty             *bool     `json:"first_party,omitempty"`
	RedirectURIs           *[]string `json:"redirect_uris,omitempty"`
	PostLogoutRedirectURIs *[]string `json:"post_logout_redirect_uris,omitempty"`
	GrantTypes             *[]string `json:"grant_types,omitempty"`
	Scopes                 *[]string `json:"scopes,omitempty"`
	Audiences              *[]string `json:"audiences,omitempty"`
	AccessTokenTTL         *string   `json:"access_token_ttl,omitempty"`
	RefreshIdleTTL         *string   `json:"refresh_idle_ttl,omitempty"`
	RefreshMaxTTL          *string   `json:"refresh_max_ttl,omitempty"`
	SPIFFEID               *string   `json:"spiffe_id,omitempty"`
}

// ClientResponse is a client as the API shows it. It never carries the
// secret hash; ClientSecret is set only in the responses to create and
// rotate-secret, the one time the plaintext secret is shown.
type ClientResponse struct {
	ID                     string    `json:"id"`
	Name                   string    `json:"name"`
	Public                 bool      `json:"public"`
	FirstParty             bool      `json:"first_party"`
	RedirectURIs           []string  `json:"redirect_uris"`
	PostLogoutRedirectURIs []string  `json:"post_logout_redirect_uris"`
	GrantTypes             []string  `json:"grant_types"`
	Scopes                 []string  `json:"scopes"`
	Audiences              []string  `json:"audiences"`
	AccessTokenTTL         string    `json:"access_token_ttl,omitempty"`
	RefreshIdleTTL         string    `json:"refresh_idle_ttl,omitempty"`
	RefreshMaxTTL          string    `json:"refresh_max_ttl,omitempty"`
	SPIFFEID               string    `json:"spiffe_id,omitempty"`
	SecretHint             string    `json:"secret_hint,omitempty"`
	ClientSecret           string    `json:"client_secret,omitempty"`
	CreatedAt              time.Time `json:"created_at,omitzero"`
	UpdatedAt              time.Time `json:"updated_at,omitzero"`
}

// ClientList is the body of GET /admin/v1/clients.
type ClientList struct {
	Clients []ClientResponse `json:"clients"`
}

// UserRequest is the body of POST /admin/v1/users.
type UserRequest struct {
	// Username is lower-cased, then must match [a-z0-9._-]{1,64}.
	Username      string `json:"username"`
	Email         string `json:"email,omitempty"`
	EmailVerified bool   `json:"email_verified,omitempty"`
	Name          string `json:"name,omitempty"`
	// Password is optional; without one the user cannot log in until
	// POST /admin/v1/users/{id}/password sets it.
	Password string   `json:"password,omitempty"`
	Roles    []string `json:"roles,omitempty"`
	Groups   []string `json:"groups,omitempty"`
	Tenant   string   `json:"tenant,omitempty"`
	Disabled bool     `json:"disabled,omitempty"`
}

// UserPatch is the body of PATCH /admin/v1/users/{id}; nil fields are left
// unchanged. Setting Disabled ends the user's sessions and refresh tokens.
type UserPatch struct {
	Email         *string   `json:"email,omitempty"`
	EmailVerified *bool     `json:"email_verified,omitempty"`
	Name          *string   `json:"name,omitempty"`
	Roles         *[]string `json:"roles,omitempty"`
	Groups        *[]string `json:"groups,omitempty"`
	Tenant        *string   `json:"tenant,omitempty"`
	Disabled      *bool     `json:"disabled,omitempty"`
}

// UserResponse is a user as the API shows it; it never carries the password
// hash, only whether one is set.
type UserResponse struct {
	ID            string    `json:"id"`
	Username      string    `json:"username"`
	Email         string    `json:"email,omitempty"`
	EmailVerified bool      `json:"email_verified"`
	Name          string    `json:"name,omitempty"`
	HasPassword   bool      `json:"has_password"`
	Roles         []string  `json:"roles"`
	Groups        []string  `json:"groups"`
	Tenant        string    `json:"tenant,omitempty"`
	Disabled      bool      `json:"disabled"`
	CreatedAt     time.Time `json:"created_at,omitzero"`
	UpdatedAt     time.Time `json:"updated_at,omitzero"`
}

// UserList is the body of GET /admin/v1/users.
type UserList struct {
	Users []UserResponse `json:"users"`
}

// PasswordRequest is the body of POST /admin/v1/users/{id}/password.
type PasswordRequest struct {
	Password string `json:"password"`
}

// KeyInfo describes one signing key, without key material.
type KeyInfo struct {
	ID         string    `json:"id"`
	Algorithm  string    `json:"algorithm"`
	Generation int64     `json:"generation"`
	State      string    `json:"state"` // e.g. pending, active, retired, expired, revoked
	CreatedAt  time.Time `json:"created_at,omitzero"`
	ActivateAt time.Time `json:"activate_at,omitzero"`
	RetiredAt  time.Time `json:"retired_at,omitzero"`
	ExpiresAt  time.Time `json:"expires_at,omitzero"`
	RevokedAt  time.Time `json:"revoked_at,omitzero"`
}

// KeyList is the body of GET /admin/v1/keys.
type KeyList struct {
	Keys []KeyInfo `json:"keys"`
}

// JoinTokenRequest is the body of POST /admin/v1/join-tokens.
type JoinTokenRequest struct {
	SPIFFEID string `json:"spiffe_id"`
	// TTL is a Go duration between 1m and 24h; empty means the server
	// default (10m unless configured).
	TTL string `json:"ttl,omitempty"`
}

// JoinTokenResponse is the answer to POST /admin/v1/join-tokens; the token
// is shown this once.
type JoinTokenResponse struct {
	Token     string    `json:"token"`
	SPIFFEID  string    `json:"spiffe_id"`
	ExpiresAt time.Time `json:"expires_at"`
}

// ErrorResponse is the body of every error response.
type ErrorResponse struct {
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description,omitempty"`
}
