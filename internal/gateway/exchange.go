package gateway

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/gatehouse/gatehouse/sdk/auth"
)

// RFC 8693 identifiers.
const (
	grantTokenExchange  = "urn:ietf:params:oauth:grant-type:token-exchange"
	tokenTypeAccess     = "urn:ietf:params:oauth:token-type:access_token"
	exchangeCacheMax    = 50_000
	exchangeEarlyExpiry = 10 * time.Second // an exchanged token is not handed out in its last seconds
)

var (
	// errExchangeRefused: the IdP refused the subject token (revoked,
	// expired, not allowed for that audience or those scopes).
	errExchangeRefused = errors.New("gateway: token exchange refused")
	// errExchangeUnavailable: the IdP could not be asked.
	errExchangeUnavailable = errors.New("gateway: token exchange unavailable")
)

type exchangeConfig struct {
	Endpoint, ClientID, ClientSecret string
	HTTPClient                       *http.Client
	Now                              func() time.Time
}

// exchanger swaps a caller's token for an internal token for one upstream
// (RFC 8693) and caches the answer under (SHA-256 of the token, audience,
// scopes) until shortly before the exchanged token expires.
type exchanger struct {
	cfg   exchangeConfig
	group singleflight.Group
	mu    sync.Mutex
	cache map[[32]byte]exchanged
	onRes func(result string)
}

type exchanged struct {
	token  string
	expiry time.Time
	// scopes are those the IdP says the token has (RFC 8693 §2.2.1 scope);
	// nil when the answer does not say (then: those asked for).
	scopes []string
}

func newExchanger(cfg exchangeConfig) *exchanger {
	if cfg.HTTPClient != nil {
		// Never follow a redirect: a 307/308 would re-send the subject token
		// and the client credentials to wherever the answer points (OA-D).
		c := *cfg.HTTPClient
		c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		cfg.HTTPClient = &c
	}
	return &exchanger{cfg: cfg, cache: map[[32]byte]exchanged{}, onRes: func(string) {}}
}

func exchangeKey(token, audience string, scopes []string) [32]byte {
	h := sha256.New()
	for _, s := range append([]string{token, audience}, scopes...) {
		_, _ = fmt.Fprintf(h, "%d:%s", len(s), s) // length-prefixed: no ambiguity
	}
	var k [32]byte
	h.Sum(k[:0])
	return k
}

// token returns an exchanged token for audience; subjectExp bounds the cache.
//
// Concurrent identical requests share one call to the IdP. That call does
// not depend on the first caller staying connected (its context is detached
// from cancellation, the 10s call timeout still applies); each caller stops
// waiting when its own context ends.
func (x *exchanger) token(ctx context.Context, subject, audience string, scopes []string, subjectExp time.Time) (string, error) {
	e, err := x.exchange(ctx, subject, audience, scopes, subjectExp)
	return e.token, err
}

// exchange is token with the scopes the IdP granted (nil: not stated).
func (x *exchanger) exchange(ctx context.Context, subject, audience string, scopes []string, subjectExp time.Time) (exchanged, error) {
	key := exchangeKey(subject, audience, scopes)
	now := x.cfg.Now()
	x.mu.Lock()
	e, ok := x.cache[key]
	x.mu.Unlock()
	if ok && now.Before(e.expiry) {
		x.onRes("cached")
		return e, nil
	}
	detached := context.WithoutCancel(ctx)
	ch := x.group.DoChan(string(key[:]), func() (any, error) {
		tok, ttl, granted, err := x.call(detached, subject, audience, scopes)
		if err != nil {
			return exchanged{}, err
		}
		now := x.cfg.Now()
		exp := now.Add(ttl - exchangeEarlyExpiry)
		if !subjectExp.IsZero() && subjectExp.Before(exp) {
			exp = subjectExp
		}
		if exp.After(now) { // else usable for this request only, never cached
			x.mu.Lock()
			if len(x.cache) >= exchangeCacheMax {
				x.evict(now)
			}
			x.cache[key] = exchanged{token: tok, expiry: exp, scopes: granted}
			x.mu.Unlock()
		}
		return exchanged{token: tok, expiry: exp, scopes: granted}, nil
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return exchanged{}, res.Err
		}
		x.onRes("exchanged")
		return res.Val.(exchanged), nil
	case <-ctx.Done():
		return exchanged{}, fmt.Errorf("%w: %w", errExchangeUnavailable, context.Cause(ctx))
	}
}

// evict drops expired entries, then arbitrary ones until a tenth is free.
// Called with mu held.
func (x *exchanger) evict(now time.Time) {
	for k, e := range x.cache {
		if !now.Before(e.expiry) {
			delete(x.cache, k)
		}
	}
	for k := range x.cache {
		if len(x.cache) < exchangeCacheMax*9/10 {
			break
		}
		delete(x.cache, k)
	}
}

// call performs one exchange at the IdP's token endpoint.
func (x *exchanger) call(ctx context.Context, subject, audience string, scopes []string) (string, time.Duration, []string, error) {
	form := url.Values{
		"grant_type":         {grantTokenExchange},
		"subject_token":      {subject},
		"subject_token_type": {tokenTypeAccess},
		"audience":           {audience},
	}
	if len(scopes) > 0 {
		form.Set("scope", strings.Join(scopes, " "))
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, x.cfg.Endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return "", 0, nil, fmt.Errorf("%w: %w", errExchangeUnavailable, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(x.cfg.ClientID), url.QueryEscape(x.cfg.ClientSecret))
	resp, err := x.cfg.HTTPClient.Do(req)
	if err != nil {
		return "", 0, nil, fmt.Errorf("%w: %w", errExchangeUnavailable, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return "", 0, nil, fmt.Errorf("%w: %w", errExchangeUnavailable, err)
	}
	tok, ttl, err := parseExchangeAnswer(resp.StatusCode, body)
	if err != nil {
		return "", 0, nil, err
	}
	return tok, ttl, grantedScopes(body), nil
}

// grantedScopes is the scope member of a successful answer, split on
// spaces; nil when absent or not a string. It only ever narrows what
// X-Auth-Scopes says (decide intersects it with the caller's scopes).
func grantedScopes(body []byte) []string {
	var out struct {
		Scope *string `json:"scope"`
	}
	if json.Unmarshal(body, &out) != nil || out.Scope == nil {
		return nil
	}
	return append([]string{}, strings.Fields(*out.Scope)...)
}

// parseExchangeAnswer reads the token endpoint's answer strictly: exactly
// one JSON object with a bearer access token of printable ASCII, issued as an
// access token, with a positive expires_in (capped at an hour). Every error
// wraps errExchangeRefused or errExchangeUnavailable.
func parseExchangeAnswer(status int, body []byte) (string, time.Duration, error) {
	if status != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal(body, &e)
		code := errorCode(e.Error)
		if status == http.StatusBadRequest && code != "invalid_client" && code != "unauthorized_client" {
			return "", 0, &exchangeRefusal{code: code}
		}
		return "", 0, fmt.Errorf("%w: status %d %s", errExchangeUnavailable, status, code)
	}
	var out struct {
		AccessToken     string `json:"access_token"`
		IssuedTokenType string `json:"issued_token_type"`
		TokenType       string `json:"token_type"`
		ExpiresIn       int64  `json:"expires_in"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&out); err != nil {
		return "", 0, fmt.Errorf("%w: bad answer: %w", errExchangeUnavailable, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return "", 0, fmt.Errorf("%w: bad answer: data after the JSON object", errExchangeUnavailable)
	}
	if !visibleASCII(out.AccessToken) || len(out.AccessToken) > maxTokenLen || out.IssuedTokenType != tokenTypeAccess ||
		!strings.EqualFold(out.TokenType, "bearer") || out.ExpiresIn <= 0 {
		return "", 0, fmt.Errorf("%w: bad answer", errExchangeUnavailable)
	}
	// A ttl within exchangeEarlyExpiry makes the token usable for this
	// request only: token does not cache it.
	return out.AccessToken, time.Duration(min(out.ExpiresIn, 3600)) * time.Second, nil
}

// visibleASCII reports whether s is non-empty printable ASCII without
// spaces: safe in an Authorization header as sent and as answered.
func visibleASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return s != ""
}

// exchangeRefusal is a 400 answer of the IdP other than a client error: the
// subject token cannot be exchanged. code is the sanitized OAuth error code.
type exchangeRefusal struct{ code string }

func (e *exchangeRefusal) Error() string { return errExchangeRefused.Error() + ": " + e.code }
func (e *exchangeRefusal) Unwrap() error { return errExchangeRefused }

// errorCode keeps an OAuth error code if it is a short NQSCHAR string
// (RFC 6749 §5.2), else "invalid_answer"; it only goes to logs.
func errorCode(s string) string {
	if s == "" || len(s) > 64 {
		return "invalid_answer"
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e || s[i] == '"' || s[i] == '\\' {
			return "invalid_answer"
		}
	}
	return s
}

// exchangeDenial maps an exchange failure to the answer at the edge.
func exchangeDenial(err error) *denial {
	var ref *exchangeRefusal
	if errors.As(err, &ref) && (ref.code == "invalid_scope" || ref.code == "invalid_target") {
		return &denial{status: http.StatusForbidden, authErr: true, reason: "exchange_forbidden",
			cause: &auth.ForbiddenError{Reason: "the token cannot be exchanged for this service"}}
	}
	if errors.Is(err, errExchangeRefused) {
		return &denial{status: http.StatusUnauthorized, authErr: true, cause: fmt.Errorf("%w: %w", auth.ErrInvalidToken, err),
			reason: "exchange_refused"}
	}
	return &denial{status: http.StatusServiceUnavailable, code: "temporarily_unavailable",
		msg: "the internal token could not be obtained", reason: "exchange_unavailable", cause: err}
}
