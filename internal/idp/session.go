package idp

import (
	"context"
	"crypto/hmac"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/gatehouse/gatehouse/internal/secret"
	"github.com/gatehouse/gatehouse/internal/storage"
)

// Cookie names. The __Host- prefix forces Secure, Path=/ and no Domain
// (SE-02); browsers accept it on https and on http://localhost.
const (
	sessionCookie = "__Host-gatehouse-session"
	csrfCookie    = "__Host-gatehouse-csrf"
)

// currentSession returns the live IdP session named by the session cookie.
// Unknown, expired or idle sessions are ignored, never adopted (SE-01/SE-03).
// Session ids in URLs are never read.
func (p *Provider) currentSession(r *http.Request) (storage.Session, bool) {
	ck, err := r.Cookie(sessionCookie)
	if err != nil || ck.Value == "" || len(ck.Value) > 128 {
		return storage.Session{}, false
	}
	s, err := p.store.GetSession(r.Context(), secret.Lookup(ck.Value))
	if err != nil {
		return storage.Session{}, false
	}
	now := p.now()
	if !now.Before(s.ExpiresAt) || now.Sub(s.LastSeenAt) > p.cfg.SessionIdle {
		return storage.Session{}, false
	}
	if now.Sub(s.LastSeenAt) > time.Minute {
		_ = p.store.TouchSession(r.Context(), s.IDHash, now)
	}
	return s, true
}

// startSession creates a new session for u, replacing (and deleting) any
// session the browser had: the id always changes at login (SE-01).
func (p *Provider) startSession(w http.ResponseWriter, r *http.Request, u storage.User, amr []string) (storage.Session, error) {
	if ck, err := r.Cookie(sessionCookie); err == nil && ck.Value != "" && len(ck.Value) <= 128 {
		_ = p.store.DeleteSession(r.Context(), secret.Lookup(ck.Value))
	}
	now := p.now()
	id := secret.New()
	s := storage.Session{IDHash: secret.Lookup(id), UserID: u.ID, AuthTime: now, AMR: amr,
		CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(p.cfg.SessionAbsolute)}
	if err := p.store.CreateSession(r.Context(), s); err != nil {
		return storage.Session{}, err
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: id, Path: "/", Secure: true, HttpOnly: true,
		SameSite: http.SameSiteLaxMode, MaxAge: int(p.cfg.SessionAbsolute / time.Second)})
	return s, nil
}

// endSession deletes the browser's server-side session, revokes the grants
// it created, and clears the cookie (SE-03, OA-T "revoked on logout").
func (p *Provider) endSession(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", Secure: true, HttpOnly: true,
		SameSite: http.SameSiteLaxMode, MaxAge: -1})
	ck, err := r.Cookie(sessionCookie)
	if err != nil || ck.Value == "" || len(ck.Value) > 128 {
		return nil
	}
	h := secret.Lookup(ck.Value)
	if err := p.store.RevokeGrantsForSession(ctx, h, "logout", p.now()); err != nil && !errors.Is(err, storage.ErrNotFound) {
		return err
	}
	if err := p.store.DeleteSession(ctx, h); err != nil && !errors.Is(err, storage.ErrNotFound) {
		return err
	}
	// Apply the revocations on this replica at once, not at the next poll.
	if err := p.revoked.refresh(ctx); err != nil {
		p.log.Warn("revocation refresh after logout", "err", err)
	}
	return nil
}

// csrfToken returns the CSRF token for a form bound to purpose (the auth
// request id, or "logout"): an HMAC over a per-browser random cookie and the
// purpose, so a token from another browser or another request fails (CS-01).
func (p *Provider) csrfToken(w http.ResponseWriter, r *http.Request, purpose string) string {
	ck, err := r.Cookie(csrfCookie)
	val := ""
	if err == nil && len(ck.Value) >= 22 && len(ck.Value) <= 64 {
		val = ck.Value
	} else {
		val = secret.Token(16)
		http.SetCookie(w, &http.Cookie{Name: csrfCookie, Value: val, Path: "/", Secure: true, HttpOnly: true,
			SameSite: http.SameSiteLaxMode})
	}
	return base64.RawURLEncoding.EncodeToString(p.secrets.Sum("csrf|" + val + "|" + purpose))
}

// checkCSRF verifies a state-changing POST: same-origin by Sec-Fetch-Site and
// Origin when the browser sends them, and a CSRF token bound to the browser
// and to purpose.
func (p *Provider) checkCSRF(r *http.Request, purpose string) bool {
	if r.Method != http.MethodPost {
		return false
	}
	sfs := r.Header.Get("Sec-Fetch-Site")
	if sfs != "" && sfs != "same-origin" && sfs != "none" {
		return false
	}
	// Pages are served with Referrer-Policy: no-referrer, so browsers send
	// "Origin: null" on their own same-origin form posts. "null" is accepted
	// only when Sec-Fetch-Site vouches for the same origin.
	if o := r.Header.Get("Origin"); o == "null" {
		if sfs != "same-origin" {
			return false
		}
	} else if o != "" {
		ou, err := url.Parse(o)
		if err != nil || ou.Scheme != p.issuer.Scheme || ou.Host != p.issuer.Host {
			return false
		}
	}
	ck, err := r.Cookie(csrfCookie)
	if err != nil || len(ck.Value) < 22 || len(ck.Value) > 64 {
		return false
	}
	got, err := base64.RawURLEncoding.DecodeString(r.PostFormValue("csrf"))
	if err != nil {
		return false
	}
	return hmac.Equal(got, p.secrets.Sum("csrf|"+ck.Value+"|"+purpose))
}
