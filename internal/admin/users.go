package admin

import (
	"net/http"
	"strings"

	"github.com/gatehouse/gatehouse/internal/apierr"
	"github.com/gatehouse/gatehouse/internal/secret"
	"github.com/gatehouse/gatehouse/internal/storage"
)

func userResponse(u storage.User) UserResponse {
	return UserResponse{
		ID:            u.ID,
		Username:      u.Username,
		Email:         u.Email,
		EmailVerified: u.EmailVerified,
		Name:          u.Name,
		HasPassword:   u.PasswordHash != "",
		Roles:         nonNil(u.Roles),
		Groups:        nonNil(u.Groups),
		Tenant:        u.Tenant,
		Disabled:      u.Disabled,
		CreatedAt:     u.CreatedAt,
		UpdatedAt:     u.UpdatedAt,
	}
}

// userID returns the {id} path value, or 404 when it cannot name a user.
func userID(r *http.Request) (string, error) {
	id := r.PathValue("id")
	if !validClientID(id) {
		return "", apierr.NotFound("no such user")
	}
	return id, nil
}

// lowerASCII lower-cases s when it is pure ASCII and returns it unchanged
// otherwise (to fail validation): strings.ToLower would fold look-alikes
// such as the Kelvin sign U+212A into ASCII letters.
func lowerASCII(s string) string {
	for i := range len(s) {
		if s[i] >= 0x80 {
			return s
		}
	}
	return strings.ToLower(s)
}

// hashPassword applies the length cap, the policy and the hasher.
func (h *handler) hashPassword(pw string) (string, error) {
	if pw == "" {
		return "", apierr.BadRequest("password: required", nil)
	}
	if len(pw) > maxPassword {
		return "", apierr.BadRequest("password: at most 1024 bytes", nil)
	}
	if err := h.d.Policy(pw); err != nil {
		return "", apierr.BadRequest("password: "+err.Error(), err)
	}
	hash, err := h.d.Passwords.Hash(pw)
	if err != nil {
		return "", apierr.Internal(err)
	}
	return hash, nil
}

func (h *handler) listUsers(r *http.Request) (int, any, error) {
	us, err := h.d.Users.ListUsers(r.Context())
	if err != nil {
		return 0, nil, err
	}
	out := UserList{Users: make([]UserResponse, 0, len(us))}
	for _, u := range us {
		out.Users = append(out.Users, userResponse(u))
	}
	return http.StatusOK, out, nil
}

func (h *handler) getUser(r *http.Request) (int, any, error) {
	id, err := userID(r)
	if err != nil {
		return 0, nil, err
	}
	u, err := h.d.Users.GetUser(r.Context(), id)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, userResponse(u), nil
}

func (h *handler) createUser(r *http.Request) (int, any, error) {
	var req UserRequest
	if err := decodeBody(r, &req); err != nil {
		return 0, nil, err
	}
	now := h.d.Now().UTC()
	u := storage.User{
		ID:            secret.ID(),
		Username:      lowerASCII(req.Username),
		Email:         req.Email,
		EmailVerified: req.EmailVerified,
		Name:          req.Name,
		Roles:         dedupe(req.Roles),
		Groups:        dedupe(req.Groups),
		Tenant:        req.Tenant,
		Disabled:      req.Disabled,
		CreatedAt:     now,
		UpdatedAt:     now,
	}
	var p problems
	validateUser(u, &p)
	if err := p.err(); err != nil {
		return 0, nil, err
	}
	if req.Password != "" {
		hash, err := h.hashPassword(req.Password)
		if err != nil {
			return 0, nil, err
		}
		u.PasswordHash = hash
	}
	if err := h.d.Users.CreateUser(r.Context(), u); err != nil {
		return 0, nil, err
	}
	h.d.Log.Info("admin: user created", "user_id", u.ID)
	return http.StatusCreated, userResponse(u), nil
}

// updateUser applies a patch. The store ends the user's sessions and refresh
// tokens in the same transaction when the result is disabled (SE-03).
func (h *handler) updateUser(r *http.Request) (int, any, error) {
	id, err := userID(r)
	if err != nil {
		return 0, nil, err
	}
	var req UserPatch
	if err := decodeBody(r, &req); err != nil {
		return 0, nil, err
	}
	now := h.d.Now().UTC()
	var out storage.User
	err = h.d.Users.UpdateUser(r.Context(), id, func(u storage.User) (storage.User, error) {
		set(&u.Email, req.Email)
		set(&u.EmailVerified, req.EmailVerified)
		set(&u.Name, req.Name)
		setList(&u.Roles, req.Roles)
		setList(&u.Groups, req.Groups)
		set(&u.Tenant, req.Tenant)
		set(&u.Disabled, req.Disabled)
		var p problems
		validateUser(u, &p)
		if err := p.err(); err != nil {
			return u, err
		}
		u.UpdatedAt = now
		out = u
		return u, nil
	})
	if err != nil {
		return 0, nil, err
	}
	h.d.Log.Info("admin: user updated", "user_id", id, "disabled", out.Disabled)
	return http.StatusOK, userResponse(out), nil
}

func (h *handler) deleteUser(r *http.Request) (int, any, error) {
	id, err := userID(r)
	if err != nil {
		return 0, nil, err
	}
	if err := h.d.Users.DeleteUser(r.Context(), id, h.d.Now().UTC()); err != nil {
		return 0, nil, err
	}
	h.d.Log.Info("admin: user deleted", "user_id", id)
	return http.StatusNoContent, nil, nil
}

// setPassword replaces the password; the store ends the user's sessions and
// refresh tokens because the hash changed (OA-T).
func (h *handler) setPassword(r *http.Request) (int, any, error) {
	id, err := userID(r)
	if err != nil {
		return 0, nil, err
	}
	var req PasswordRequest
	if err := decodeBody(r, &req); err != nil {
		return 0, nil, err
	}
	hash, err := h.hashPassword(req.Password)
	if err != nil {
		return 0, nil, err
	}
	now := h.d.Now().UTC()
	err = h.d.Users.UpdateUser(r.Context(), id, func(u storage.User) (storage.User, error) {
		u.PasswordHash, u.UpdatedAt = hash, now
		return u, nil
	})
	if err != nil {
		return 0, nil, err
	}
	h.d.Log.Info("admin: user password set", "user_id", id)
	return http.StatusNoContent, nil, nil
}
