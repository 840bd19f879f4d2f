package admin

import (
	"context"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/gatehouse/gatehouse/internal/secret"
	"github.com/gatehouse/gatehouse/internal/storage"
)

// JoinTokenStore stores single-use join tokens for the workload CA
// (storage.CAStore's CreateJoinToken).
type JoinTokenStore interface {
	CreateJoinToken(ctx context.Context, t storage.JoinToken) error
}

// Join token lifetimes: the default (when Deps.JoinTokenTTL is zero) and
// the bounds of a requested ttl.
const (
	DefaultJoinTokenTTL = 10 * time.Minute
	MinJoinTokenTTL     = time.Minute
	MaxJoinTokenTTL     = 24 * time.Hour
)

// maxSPIFFEIDLen caps registered SPIFFE IDs (the SPIFFE spec's URI limit).
const maxSPIFFEIDLen = 2048

// joinTokensPath is served only when Deps.JoinTokens is set.
const joinTokensPath = "/admin/v1/join-tokens"

// checkSPIFFEID validates a SPIFFE ID for registration: it must parse
// (spiffeid.FromString: lower-case trust domain, canonical path) and name a
// workload, so the path must not be empty.
func checkSPIFFEID(field, raw string, p *problems) {
	if len(raw) > maxSPIFFEIDLen {
		p.addf("%s: is longer than %d bytes", field, maxSPIFFEIDLen)
		return
	}
	id, err := spiffeid.FromString(raw)
	if err != nil {
		p.addf("%s: %q is not a SPIFFE ID such as spiffe://example.org/service", field, clip(raw))
		return
	}
	if id.Path() == "" {
		p.addf("%s: %q must have a path naming the workload (spiffe://%s/service)", field, clip(raw), id.TrustDomain())
	}
	if path := id.Path(); path == "/gatehouse" || strings.HasPrefix(path, "/gatehouse/") {
		p.addf("%s: SPIFFE IDs under /gatehouse/ are reserved for Gatehouse itself (the CA serves as spiffe://%s/gatehouse/ca)", field, id.TrustDomain())
	}
}

// checkTrustDomain adds a problem when raw, a SPIFFE ID, is outside the
// configured trust domain (if any). Unparsable values are left to
// checkSPIFFEID.
func (h *handler) checkTrustDomain(field, raw string, p *problems) {
	if raw == "" || h.d.TrustDomain.IsZero() {
		return
	}
	if id, err := spiffeid.FromString(raw); err == nil && id.TrustDomain() != h.d.TrustDomain {
		p.addf("%s: must be in the trust domain %s", field, h.d.TrustDomain)
	}
}

// createJoinToken issues a single-use join token for one SPIFFE ID. The
// token is returned once; only its keyed hash is stored, and neither is
// logged.
func (h *handler) createJoinToken(r *http.Request) (int, any, error) {
	var req JoinTokenRequest
	if err := decodeBody(r, &req); err != nil {
		return 0, nil, err
	}
	var p problems
	if req.SPIFFEID == "" {
		p.addf("spiffe_id: required")
	} else {
		checkSPIFFEID("spiffe_id", req.SPIFFEID, &p)
		h.checkTrustDomain("spiffe_id", req.SPIFFEID, &p)
	}
	ttl := h.d.JoinTokenTTL
	if ttl == 0 {
		ttl = DefaultJoinTokenTTL
	}
	if req.TTL != "" {
		d, err := time.ParseDuration(req.TTL)
		switch {
		case err != nil:
			p.addf("ttl: %q is not a duration such as 10m or 1h", clip(req.TTL))
		case d < MinJoinTokenTTL || d > MaxJoinTokenTTL:
			p.addf("ttl: must be between %s and %s", MinJoinTokenTTL, MaxJoinTokenTTL)
		default:
			ttl = d
		}
	}
	if err := p.err(); err != nil {
		return 0, nil, err
	}
	now := h.d.Now().UTC().Truncate(time.Second)
	tok := secret.New()
	jt := storage.JoinToken{
		Hash:      hex.EncodeToString(h.d.Secrets.Sum(tok)),
		SPIFFEID:  req.SPIFFEID,
		CreatedAt: now,
		ExpiresAt: now.Add(ttl),
	}
	if err := h.d.JoinTokens.CreateJoinToken(r.Context(), jt); err != nil {
		return 0, nil, fmt.Errorf("admin: create join token: %w", err)
	}
	h.d.Log.Info("admin: join token created", "spiffe_id", jt.SPIFFEID, "expires_at", jt.ExpiresAt)
	return http.StatusCreated, JoinTokenResponse{Token: tok, SPIFFEID: jt.SPIFFEID, ExpiresAt: jt.ExpiresAt}, nil
}
