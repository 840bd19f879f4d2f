package admin

import (
	"errors"
	"net/http"
	"time"

	"github.com/gatehouse/gatehouse/internal/apierr"
	"github.com/gatehouse/gatehouse/internal/secret"
	"github.com/gatehouse/gatehouse/internal/storage"
)

// ClientSecretPrefix starts every generated client secret, so scanners can
// recognise leaked ones.
const ClientSecretPrefix = "ghs_"

// secretHintLen is how much of a secret is kept for display.
const secretHintLen = 8

// newClientSecret returns a fresh secret (256 bits) with its keyed hash and
// display hint.
func (h *handler) newClientSecret() (plain string, sum []byte, hint string) {
	plain = ClientSecretPrefix + secret.Token(secret.DefaultBytes)
	return plain, h.d.Secrets.Sum(plain), plain[:secretHintLen]
}

func clientResponse(c storage.Client) ClientResponse {
	return ClientResponse{
		ID:                     c.ID,
		Name:                   c.Name,
		Public:                 c.Public,
		FirstParty:             c.FirstParty,
		RedirectURIs:           nonNil(c.RedirectURIs),
		PostLogoutRedirectURIs: nonNil(c.PostLogoutRedirectURIs),
		GrantTypes:             nonNil(c.GrantTypes),
		Scopes:                 nonNil(c.Scopes),
		Audiences:              nonNil(c.Audiences),
		AccessTokenTTL:         ttlString(c.AccessTokenTTL),
		RefreshIdleTTL:         ttlString(c.RefreshIdleTTL),
		RefreshMaxTTL:          ttlString(c.RefreshMaxTTL),
		SPIFFEID:               c.SPIFFEID,
		SecretHint:             c.SecretHint,
		CreatedAt:              c.CreatedAt,
		UpdatedAt:              c.UpdatedAt,
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func ttlString(d time.Duration) string {
	if d == 0 {
		return ""
	}
	return d.String()
}

// clientID returns the {id} path value, or 404 when it cannot name a client.
func clientID(r *http.Request) (string, error) {
	id := r.PathValue("id")
	if !validClientID(id) {
		return "", apierr.NotFound("no such client")
	}
	return id, nil
}

func (h *handler) listClients(r *http.Request) (int, any, error) {
	cs, err := h.d.Clients.ListClients(r.Context())
	if err != nil {
		return 0, nil, err
	}
	out := ClientList{Clients: make([]ClientResponse, 0, len(cs))}
	for _, c := range cs {
		out.Clients = append(out.Clients, clientResponse(c))
	}
	return http.StatusOK, out, nil
}

func (h *handler) getClient(r *http.Request) (int, any, error) {
	id, err := clientID(r)
	if err != nil {
		return 0, nil, err
	}
	c, err := h.d.Clients.GetClient(r.Context(), id)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, clientResponse(c), nil
}

// applyTTLs parses the three lifetimes into c.
func applyTTLs(c *storage.Client, access, idle, max string, p *problems) {
	c.AccessTokenTTL = parseTTL("access_token_ttl", access, maxAccess, p)
	c.RefreshIdleTTL = parseTTL("refresh_idle_ttl", idle, maxTTL, p)
	c.RefreshMaxTTL = parseTTL("refresh_max_ttl", max, maxTTL, p)
}

func (h *handler) createClient(r *http.Request) (int, any, error) {
	var req ClientRequest
	if err := decodeBody(r, &req); err != nil {
		return 0, nil, err
	}
	now := h.d.Now().UTC()
	c := storage.Client{
		ID:                     req.ID,
		Name:                   req.Name,
		Public:                 req.Public,
		FirstParty:             req.FirstParty,
		RedirectURIs:           dedupe(req.RedirectURIs),
		PostLogoutRedirectURIs: dedupe(req.PostLogoutRedirectURIs),
		GrantTypes:             dedupe(req.GrantTypes),
		Scopes:                 dedupe(req.Scopes),
		Audiences:              dedupe(req.Audiences),
		SPIFFEID:               req.SPIFFEID,
		CreatedAt:              now,
		UpdatedAt:              now,
	}
	if c.ID == "" {
		c.ID = secret.ID()
	}
	if len(c.GrantTypes) == 0 {
		c.GrantTypes = []string{GrantAuthorizationCode, GrantRefreshToken}
	}
	var p problems
	applyTTLs(&c, req.AccessTokenTTL, req.RefreshIdleTTL, req.RefreshMaxTTL, &p)
	validateClient(c, &p)
	h.checkTrustDomain("spiffe_id", c.SPIFFEID, &p)
	if err := p.err(); err != nil {
		return 0, nil, err
	}
	var plain string
	if !c.Public {
		plain, c.SecretHash, c.SecretHint = h.newClientSecret()
	}
	if err := h.d.Clients.CreateClient(r.Context(), c); err != nil {
		if isExists(err) && c.SPIFFEID != "" {
			// The id or the spiffe_id is taken: say which.
			if _, gerr := h.d.Clients.GetClient(r.Context(), c.ID); errors.Is(gerr, storage.ErrNotFound) {
				return 0, nil, spiffeConflict(c.SPIFFEID, err)
			}
		}
		return 0, nil, err
	}
	h.d.Log.Info("admin: client created", "client_id", c.ID, "public", c.Public)
	resp := clientResponse(c)
	resp.ClientSecret = plain
	return http.StatusCreated, resp, nil
}

func (h *handler) updateClient(r *http.Request) (int, any, error) {
	id, err := clientID(r)
	if err != nil {
		return 0, nil, err
	}
	var req ClientPatch
	if err := decodeBody(r, &req); err != nil {
		return 0, nil, err
	}
	now := h.d.Now().UTC()
	// A changed or cleared spiffe_id revokes the old one first: should the
	// revocation fail, nothing changes.
	var oldID string
	if req.SPIFFEID != nil && h.d.Revocations != nil {
		old, err := h.d.Clients.GetClient(r.Context(), id)
		if err != nil {
			return 0, nil, err
		}
		oldID = old.SPIFFEID
		if oldID != *req.SPIFFEID {
			if err := h.revokeSPIFFE(r.Context(), oldID, "client spiffe_id changed"); err != nil {
				return 0, nil, err
			}
		}
	}
	var out storage.Client
	err = h.d.Clients.UpdateClient(r.Context(), id, func(c storage.Client) (storage.Client, error) {
		if req.SPIFFEID != nil && h.d.Revocations != nil && c.SPIFFEID != oldID {
			return c, errSPIFFEIDChanged
		}
		set(&c.Name, req.Name)
		set(&c.FirstParty, req.FirstParty)
		setList(&c.RedirectURIs, req.RedirectURIs)
		setList(&c.PostLogoutRedirectURIs, req.PostLogoutRedirectURIs)
		setList(&c.GrantTypes, req.GrantTypes)
		setList(&c.Scopes, req.Scopes)
		setList(&c.Audiences, req.Audiences)
		set(&c.SPIFFEID, req.SPIFFEID)
		var p problems
		if req.AccessTokenTTL != nil {
			c.AccessTokenTTL = parseTTL("access_token_ttl", *req.AccessTokenTTL, maxAccess, &p)
		}
		if req.RefreshIdleTTL != nil {
			c.RefreshIdleTTL = parseTTL("refresh_idle_ttl", *req.RefreshIdleTTL, maxTTL, &p)
		}
		if req.RefreshMaxTTL != nil {
			c.RefreshMaxTTL = parseTTL("refresh_max_ttl", *req.RefreshMaxTTL, maxTTL, &p)
		}
		validateClient(c, &p)
		if req.SPIFFEID != nil {
			h.checkTrustDomain("spiffe_id", c.SPIFFEID, &p)
		}
		if err := p.err(); err != nil {
			return c, err
		}
		c.UpdatedAt = now
		out = c
		return c, nil
	})
	if err != nil {
		if isExists(err) && req.SPIFFEID != nil {
			return 0, nil, spiffeConflict(*req.SPIFFEID, err)
		}
		return 0, nil, err
	}
	h.d.Log.Info("admin: client updated", "client_id", id)
	return http.StatusOK, clientResponse(out), nil
}

func set[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}

func setList(dst *[]string, v *[]string) {
	if v != nil {
		*dst = dedupe(*v)
	}
}

func (h *handler) deleteClient(r *http.Request) (int, any, error) {
	id, err := clientID(r)
	if err != nil {
		return 0, nil, err
	}
	// The client's SPIFFE ID is revoked first: should that fail, the client
	// stays.
	if h.d.Revocations != nil {
		c, err := h.d.Clients.GetClient(r.Context(), id)
		if err != nil {
			return 0, nil, err
		}
		if err := h.revokeSPIFFE(r.Context(), c.SPIFFEID, "client deleted"); err != nil {
			return 0, nil, err
		}
	}
	if err := h.d.Clients.DeleteClient(r.Context(), id, h.d.Now().UTC()); err != nil {
		return 0, nil, err
	}
	h.d.Log.Info("admin: client deleted", "client_id", id)
	return http.StatusNoContent, nil, nil
}

var errPublicNoSecret = apierr.BadRequest("public clients have no secret", nil)

// rotateClientSecret replaces the secret of a confidential client; the old
// secret stops working at once. The new one is returned once.
func (h *handler) rotateClientSecret(r *http.Request) (int, any, error) {
	id, err := clientID(r)
	if err != nil {
		return 0, nil, err
	}
	plain, sum, hint := h.newClientSecret()
	now := h.d.Now().UTC()
	var out storage.Client
	err = h.d.Clients.UpdateClient(r.Context(), id, func(c storage.Client) (storage.Client, error) {
		if c.Public {
			return c, errPublicNoSecret
		}
		c.SecretHash, c.SecretHint, c.UpdatedAt = sum, hint, now
		out = c
		return c, nil
	})
	if err != nil {
		return 0, nil, err
	}
	h.d.Log.Info("admin: client secret rotated", "client_id", id)
	resp := clientResponse(out)
	resp.ClientSecret = plain
	return http.StatusOK, resp, nil
}
