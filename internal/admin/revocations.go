package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/gatehouse/gatehouse/internal/apierr"
	"github.com/gatehouse/gatehouse/internal/storage"
)

// SPIFFERevoker records the revocation of a SPIFFE ID
// (storage.SPIFFERevocationStore's RevokeSPIFFEID): the CA API then refuses
// to renew SVIDs of that ID issued before the revocation.
type SPIFFERevoker interface {
	RevokeSPIFFEID(ctx context.Context, id string, at time.Time) error
}

// spiffeRevocationsPath is served only when Deps.Revocations is set.
const spiffeRevocationsPath = "/admin/v1/spiffe-revocations"

// SPIFFERevocationRequest is the body of POST /admin/v1/spiffe-revocations.
type SPIFFERevocationRequest struct {
	SPIFFEID string `json:"spiffe_id"`
}

// SPIFFERevocationResponse is its answer (201).
type SPIFFERevocationResponse struct {
	SPIFFEID  string    `json:"spiffe_id"`
	RevokedAt time.Time `json:"revoked_at"`
}

// revokeSPIFFE records that id is revoked now (no-op for "" or without a
// revoker). A failure fails the admin request that caused it.
func (h *handler) revokeSPIFFE(ctx context.Context, id, why string) error {
	if id == "" || h.d.Revocations == nil {
		return nil
	}
	at := h.d.Now().UTC()
	if err := h.d.Revocations.RevokeSPIFFEID(ctx, id, at); err != nil {
		return fmt.Errorf("admin: revoke spiffe id: %w", err)
	}
	h.d.Log.Info("admin: spiffe id revoked", "spiffe_id", id, "reason", why, "revoked_at", at)
	return nil
}

// createSPIFFERevocation revokes one SPIFFE ID explicitly.
func (h *handler) createSPIFFERevocation(r *http.Request) (int, any, error) {
	var req SPIFFERevocationRequest
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
	if err := p.err(); err != nil {
		return 0, nil, err
	}
	at := h.d.Now().UTC()
	if err := h.d.Revocations.RevokeSPIFFEID(r.Context(), req.SPIFFEID, at); err != nil {
		return 0, nil, fmt.Errorf("admin: revoke spiffe id: %w", err)
	}
	h.d.Log.Info("admin: spiffe id revoked", "spiffe_id", req.SPIFFEID, "reason", "explicit", "revoked_at", at)
	return http.StatusCreated, SPIFFERevocationResponse{SPIFFEID: req.SPIFFEID, RevokedAt: at}, nil
}

// spiffeConflict is the answer when a client's spiffe_id is taken.
func spiffeConflict(id string, err error) error {
	return apierr.New(http.StatusConflict, "conflict",
		"spiffe_id: "+clip(id)+" is already registered to another client (one client per SPIFFE ID): clear it there first", err)
}

// errSPIFFEIDChanged refuses an update that raced with another change of
// the client's spiffe_id.
var errSPIFFEIDChanged = apierr.New(http.StatusConflict, "conflict",
	"the client's spiffe_id changed during the update; retry", nil)

func isExists(err error) bool { return errors.Is(err, storage.ErrAlreadyExists) }
