package idp

import (
	"net/http"
	"net/url"

	"github.com/gatehouse/gatehouse/internal/ui"
	"github.com/gatehouse/gatehouse/sdk/jwtx"
)

// handleEndSession is RP-initiated logout (OpenID Connect RP-Initiated
// Logout 1.0). It never changes state: it validates the request and shows a
// confirmation form that POSTs to /logout with a CSRF token (CS-01). A forged
// or unverifiable id_token_hint, or an unregistered post_logout_redirect_uri,
// means no redirect at all (OA-L, OA-R).
func (p *Provider) handleEndSession(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		p.errorPage(w, http.StatusMethodNotAllowed, "Method not allowed", "Use GET or POST.")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		p.errorPage(w, http.StatusBadRequest, "Invalid request", "The sign-out request could not be read.")
		return
	}
	clientID := r.Form.Get("client_id")
	if hint := r.Form.Get("id_token_hint"); hint != "" {
		aud, ok := p.verifyIDTokenHint(hint)
		if !ok || (clientID != "" && clientID != aud) {
			p.errorPage(w, http.StatusBadRequest, "Invalid sign-out request", "The sign-out request could not be verified.")
			return
		}
		clientID = aud
	}
	redirect := r.Form.Get("post_logout_redirect_uri")
	page := ui.LogoutPage{Action: p.endpoint(pathLogout), CSRF: p.csrfToken(w, r, "logout")}
	if clientID != "" {
		c, err := p.clients.get(r.Context(), clientID)
		if err != nil {
			p.errorPage(w, http.StatusBadRequest, "Invalid sign-out request", "The application is not registered.")
			return
		}
		page.ClientName = clientName(c)
		page.Hidden = append(page.Hidden, ui.Hidden{Name: "client_id", Value: c.ID})
	}
	if redirect != "" {
		if clientID == "" || !p.postLogoutAllowed(r, clientID, redirect) {
			p.errorPage(w, http.StatusBadRequest, "Invalid sign-out request", "The return address is not registered for this application.")
			return
		}
		page.Hidden = append(page.Hidden, ui.Hidden{Name: "post_logout_redirect_uri", Value: redirect})
		if st := r.Form.Get("state"); st != "" && len(st) <= maxStateLen {
			page.Hidden = append(page.Hidden, ui.Hidden{Name: "state", Value: st})
		}
	}
	p.ui.Logout(w, http.StatusOK, page)
}

func (p *Provider) postLogoutAllowed(r *http.Request, clientID, uri string) bool {
	c, err := p.clients.get(r.Context(), clientID)
	return err == nil && MatchRedirectURI(c.PostLogoutRedirectURIs, uri)
}

// verifyIDTokenHint checks that hint is an ID token we signed (expiry is not
// required: RP-initiated logout accepts expired hints) and returns its client.
func (p *Provider) verifyIDTokenHint(hint string) (string, bool) {
	_, payload, err := jwtx.Verify(hint, p.signer.PublicKey, jwtx.Options{MaxLen: 8192, Typ: []string{typIDToken}})
	if err != nil {
		return "", false
	}
	c, err := jwtx.ParseClaims(payload)
	if err != nil || c.Issuer != p.cfg.Issuer || len(c.Audience) != 1 {
		return "", false
	}
	return c.Audience[0], true
}

// handleLogout performs the confirmed logout (POST only, CSRF-checked).
func (p *Provider) handleLogout(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		p.errorPage(w, http.StatusMethodNotAllowed, "Method not allowed", "Sign out with the sign-out form.")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil || !p.checkCSRF(r, "logout") {
		p.errorPage(w, http.StatusForbidden, "Request blocked", "The form was not submitted from this site, or it expired.")
		return
	}
	clientID := r.PostFormValue("client_id")
	redirect := r.PostFormValue("post_logout_redirect_uri")
	redirectOK := redirect != "" && clientID != "" && p.postLogoutAllowed(r, clientID, redirect)
	if r.PostFormValue("decision") != "logout" {
		p.ui.Message(w, http.StatusOK, ui.MessagePage{Title: "Still signed in", Message: "You did not sign out."})
		return
	}
	if err := p.endSession(r.Context(), w, r); err != nil {
		p.storagePage(w, err)
		return
	}
	p.metrics.logins.WithLabelValues("logout").Inc()
	if redirectOK {
		u, err := url.Parse(redirect)
		if err == nil {
			if st := r.PostFormValue("state"); st != "" {
				q := u.Query()
				q.Set("state", st)
				u.RawQuery = q.Encode()
			}
			http.Redirect(w, r, u.String(), http.StatusSeeOther)
			return
		}
	}
	p.ui.Message(w, http.StatusOK, ui.MessagePage{Title: "You are signed out", Message: "You have been signed out of Gatehouse."})
}
