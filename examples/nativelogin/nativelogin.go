// Package nativelogin signs a user in from a command-line program, the way
// native apps should (RFC 8252): the authorization code flow with PKCE (S256)
// for a public client, a one-shot loopback redirect on 127.0.0.1 with a
// random port, a state check, and the RFC 9207 "iss" check that defeats
// mix-up attacks. It uses golang.org/x/oauth2 and the standard library only.
//
// The demo's login command (examples/login) is a thin main around Login:
//
//	TOKEN=$(go run ./examples/login)
package nativelogin

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// Config configures a login.
type Config struct {
	Issuer   string   // e.g. http://localhost:8080; discovery is read from it
	ClientID string   // a public client allowing the loopback redirect http://127.0.0.1/callback
	Scopes   []string // e.g. openid orders:read
	// Resources are RFC 8707 resource indicators: the APIs the token is for.
	Resources []string
	// ForceLogin sends prompt=login so that another user can sign in even
	// when the browser has a session.
	ForceLogin bool
	// OpenURL shows the authorization URL to the user (print it, or open a
	// browser). It may block until the browser has come back. Required.
	OpenURL func(authURL string) error
	// HTTPClient is used for discovery and the token request; default a
	// client with a 10s timeout.
	HTTPClient *http.Client
	// Timeout bounds the wait for the browser; default 5 minutes.
	Timeout time.Duration
}

// ErrIssuerMismatch: discovery or the authorization response named another
// issuer.
var ErrIssuerMismatch = errors.New("nativelogin: issuer mismatch")

// ErrDenied: the authorization server answered with an error.
var ErrDenied = errors.New("nativelogin: authorization failed")

type metadata struct {
	Issuer                string `json:"issuer"`
	AuthorizationEndpoint string `json:"authorization_endpoint"`
	TokenEndpoint         string `json:"token_endpoint"`
	IssParameterSupported bool   `json:"authorization_response_iss_parameter_supported"`
}

func discover(ctx context.Context, hc *http.Client, issuer string) (metadata, error) {
	var m metadata
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(issuer, "/")+"/.well-known/openid-configuration", nil)
	if err != nil {
		return m, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return m, fmt.Errorf("discovery: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return m, fmt.Errorf("discovery: HTTP %d", resp.StatusCode)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 256<<10)).Decode(&m); err != nil {
		return m, fmt.Errorf("discovery: %w", err)
	}
	if m.Issuer != issuer {
		return m, fmt.Errorf("%w: discovery names %q", ErrIssuerMismatch, m.Issuer)
	}
	if m.AuthorizationEndpoint == "" || m.TokenEndpoint == "" {
		return m, errors.New("discovery: endpoints missing")
	}
	return m, nil
}

type callbackResult struct {
	code string
	err  error
}

// Login runs the flow and returns the token response.
func Login(ctx context.Context, cfg Config) (*oauth2.Token, error) {
	if cfg.OpenURL == nil || cfg.ClientID == "" || cfg.Issuer == "" {
		return nil, errors.New("nativelogin: Issuer, ClientID and OpenURL are required")
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Second}
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = 5 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	meta, err := discover(ctx, hc, cfg.Issuer)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("nativelogin: loopback listener: %w", err)
	}
	oc := &oauth2.Config{ClientID: cfg.ClientID, Scopes: cfg.Scopes,
		Endpoint:    oauth2.Endpoint{AuthURL: meta.AuthorizationEndpoint, TokenURL: meta.TokenEndpoint, AuthStyle: oauth2.AuthStyleInParams},
		RedirectURL: "http://" + ln.Addr().String() + "/callback"}
	state, verifier := oauth2.GenerateVerifier(), oauth2.GenerateVerifier()
	opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(verifier)}
	if cfg.ForceLogin {
		opts = append(opts, oauth2.SetAuthURLParam("prompt", "login"))
	}
	authURL, err := url.Parse(oc.AuthCodeURL(state, opts...))
	if err != nil {
		_ = ln.Close()
		return nil, err
	}
	q := authURL.Query()
	for _, r := range cfg.Resources {
		q.Add("resource", r)
	}
	authURL.RawQuery = q.Encode()

	results := make(chan callbackResult, 1)
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second,
		Handler: callbackHandler(state, cfg.Issuer, meta.IssParameterSupported, results)}
	go func() { _ = srv.Serve(ln) }()
	defer func() {
		sctx, scancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer scancel()
		_ = srv.Shutdown(sctx)
	}()

	if err := cfg.OpenURL(authURL.String()); err != nil {
		return nil, fmt.Errorf("nativelogin: open URL: %w", err)
	}
	var res callbackResult
	select {
	case res = <-results:
	case <-ctx.Done():
		return nil, fmt.Errorf("nativelogin: waiting for the browser: %w", ctx.Err())
	}
	if res.err != nil {
		return nil, res.err
	}
	ctx = context.WithValue(ctx, oauth2.HTTPClient, hc)
	tok, err := oc.Exchange(ctx, res.code, oauth2.VerifierOption(verifier))
	if err != nil {
		return nil, fmt.Errorf("nativelogin: code exchange: %w", err)
	}
	return tok, nil
}

// callbackHandler accepts one good callback on /callback and reports it.
func callbackHandler(state, issuer string, issRequired bool, results chan<- callbackResult) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /callback", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		// A stray or forged request (wrong state) must not end the login.
		if subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(state)) != 1 {
			http.Error(w, "unexpected state", http.StatusBadRequest)
			return
		}
		var res callbackResult
		iss, hasIss := q["iss"]
		switch {
		case hasIss && (len(iss) != 1 || iss[0] != issuer), !hasIss && issRequired:
			res.err = fmt.Errorf("%w: the authorization response came from %q", ErrIssuerMismatch, q.Get("iss"))
		case q.Get("error") != "":
			res.err = fmt.Errorf("%w: %s: %s", ErrDenied, q.Get("error"), q.Get("error_description"))
		case q.Get("code") == "":
			res.err = fmt.Errorf("%w: no code", ErrDenied)
		default:
			res.code = q.Get("code")
		}
		select {
		case results <- res:
		default: // a second callback with the right state: ignore
			http.Error(w, "already done", http.StatusConflict)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		msg := "Signed in. You can close this window and return to the terminal."
		if res.err != nil {
			msg = "Sign-in failed: " + res.err.Error()
		}
		_, _ = io.WriteString(w, "<!doctype html><title>Gatehouse demo login</title><p>"+html.EscapeString(msg)+"</p>")
	})
	return mux
}
