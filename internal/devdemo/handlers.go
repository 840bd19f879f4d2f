package devdemo

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/gatehouse/gatehouse/internal/secret"
)

// home shows the sign-in link, or the signed-in state.
func (a *App) home(w http.ResponseWriter, r *http.Request) {
	data := homeData{Issuer: a.cfg.Issuer}
	s := a.currentSession(r)
	if s == nil {
		a.render(w, http.StatusOK, a.pages.home, data)
		return
	}
	s.mu.Lock()
	data.SignedIn = true
	data.Claims = s.claims
	data.CSRF = s.csrf
	data.IDToken = truncate(s.rawID)
	data.AccessToken = truncate(s.token.AccessToken)
	data.RefreshToken = truncate(s.token.RefreshToken)
	data.Expiry = formatExpiry(s.token.Expiry, a.now())
	if sc, ok := s.token.Extra("scope").(string); ok {
		data.Scope = sc
	} else {
		data.Scope = "(not stated)"
	}
	data.Refreshed, data.Userinfo, data.Error = s.flashRefreshed, s.flashUserinfo, s.flashError
	s.flashRefreshed, s.flashUserinfo, s.flashError = false, "", ""
	s.mu.Unlock()
	a.render(w, http.StatusOK, a.pages.home, data)
}

// login starts an authorization code flow with PKCE, state and nonce.
func (a *App) login(w http.ResponseWriter, r *http.Request) {
	p, ok := a.provider503(w, r)
	if !ok {
		return
	}
	f := &flow{
		state:    secret.Token(32),
		nonce:    secret.Token(32),
		verifier: oauth2.GenerateVerifier(),
		expires:  a.now().Add(flowTTL),
	}
	id := secret.New()
	if err := a.flows.put(secret.Lookup(id), f, a.now()); err != nil {
		a.log.Warn("devdemo: refusing login", "err", err)
		a.fail(w, http.StatusServiceUnavailable, "Too many logins in progress; try again later.")
		return
	}
	http.SetCookie(w, a.cookie(flowCookie, id, int(flowTTL.Seconds())))
	u := a.oauth2Config(p).AuthCodeURL(f.state, oidc.Nonce(f.nonce), oauth2.S256ChallengeOption(f.verifier))
	http.Redirect(w, r, u, http.StatusFound)
}

// callback finishes the flow: state, iss (RFC 9207), code exchange with the
// PKCE verifier, ID token signature, audience, expiry and nonce.
func (a *App) callback(w http.ResponseWriter, r *http.Request) {
	p, ok := a.provider503(w, r)
	if !ok {
		return
	}
	http.SetCookie(w, a.cookie(flowCookie, "", -1))
	var f *flow
	if c, err := r.Cookie(flowCookie); err == nil {
		f, _ = a.flows.take(secret.Lookup(c.Value), a.now())
	}
	if f == nil {
		a.fail(w, http.StatusBadRequest, "No sign-in is in progress in this browser (or it expired). Start again.")
		return
	}
	q := r.URL.Query()
	if subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(f.state)) != 1 {
		a.log.Warn("devdemo: callback state mismatch")
		a.fail(w, http.StatusBadRequest, "The state parameter does not match this sign-in.")
		return
	}
	if err := a.checkIss(p, q); err != nil {
		a.log.Warn("devdemo: callback rejected", "err", err)
		a.fail(w, http.StatusBadRequest, "The response does not come from the expected issuer.")
		return
	}
	if e := q.Get("error"); e != "" {
		msg := "The identity provider returned an error: " + e
		if d := q.Get("error_description"); d != "" {
			msg += ": " + d
		}
		a.fail(w, http.StatusBadRequest, clip(msg, 500))
		return
	}
	code := q.Get("code")
	if code == "" {
		a.fail(w, http.StatusBadRequest, "The response carries no authorization code.")
		return
	}
	ctx := a.withClient(r.Context())
	tok, err := a.oauth2Config(p).Exchange(ctx, code, oauth2.VerifierOption(f.verifier))
	if err != nil {
		a.log.Warn("devdemo: code exchange failed", "err", tokenErrLog(err))
		a.fail(w, http.StatusBadGateway, "The code exchange failed: "+describeTokenErr(err))
		return
	}
	rawID, idt, err := a.verifyID(ctx, p, tok)
	if err != nil {
		a.log.Warn("devdemo: ID token rejected", "err", err)
		a.fail(w, http.StatusBadGateway, "The ID token was rejected.")
		return
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(f.nonce)) != 1 {
		a.log.Warn("devdemo: ID token nonce mismatch")
		a.fail(w, http.StatusBadGateway, "The ID token was rejected: nonce mismatch.")
		return
	}
	var cl idClaims
	if err := idt.Claims(&cl); err != nil {
		a.fail(w, http.StatusBadGateway, "The ID token claims could not be read.")
		return
	}
	// A new session id at every sign-in (SE-01); the old one, if any, ends.
	if c, err := r.Cookie(sessionCookie); err == nil {
		a.sessions.remove(secret.Lookup(c.Value))
	}
	s := &session{
		csrf:    secret.New(),
		expires: a.now().Add(sessionTTL),
		sub:     idt.Subject,
		claims:  cl,
		rawID:   rawID,
		token:   tok,
	}
	id := secret.New()
	if err := a.sessions.put(secret.Lookup(id), s, a.now()); err != nil {
		a.log.Warn("devdemo: refusing session", "err", err)
		a.fail(w, http.StatusServiceUnavailable, "Too many sessions; try again later.")
		return
	}
	http.SetCookie(w, a.cookie(sessionCookie, id, int(sessionTTL.Seconds())))
	a.log.Info("devdemo: signed in", "sub", idt.Subject)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// checkIss applies RFC 9207: when the IdP advertises the iss parameter it
// must be present; when present it must equal the issuer exactly.
func (a *App) checkIss(p *oidc.Provider, q url.Values) error {
	var meta struct {
		IssSupported bool `json:"authorization_response_iss_parameter_supported"`
	}
	if err := p.Claims(&meta); err != nil {
		return fmt.Errorf("read discovery: %w", err)
	}
	iss, present := q["iss"]
	switch {
	case !present && meta.IssSupported:
		return errors.New("iss parameter missing")
	case present && (len(iss) != 1 || iss[0] != a.cfg.Issuer):
		return errors.New("iss parameter does not match the issuer")
	}
	return nil
}

// verifyID verifies the ID token in tok (signature, iss, aud, exp) and, when
// it carries at_hash, that the access token belongs to it.
func (a *App) verifyID(ctx context.Context, p *oidc.Provider, tok *oauth2.Token) (string, *oidc.IDToken, error) {
	raw, ok := tok.Extra("id_token").(string)
	if !ok || raw == "" {
		return "", nil, errors.New("token response has no id_token")
	}
	idt, err := p.Verifier(&oidc.Config{ClientID: a.cfg.ClientID}).Verify(ctx, raw)
	if err != nil {
		return "", nil, fmt.Errorf("verify id_token: %w", err)
	}
	if idt.AccessTokenHash != "" {
		if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
			return "", nil, fmt.Errorf("verify at_hash: %w", err)
		}
	}
	return raw, idt, nil
}

// refresh redeems the refresh token for new tokens.
func (a *App) refresh(w http.ResponseWriter, r *http.Request) {
	s, ok := a.postSession(w, r)
	if !ok {
		return
	}
	p, ok := a.provider503(w, r)
	if !ok {
		return
	}
	s.mu.Lock()
	old := s.token
	s.mu.Unlock()
	if old.RefreshToken == "" {
		a.flash(w, r, s, func(s *session) { s.flashError = "There is no refresh token (was offline_access granted?)." })
		return
	}
	ctx := a.withClient(r.Context())
	// A token with only a refresh token is never Valid, so Token() refreshes.
	tok, err := a.oauth2Config(p).TokenSource(ctx, &oauth2.Token{RefreshToken: old.RefreshToken}).Token()
	if err != nil {
		a.log.Warn("devdemo: refresh failed", "err", tokenErrLog(err))
		a.flash(w, r, s, func(s *session) { s.flashError = "Refresh failed: " + describeTokenErr(err) })
		return
	}
	var rawID string
	var claims *idClaims
	if _, has := tok.Extra("id_token").(string); has {
		raw, idt, err := a.verifyID(ctx, p, tok)
		var cl idClaims
		if err == nil {
			err = idt.Claims(&cl)
		}
		if err == nil && idt.Subject != s.sub {
			err = errors.New("refreshed ID token is for another subject")
		}
		if err != nil {
			a.log.Warn("devdemo: refreshed ID token rejected", "err", err)
			a.flash(w, r, s, func(s *session) { s.flashError = "The refreshed ID token was rejected." })
			return
		}
		rawID, claims = raw, &cl
	}
	a.flash(w, r, s, func(s *session) {
		s.token = tok
		if claims != nil {
			s.rawID, s.claims = rawID, *claims
		}
		s.flashRefreshed = true
	})
}

// userinfo calls the IdP's userinfo endpoint with the access token.
func (a *App) userinfo(w http.ResponseWriter, r *http.Request) {
	s, ok := a.postSession(w, r)
	if !ok {
		return
	}
	p, ok := a.provider503(w, r)
	if !ok {
		return
	}
	s.mu.Lock()
	tok, sub := s.token, s.sub
	s.mu.Unlock()
	ui, err := p.UserInfo(a.withClient(r.Context()), oauth2.StaticTokenSource(tok))
	if err == nil && ui.Subject != sub {
		err = errors.New("userinfo is for another subject")
	}
	var raw json.RawMessage
	if err == nil {
		err = ui.Claims(&raw)
	}
	var pretty bytes.Buffer
	if err == nil {
		err = json.Indent(&pretty, raw, "", "  ")
	}
	if err != nil {
		a.log.Warn("devdemo: userinfo failed", "err", err)
		a.flash(w, r, s, func(s *session) { s.flashError = "The userinfo call failed." })
		return
	}
	a.flash(w, r, s, func(s *session) { s.flashUserinfo = pretty.String() })
}

// logout ends the local session and sends the browser to the IdP's
// end_session_endpoint (RP-initiated logout) when it has one.
func (a *App) logout(w http.ResponseWriter, r *http.Request) {
	s, ok := a.postSession(w, r)
	if !ok {
		return
	}
	if c, err := r.Cookie(sessionCookie); err == nil {
		a.sessions.remove(secret.Lookup(c.Value))
	}
	http.SetCookie(w, a.cookie(sessionCookie, "", -1))
	a.log.Info("devdemo: signed out", "sub", s.sub)
	p, err := a.discover(r.Context())
	var meta struct {
		EndSession string `json:"end_session_endpoint"`
	}
	if err == nil {
		err = p.Claims(&meta)
	}
	if err != nil || meta.EndSession == "" || a.origin == "" {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	u, err := url.Parse(meta.EndSession)
	if err != nil {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	s.mu.Lock()
	rawID := s.rawID
	s.mu.Unlock()
	q := u.Query()
	q.Set("id_token_hint", rawID)
	q.Set("client_id", a.cfg.ClientID)
	q.Set("post_logout_redirect_uri", a.origin+"/")
	q.Set("state", secret.New())
	u.RawQuery = q.Encode()
	http.Redirect(w, r, u.String(), http.StatusSeeOther)
}

// provider503 returns the provider or answers 503 when the IdP is down.
func (a *App) provider503(w http.ResponseWriter, r *http.Request) (*oidc.Provider, bool) {
	p, err := a.discover(r.Context())
	if err != nil {
		a.log.Warn("devdemo: discovery failed", "issuer", a.cfg.Issuer, "err", err)
		w.Header().Set("Retry-After", "2")
		a.fail(w, http.StatusServiceUnavailable,
			"The Gatehouse IdP at "+a.cfg.Issuer+" is not reachable yet. Is `gatehouse dev` running? Reload in a moment.")
		return nil, false
	}
	return p, true
}

// currentSession returns the session named by the request's cookie, if any.
// Unknown ids are ignored, never adopted (SE-01).
func (a *App) currentSession(r *http.Request) *session {
	c, err := r.Cookie(sessionCookie)
	if err != nil || c.Value == "" {
		return nil
	}
	s, ok := a.sessions.get(secret.Lookup(c.Value), a.now())
	if !ok {
		return nil
	}
	return s
}

// postSession checks that a POST comes from a signed-in browser with the
// session's CSRF token (CS-01). It answers 403 otherwise.
func (a *App) postSession(w http.ResponseWriter, r *http.Request) (*session, bool) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	s := a.currentSession(r)
	if s == nil {
		a.fail(w, http.StatusForbidden, "You are not signed in (or your session expired).")
		return nil, false
	}
	got := r.PostFormValue("csrf")
	s.mu.Lock()
	want := s.csrf
	s.mu.Unlock()
	if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
		a.log.Warn("devdemo: CSRF token missing or wrong", "path", r.URL.Path)
		a.fail(w, http.StatusForbidden, "The form's CSRF token is missing or wrong. Reload the page and try again.")
		return nil, false
	}
	return s, true
}

// flash updates the session and redirects to the home page, which shows the
// result once (post/redirect/get).
func (a *App) flash(w http.ResponseWriter, r *http.Request, s *session, update func(*session)) {
	s.mu.Lock()
	update(s)
	s.mu.Unlock()
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// cookie returns a host-only, HttpOnly, SameSite=Lax cookie at Path=/.
// maxAge < 0 deletes it.
func (a *App) cookie(name, value string, maxAge int) *http.Cookie {
	return &http.Cookie{
		Name:     name,
		Value:    value,
		Path:     "/",
		MaxAge:   maxAge,
		HttpOnly: true,
		Secure:   a.secure,
		SameSite: http.SameSiteLaxMode,
	}
}

// describeTokenErr renders a token endpoint failure without its response
// body, which is never echoed or logged.
func describeTokenErr(err error) string {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		status := 0
		if re.Response != nil {
			status = re.Response.StatusCode
		}
		if re.ErrorCode != "" {
			return fmt.Sprintf("HTTP %d, error %q", status, re.ErrorCode)
		}
		return fmt.Sprintf("HTTP %d", status)
	}
	return "the token endpoint call failed"
}

// tokenErrLog is what the log gets for a token endpoint failure: the
// response body of a RetrieveError is left out.
func tokenErrLog(err error) any {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		return describeTokenErr(err)
	}
	return err
}

// clip cuts s to at most n bytes of valid UTF-8, for echoing untrusted text.
func clip(s string, n int) string {
	if len(s) > n {
		s = s[:n] + "…"
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}
