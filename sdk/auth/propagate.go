package auth

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// ErrOriginNotAllowed is returned by the propagating and service transports
// for a request to an origin that is not on their allow-list. The request
// is not sent.
var ErrOriginNotAllowed = errors.New("auth: origin not allowed to receive the token")

// NewPropagatingTransport returns an http.RoundTripper that forwards the
// caller's access token: it sets "Authorization: Bearer <token>" from the
// claims in the outgoing request's context (ClaimsFromContext(ctx).Token),
// so a service can call another on its caller's behalf. Build outgoing
// requests with the incoming request's context:
//
//	req, _ := http.NewRequestWithContext(r.Context(), "GET", "https://inventory.internal/items", nil)
//
// It is secure by default:
//   - allowedOrigins is required. Each is scheme://host[:port] ("https" or
//     "http"), compared exactly after lower-casing scheme and host and
//     dropping a default port (":443" for https, ":80" for http). A request
//     to any other origin fails with ErrOriginNotAllowed and is not sent at
//     all. This check runs for every request, including each redirect an
//     http.Client follows, so a redirect never carries the token elsewhere.
//   - A request whose context has no claims, or claims without a token,
//     fails with an error wrapping ErrNoToken and is not sent.
//   - A request that already has an Authorization header fails (ambiguous)
//     and is not sent.
//   - The caller's request is never modified; a clone is sent.
//
// base nil means http.DefaultTransport. Note that for plain http origins a
// configured HTTP proxy sees the token.
func NewPropagatingTransport(base http.RoundTripper, allowedOrigins ...string) (http.RoundTripper, error) {
	return newBearerTransport(base, allowedOrigins, func(req *http.Request) (string, error) {
		c, ok := ClaimsFromContext(req.Context())
		if !ok || c.Token == "" {
			return "", fmt.Errorf("%w: no caller token in the request context to propagate", ErrNoToken)
		}
		return c.Token, nil
	})
}

// bearerTransport adds a bearer token to requests for allowed origins.
type bearerTransport struct {
	base    http.RoundTripper
	allowed map[string]struct{}
	token   func(*http.Request) (string, error)
}

func newBearerTransport(base http.RoundTripper, allowedOrigins []string, token func(*http.Request) (string, error)) (*bearerTransport, error) {
	if len(allowedOrigins) == 0 {
		return nil, errors.New("auth: at least one allowed origin is required")
	}
	t := &bearerTransport{base: base, allowed: make(map[string]struct{}, len(allowedOrigins)), token: token}
	if t.base == nil {
		t.base = http.DefaultTransport
	}
	for _, o := range allowedOrigins {
		n, err := parseOrigin(o)
		if err != nil {
			return nil, err
		}
		t.allowed[n] = struct{}{}
	}
	return t, nil
}

// parseOrigin validates a configured origin and returns its normal form.
func parseOrigin(o string) (string, error) {
	u, err := url.Parse(o)
	if err != nil || u.Host == "" || u.User != nil || u.Opaque != "" || u.RawQuery != "" || u.ForceQuery ||
		u.Fragment != "" || (u.Path != "" && u.Path != "/") {
		return "", fmt.Errorf("auth: allowed origin %q is not of the form scheme://host[:port]", o)
	}
	n, ok := normalOrigin(u)
	if !ok {
		return "", fmt.Errorf("auth: allowed origin %q must be http or https with a host", o)
	}
	return n, nil
}

// normalOrigin returns scheme://host[:port] of u, lower-cased, without a
// default port.
func normalOrigin(u *url.URL) (string, bool) {
	scheme := strings.ToLower(u.Scheme)
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if host == "" || (scheme != "http" && scheme != "https") {
		return "", false
	}
	if (scheme == "https" && port == "443") || (scheme == "http" && port == "80") {
		port = ""
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port != "" {
		host += ":" + port
	}
	return scheme + "://" + host, true
}

// RoundTrip checks the origin, obtains the token and sends a clone of req
// carrying it. Whatever happens, req.Body is closed (http.RoundTripper
// contract).
func (t *bearerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	fail := func(err error) (*http.Response, error) {
		if req.Body != nil {
			_ = req.Body.Close()
		}
		return nil, err
	}
	if req.URL == nil {
		return fail(errors.New("auth: request has no URL"))
	}
	origin, ok := normalOrigin(req.URL)
	if _, allowed := t.allowed[origin]; !ok || !allowed {
		// The origin is not secret; it helps debugging.
		return fail(fmt.Errorf("%w: %s://%s", ErrOriginNotAllowed, req.URL.Scheme, req.URL.Host))
	}
	if len(req.Header.Values("Authorization")) > 0 {
		return fail(fmt.Errorf("%w: request already has an Authorization header", ErrInvalidRequest))
	}
	tok, err := t.token(req)
	if err != nil {
		return fail(err)
	}
	if !isToken68(tok) {
		return fail(fmt.Errorf("%w: token is not a valid bearer token", ErrInvalidToken))
	}
	out := req.Clone(req.Context())
	out.Header.Set("Authorization", "Bearer "+tok)
	return t.base.RoundTrip(out)
}
