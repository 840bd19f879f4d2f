package idp

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
	"github.com/zitadel/schema"

	"github.com/gatehouse/gatehouse/internal/secret"
	"github.com/gatehouse/gatehouse/internal/storage"
	"github.com/gatehouse/gatehouse/internal/ui"
)

// maxStateLen bounds state and nonce; 2 KB of state must round-trip (OA-M).
const maxStateLen = 4096

var formDecoder = func() *schema.Decoder {
	d := schema.NewDecoder()
	d.IgnoreUnknownKeys(true)
	return d
}()

// handleAuthorize is the authorization endpoint (RFC 6749 §4.1.1, OIDC Core
// §3.1.2). Until client_id and redirect_uri are proven good, every error is a
// page on the IdP; afterwards errors go back to the client with state and iss.
func (p *Provider) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		p.errorPage(w, http.StatusMethodNotAllowed, "Method not allowed", "Use GET or POST.")
		return
	}
	if r.Method == http.MethodPost {
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	}
	if err := r.ParseForm(); err != nil {
		p.errorPage(w, http.StatusBadRequest, "Invalid request", "The authorization request could not be read.")
		return
	}
	for _, k := range []string{"client_id", "redirect_uri", "state", "response_type", "code_challenge", "code_challenge_method", "nonce", "scope", "prompt", "max_age"} {
		if len(r.Form[k]) > 1 {
			p.errorPage(w, http.StatusBadRequest, "Invalid request", "A parameter of the authorization request is repeated.")
			return
		}
	}
	ar, err := op.ParseAuthorizeRequest(r, formDecoder)
	if err != nil {
		p.errorPage(w, http.StatusBadRequest, "Invalid request", "The authorization request could not be read.")
		return
	}
	ctx := r.Context()
	c, err := p.clients.get(ctx, ar.ClientID)
	if err != nil {
		if errors.Is(err, storage.ErrNotFound) || ar.ClientID == "" {
			p.errorPage(w, http.StatusBadRequest, "Unknown application", "The application that sent you here is not registered.")
			return
		}
		p.storagePage(w, err)
		return
	}
	if !MatchRedirectURI(c.RedirectURIs, ar.RedirectURI) || !slices.Contains(c.GrantTypes, grantCode) {
		p.errorPage(w, http.StatusBadRequest, "Invalid redirect", "The application sent you here with a return address it has not registered.")
		return
	}
	// From here on the redirect URI is trusted.
	redirectErr := func(e *oidc.Error) {
		p.redirectToClient(w, r, ar.RedirectURI, ar.State, url.Values{"error": {string(e.ErrorType)}, "error_description": {e.Description}})
	}
	switch {
	case len(ar.State) > maxStateLen || len(ar.Nonce) > maxStateLen:
		redirectErr(oidc.ErrInvalidRequest().WithDescription("state or nonce too long"))
		return
	case ar.RequestParam != "" || r.Form.Get("request_uri") != "":
		redirectErr(oidc.ErrRequestNotSupported().WithDescription("request objects are not supported"))
		return
	case ar.ResponseType != oidc.ResponseTypeCode:
		redirectErr(&oidc.Error{ErrorType: "unsupported_response_type", Description: "only response_type=code is supported"})
		return
	case ar.ResponseMode != "" && ar.ResponseMode != oidc.ResponseModeQuery:
		redirectErr(oidc.ErrInvalidRequest().WithDescription("only response_mode=query is supported"))
		return
	case ar.CodeChallenge == "":
		redirectErr(oidc.ErrInvalidRequest().WithDescription("code_challenge (PKCE, S256) is required"))
		return
	case ar.CodeChallengeMethod != oidc.CodeChallengeMethodS256:
		redirectErr(oidc.ErrInvalidRequest().WithDescription("code_challenge_method must be S256"))
		return
	case len(ar.CodeChallenge) != 43 || !validVerifier(ar.CodeChallenge):
		redirectErr(oidc.ErrInvalidRequest().WithDescription("malformed code_challenge"))
		return
	}
	for _, sc := range ar.Scopes {
		if !slices.Contains(c.Scopes, sc) {
			redirectErr(oidc.ErrInvalidScope().WithDescription("a requested scope is not allowed for this client"))
			return
		}
	}
	aud, err := p.resolveAudience(c, requestedAudience(r.Form))
	if err != nil {
		redirectErr(oidc.ErrInvalidTarget().WithDescription("audience not allowed for this client"))
		return
	}
	prompts := []string(ar.Prompt)
	if slices.Contains(prompts, oidc.PromptNone) && len(prompts) > 1 {
		redirectErr(oidc.ErrInvalidRequest().WithDescription("prompt=none cannot be combined"))
		return
	}
	maxAge := int64(-1)
	if ar.MaxAge != nil {
		maxAge = int64(*ar.MaxAge)
	}
	now := p.now()
	req := storage.AuthRequest{
		ID: secret.New(), ClientID: c.ID, RedirectURI: ar.RedirectURI, State: ar.State, Nonce: ar.Nonce,
		ResponseMode: string(ar.ResponseMode), Scopes: ar.Scopes, Audience: aud,
		CodeChallenge: ar.CodeChallenge, CodeChallengeMethod: string(ar.CodeChallengeMethod),
		Prompt: prompts, MaxAge: maxAge, LoginHint: ar.LoginHint, CreatedAt: now, ExpiresAt: now.Add(p.cfg.AuthRequestTTL),
	}
	// An existing session may satisfy the request without a login page.
	sess, hasSession := p.currentSession(r)
	fresh := hasSession && !slices.Contains(prompts, oidc.PromptLogin) &&
		(maxAge < 0 || now.Sub(sess.AuthTime).Seconds() <= float64(maxAge))
	if fresh {
		if u, err := p.store.GetUser(ctx, sess.UserID); err == nil && !u.Disabled {
			req.UserID, req.SessionID, req.AuthTime, req.AMR = u.ID, sess.IDHash, sess.AuthTime, sess.AMR
		} else {
			fresh = false
		}
	}
	if slices.Contains(prompts, oidc.PromptNone) {
		switch {
		case !fresh:
			redirectErr(oidc.ErrLoginRequired().WithDescription("the user is not signed in"))
			return
		case !c.FirstParty || slices.Contains(prompts, oidc.PromptConsent):
			redirectErr(&oidc.Error{ErrorType: "consent_required", Description: "consent is required"})
			return
		}
	}
	if err := p.store.CreateAuthRequest(ctx, req); err != nil {
		p.storagePage(w, err)
		return
	}
	switch {
	case !fresh:
		http.Redirect(w, r, p.endpoint(pathLogin)+"?auth_request="+url.QueryEscape(req.ID), http.StatusFound)
	case p.needsConsent(c, req):
		http.Redirect(w, r, p.endpoint(pathConsent)+"?auth_request="+url.QueryEscape(req.ID), http.StatusFound)
	default:
		p.finishAuthorization(w, r, req)
	}
}

func (p *Provider) needsConsent(c storage.Client, req storage.AuthRequest) bool {
	return !req.Consented && (!c.FirstParty || slices.Contains(req.Prompt, oidc.PromptConsent))
}

// finishAuthorization issues the code and sends the browser back to the
// client (303, so a POST is never replayed).
func (p *Provider) finishAuthorization(w http.ResponseWriter, r *http.Request, req storage.AuthRequest) {
	now := p.now()
	code := secret.New()
	ac := storage.AuthCode{
		Hash: secret.Lookup(code), GrantID: secret.Token(16), ClientID: req.ClientID, RedirectURI: req.RedirectURI,
		UserID: req.UserID, SessionID: req.SessionID, Scopes: req.Scopes, Audience: req.Audience, Nonce: req.Nonce,
		CodeChallenge: req.CodeChallenge, AuthTime: req.AuthTime, AMR: req.AMR, ACR: req.ACR,
		CreatedAt: now, ExpiresAt: now.Add(p.cfg.AuthCodeTTL),
	}
	if err := p.store.CreateAuthCode(r.Context(), ac, req.ID); err != nil {
		if errors.Is(err, storage.ErrNotFound) { // already finished (a double submit) or expired
			p.errorPage(w, http.StatusBadRequest, "Sign-in expired", "This sign-in attempt has expired or was already used. Start again from the application.")
			return
		}
		p.storagePage(w, err)
		return
	}
	p.metrics.logins.WithLabelValues("code_issued").Inc()
	p.redirectToClient(w, r, req.RedirectURI, req.State, url.Values{"code": {code}})
}

// redirectToClient sends an authorization response: params plus state and
// iss (RFC 9207) appended to the registered redirect URI.
func (p *Provider) redirectToClient(w http.ResponseWriter, r *http.Request, redirectURI, state string, params url.Values) {
	u, err := url.Parse(redirectURI)
	if err != nil {
		p.errorPage(w, http.StatusBadRequest, "Invalid redirect", "The return address is malformed.")
		return
	}
	q := u.Query()
	for k, v := range params {
		q[k] = v
	}
	if state != "" {
		q.Set("state", state)
	}
	q.Set("iss", p.cfg.Issuer)
	u.RawQuery = q.Encode()
	status := http.StatusFound
	if r.Method == http.MethodPost {
		status = http.StatusSeeOther
	}
	http.Redirect(w, r, u.String(), status)
}

func (p *Provider) errorPage(w http.ResponseWriter, status int, title, msg string) {
	p.ui.Error(w, status, ui.ErrorPage{Title: title, Message: msg})
}

// storagePage renders a storage failure: 503 + Retry-After when the database
// is down (RL-04), 500 otherwise.
func (p *Provider) storagePage(w http.ResponseWriter, err error) {
	p.log.Error("storage failure", "err", err)
	if errors.Is(err, storage.ErrUnavailable) {
		w.Header().Set("Retry-After", "5")
		p.errorPage(w, http.StatusServiceUnavailable, "Temporarily unavailable", "Sign-in is temporarily unavailable. Please try again shortly.")
		return
	}
	p.errorPage(w, http.StatusInternalServerError, "Something went wrong", "Please try again.")
}

// scopeDescriptions explains standard scopes on the consent page.
func scopeDescription(s string) string {
	switch s {
	case oidc.ScopeOpenID:
		return "Sign you in with your Gatehouse account"
	case oidc.ScopeProfile:
		return "Read your name and username"
	case oidc.ScopeEmail:
		return "Read your email address"
	case oidc.ScopeOfflineAccess:
		return "Stay signed in (refresh tokens)"
	}
	return "Access: " + strings.ReplaceAll(s, ":", " ")
}
