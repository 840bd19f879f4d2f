// Package adminclient is a typed Go client for Gatehouse's admin HTTP API
// (internal/admin). It shares the request and response types of that package.
//
// The admin token is sent only over https, or over plain http to a loopback
// host (127.0.0.1, [::1], localhost); any other base URL fails every call
// before a request is made.
package adminclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/admin"
)

// maxResponse caps response bodies.
const maxResponse = 16 << 20

// Client calls the admin API. It is safe for concurrent use.
type Client struct {
	base  string
	token string
	http  *http.Client
	err   error // set when baseURL is unusable; returned by every call
}

// Error is a non-2xx answer from the admin API.
type Error struct {
	Status      int    // HTTP status
	Code        string // the "error" member, e.g. "not_found", "invalid_request"
	Description string // the "error_description" member
}

func (e *Error) Error() string {
	if e.Description != "" {
		return fmt.Sprintf("admin API: %d %s: %s", e.Status, e.Code, e.Description)
	}
	return fmt.Sprintf("admin API: %d %s", e.Status, e.Code)
}

// IsStatus reports whether err is an *Error with the given HTTP status.
func IsStatus(err error, status int) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == status
}

// New returns a client for the admin API at baseURL (scheme, host and
// optional path prefix, e.g. "https://gatehouse.internal:9443"). httpClient
// may be nil for a client with a 30 s timeout.
func New(baseURL, token string, httpClient *http.Client) *Client {
	if httpClient == nil {
		httpClient = &http.Client{Timeout: 30 * time.Second}
	}
	c := &Client{base: strings.TrimRight(baseURL, "/"), token: token, http: httpClient}
	c.err = checkBase(baseURL)
	if c.err == nil && token == "" {
		c.err = errors.New("adminclient: empty admin token")
	}
	return c
}

func checkBase(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("adminclient: invalid base URL: %w", err)
	}
	if u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("adminclient: base URL %q must be scheme://host[:port][/prefix]", raw)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		h := u.Hostname()
		if h == "localhost" {
			return nil
		}
		if ip := net.ParseIP(h); ip != nil && ip.IsLoopback() {
			return nil
		}
		return fmt.Errorf("adminclient: refusing to send the admin token over plain http to %q (use https)", h)
	}
	return fmt.Errorf("adminclient: base URL scheme must be https")
}

// do sends a request with an optional JSON body and decodes a JSON answer
// into out (when not nil).
func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	if c.err != nil {
		return c.err
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("adminclient: encode request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return fmt.Errorf("adminclient: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("adminclient: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return fmt.Errorf("adminclient: read response: %w", err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		e := &Error{Status: resp.StatusCode}
		var er admin.ErrorResponse
		if json.Unmarshal(data, &er) == nil && er.Error != "" {
			e.Code, e.Description = er.Error, er.ErrorDescription
		} else {
			e.Code = http.StatusText(resp.StatusCode)
		}
		return e
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("adminclient: decode response to %s %s: %w", method, path, err)
	}
	return nil
}

func esc(s string) string { return url.PathEscape(s) }

// CreateClient registers a client. For a confidential client the response
// carries ClientSecret, which the server never shows again.
func (c *Client) CreateClient(ctx context.Context, req admin.ClientRequest) (admin.ClientResponse, error) {
	var out admin.ClientResponse
	err := c.do(ctx, http.MethodPost, "/admin/v1/clients", req, &out)
	return out, err
}

// ListClients returns every client.
func (c *Client) ListClients(ctx context.Context) ([]admin.ClientResponse, error) {
	var out admin.ClientList
	err := c.do(ctx, http.MethodGet, "/admin/v1/clients", nil, &out)
	return out.Clients, err
}

// GetClient returns one client.
func (c *Client) GetClient(ctx context.Context, id string) (admin.ClientResponse, error) {
	var out admin.ClientResponse
	err := c.do(ctx, http.MethodGet, "/admin/v1/clients/"+esc(id), nil, &out)
	return out, err
}

// UpdateClient applies a patch to a client.
func (c *Client) UpdateClient(ctx context.Context, id string, p admin.ClientPatch) (admin.ClientResponse, error) {
	var out admin.ClientResponse
	err := c.do(ctx, http.MethodPatch, "/admin/v1/clients/"+esc(id), p, &out)
	return out, err
}

// DeleteClient deletes a client and revokes its grants.
func (c *Client) DeleteClient(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, "/admin/v1/clients/"+esc(id), nil, nil)
}

// RotateClientSecret replaces a confidential client's secret; the response
// carries the new ClientSecret.
func (c *Client) RotateClientSecret(ctx context.Context, id string) (admin.ClientResponse, error) {
	var out admin.ClientResponse
	err := c.do(ctx, http.MethodPost, "/admin/v1/clients/"+esc(id)+"/secret", nil, &out)
	return out, err
}

// CreateUser creates a user.
func (c *Client) CreateUser(ctx context.Context, req admin.UserRequest) (admin.UserResponse, error) {
	var out admin.UserResponse
	err := c.do(ctx, http.MethodPost, "/admin/v1/users", req, &out)
	return out, err
}

// ListUsers returns every user.
func (c *Client) ListUsers(ctx context.Context) ([]admin.UserResponse, error) {
	var out admin.UserList
	err := c.do(ctx, http.MethodGet, "/admin/v1/users", nil, &out)
	return out.Users, err
}

// GetUser returns one user.
func (c *Client) GetUser(ctx context.Context, id string) (admin.UserResponse, error) {
	var out admin.UserResponse
	err := c.do(ctx, http.MethodGet, "/admin/v1/users/"+esc(id), nil, &out)
	return out, err
}

// UpdateUser applies a patch to a user; Disabled=true ends their sessions.
func (c *Client) UpdateUser(ctx context.Context, id string, p admin.UserPatch) (admin.UserResponse, error) {
	var out admin.UserResponse
	err := c.do(ctx, http.MethodPatch, "/admin/v1/users/"+esc(id), p, &out)
	return out, err
}

// SetPassword sets a user's password.
func (c *Client) SetPassword(ctx context.Context, id, password string) error {
	return c.do(ctx, http.MethodPost, "/admin/v1/users/"+esc(id)+"/password", admin.PasswordRequest{Password: password}, nil)
}

// DeleteUser deletes a user with their sessions and grants.
func (c *Client) DeleteUser(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, "/admin/v1/users/"+esc(id), nil, nil)
}

// ListKeys returns the signing keys.
func (c *Client) ListKeys(ctx context.Context) ([]admin.KeyInfo, error) {
	var out admin.KeyList
	err := c.do(ctx, http.MethodGet, "/admin/v1/keys", nil, &out)
	return out.Keys, err
}

// RotateKey creates the next signing key.
func (c *Client) RotateKey(ctx context.Context) (admin.KeyInfo, error) {
	var out admin.KeyInfo
	err := c.do(ctx, http.MethodPost, "/admin/v1/keys/rotate", nil, &out)
	return out, err
}

// CreateJoinToken issues a single-use join token for the workload CA. The
// response carries the token, which the server never shows again.
func (c *Client) CreateJoinToken(ctx context.Context, req admin.JoinTokenRequest) (admin.JoinTokenResponse, error) {
	var out admin.JoinTokenResponse
	err := c.do(ctx, http.MethodPost, "/admin/v1/join-tokens", req, &out)
	return out, err
}

// RevokeKey revokes a signing key at once.
func (c *Client) RevokeKey(ctx context.Context, kid string) error {
	return c.do(ctx, http.MethodPost, "/admin/v1/keys/"+esc(kid)+"/revoke", nil, nil)
}

// RevokeSPIFFEID revokes a workload's SPIFFE ID (POST
// /admin/v1/spiffe-revocations): the CA no longer renews SVIDs of that ID
// issued before now.
func (c *Client) RevokeSPIFFEID(ctx context.Context, id string) (admin.SPIFFERevocationResponse, error) {
	var out admin.SPIFFERevocationResponse
	err := c.do(ctx, http.MethodPost, "/admin/v1/spiffe-revocations", admin.SPIFFERevocationRequest{SPIFFEID: id}, &out)
	return out, err
}
