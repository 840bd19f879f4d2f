package idp

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/gatehouse/gatehouse/internal/storage"
	"github.com/gatehouse/gatehouse/internal/ui"
)

// loginFailed is the one message for every credential failure (BF-02).
const loginFailed = "Incorrect username or password."

// loadAuthRequest fetches the pending auth request named by the form or query.
func (p *Provider) loadAuthRequest(w http.ResponseWriter, r *http.Request) (storage.AuthRequest, storage.Client, bool) {
	id := r.FormValue("auth_request")
	if id == "" || len(id) > 128 {
		p.errorPage(w, http.StatusBadRequest, "Sign-in link invalid", "Start again from the application.")
		return storage.AuthRequest{}, storage.Client{}, false
	}
	req, err := p.store.GetAuthRequest(r.Context(), id, p.now())
	if err != nil {
		if errors.Is(err, storage.ErrNotFound) || errors.Is(err, storage.ErrExpired) {
			p.errorPage(w, http.StatusBadRequest, "Sign-in expired", "This sign-in attempt has expired or was already used. Start again from the application.")
		} else {
			p.storagePage(w, err)
		}
		return storage.AuthRequest{}, storage.Client{}, false
	}
	c, err := p.clients.get(r.Context(), req.ClientID)
	if err != nil {
		p.errorPage(w, http.StatusBadRequest, "Unknown application", "The application is no longer registered.")
		return storage.AuthRequest{}, storage.Client{}, false
	}
	return req, c, true
}

func clientName(c storage.Client) string {
	if c.Name != "" {
		return c.Name
	}
	return c.ID
}

// handleLogin shows (GET) and checks (POST) the login form.
func (p *Provider) handleLogin(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet, http.MethodPost:
	default:
		p.errorPage(w, http.StatusMethodNotAllowed, "Method not allowed", "Use the sign-in form.")
		return
	}
	if r.Method == http.MethodPost {
		r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
		if err := r.ParseForm(); err != nil {
			p.errorPage(w, http.StatusBadRequest, "Invalid request", "The form could not be read.")
			return
		}
	}
	req, c, ok := p.loadAuthRequest(w, r)
	if !ok {
		return
	}
	page := ui.LoginPage{Action: p.endpoint(pathLogin), AuthRequestID: req.ID, ClientName: clientName(c), Username: req.LoginHint}
	if r.Method == http.MethodGet {
		page.CSRF = p.csrfToken(w, r, req.ID)
		p.ui.Login(w, http.StatusOK, page)
		return
	}
	if !p.checkCSRF(r, req.ID) {
		p.metrics.logins.WithLabelValues("csrf_rejected").Inc()
		p.errorPage(w, http.StatusForbidden, "Request blocked", "The form was not submitted from this site, or it expired. Go back and try again.")
		return
	}
	page.CSRF = p.csrfToken(w, r, req.ID)
	username := strings.ToLower(strings.TrimSpace(r.PostFormValue("username")))
	password := r.PostFormValue("password")
	page.Username = username
	if len(username) > 256 {
		username = username[:256]
	}
	ip := "ip:" + p.clientIP(r)
	acct := "acct:" + username
	if ok, _ := p.ipLim.Check(ip); !ok {
		p.throttled(w, page)
		return
	}
	if ok, _ := p.acctLim.Check(acct); !ok {
		p.throttled(w, page)
		return
	}
	u, err := p.store.GetUserByUsername(r.Context(), username)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		p.storagePage(w, err)
		return
	}
	valid := false
	if err == nil {
		okPw, rehash, verr := p.passwords.Verify(password, u.PasswordHash)
		valid = verr == nil && okPw && !u.Disabled
		if valid && rehash {
			p.upgradeHash(r, u.ID, password)
		}
	} else {
		p.passwords.Dummy(password) // same time for unknown users (BF-02)
	}
	if !valid {
		p.ipLim.Fail(ip)
		p.acctLim.Fail(acct)
		p.metrics.logins.WithLabelValues("failed").Inc()
		page.Error = loginFailed
		p.ui.Login(w, http.StatusUnauthorized, page)
		return
	}
	p.acctLim.Reset(acct)
	sess, err := p.startSession(w, r, u, []string{"pwd"})
	if err != nil {
		p.storagePage(w, err)
		return
	}
	err = p.store.UpdateAuthRequest(r.Context(), req.ID, p.now(), func(a storage.AuthRequest) (storage.AuthRequest, error) {
		a.UserID, a.SessionID, a.AuthTime, a.AMR = u.ID, sess.IDHash, sess.AuthTime, sess.AMR
		return a, nil
	})
	if err != nil {
		p.storagePage(w, err)
		return
	}
	p.metrics.logins.WithLabelValues("succeeded").Inc()
	req.UserID, req.SessionID, req.AuthTime, req.AMR = u.ID, sess.IDHash, sess.AuthTime, sess.AMR
	if p.needsConsent(c, req) {
		http.Redirect(w, r, p.endpoint(pathConsent)+"?auth_request="+url.QueryEscape(req.ID), http.StatusSeeOther)
		return
	}
	p.finishAuthorization(w, r, req)
}

func (p *Provider) throttled(w http.ResponseWriter, page ui.LoginPage) {
	p.metrics.logins.WithLabelValues("throttled").Inc()
	page.Error = "Too many attempts. Wait a few minutes and try again."
	p.ui.Login(w, http.StatusTooManyRequests, page)
}

// upgradeHash re-hashes a password whose stored parameters are outdated.
// Failure only delays the upgrade to the next login.
func (p *Provider) upgradeHash(r *http.Request, userID, password string) {
	h, err := p.passwords.Hash(password)
	if err != nil {
		return
	}
	// UpdateUser with a changed hash revokes grants and sessions by contract,
	// so the upgrade happens before the new session is created.
	_ = p.store.UpdateUser(r.Context(), userID, func(u storage.User) (storage.User, error) {
		u.PasswordHash = h
		return u, nil
	})
}

// handleConsent shows (GET) and records (POST) the user's decision.
func (p *Provider) handleConsent(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost {
		r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
		if err := r.ParseForm(); err != nil {
			p.errorPage(w, http.StatusBadRequest, "Invalid request", "The form could not be read.")
			return
		}
	} else if r.Method != http.MethodGet {
		p.errorPage(w, http.StatusMethodNotAllowed, "Method not allowed", "Use the consent form.")
		return
	}
	req, c, ok := p.loadAuthRequest(w, r)
	if !ok {
		return
	}
	// Only the browser whose session authenticated this request may decide.
	sess, has := p.currentSession(r)
	if req.UserID == "" || !has || sess.IDHash != req.SessionID {
		p.errorPage(w, http.StatusForbidden, "Sign-in required", "Sign in again from the application.")
		return
	}
	if r.Method == http.MethodGet {
		page := ui.ConsentPage{Action: p.endpoint(pathConsent), CSRF: p.csrfToken(w, r, req.ID), AuthRequestID: req.ID,
			ClientName: clientName(c)}
		for _, a := range req.Audience {
			if a != p.cfg.Issuer { // the issuer itself means nothing to a user
				page.Audience = append(page.Audience, a)
			}
		}
		for _, s := range req.Scopes {
			page.Scopes = append(page.Scopes, ui.Scope{Name: s, Description: scopeDescription(s)})
		}
		p.ui.Consent(w, http.StatusOK, page)
		return
	}
	if !p.checkCSRF(r, req.ID) {
		p.errorPage(w, http.StatusForbidden, "Request blocked", "The form was not submitted from this site, or it expired. Go back and try again.")
		return
	}
	if r.PostFormValue("decision") != "allow" {
		_ = p.store.DeleteAuthRequest(r.Context(), req.ID)
		p.redirectToClient(w, r, req.RedirectURI, req.State, url.Values{"error": {string(oidc.AccessDenied)},
			"error_description": {"the user denied the request"}})
		return
	}
	req.Consented = true
	p.finishAuthorization(w, r, req)
}
