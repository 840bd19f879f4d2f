package admin

import (
	"net/http"

	"github.com/gatehouse/gatehouse/internal/apierr"
)

// maxKIDLen bounds the kid path value; the kid is otherwise opaque (JWT-B04).
const maxKIDLen = 256

func (h *handler) listKeys(r *http.Request) (int, any, error) {
	ks, err := h.d.Keys.Keys(r.Context())
	if err != nil {
		return 0, nil, err
	}
	if ks == nil {
		ks = []KeyInfo{}
	}
	return http.StatusOK, KeyList{Keys: ks}, nil
}

func (h *handler) rotateKey(r *http.Request) (int, any, error) {
	k, err := h.d.Keys.Rotate(r.Context())
	if err != nil {
		return 0, nil, err
	}
	h.d.Log.Info("admin: signing key rotated", "kid", k.ID)
	return http.StatusOK, k, nil
}

func (h *handler) revokeKey(r *http.Request) (int, any, error) {
	kid := r.PathValue("kid")
	if kid == "" || len(kid) > maxKIDLen || hasControl(kid) {
		return 0, nil, apierr.NotFound("no such key")
	}
	if err := h.d.Keys.Revoke(r.Context(), kid); err != nil {
		return 0, nil, err
	}
	h.d.Log.Warn("admin: signing key revoked", "kid", kid)
	return http.StatusNoContent, nil, nil
}
