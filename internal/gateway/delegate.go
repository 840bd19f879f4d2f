package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/sdk/auth"
	"github.com/gatehouse/gatehouse/sdk/authz"
)

// authzScope is the scope the gateway's own token needs to ask for
// decisions (docs/authz.md, HTTP API).
const authzScope = "authz:check"

// maxReasonLen caps the service's reason in a 403 body.
const maxReasonLen = 256

var (
	// errDelegateDenied: the authorization service said no.
	errDelegateDenied = errors.New("gateway: denied by the authorization service")
	// errNoResource: the path has no segment holding the resource id.
	errNoResource = errors.New("gateway: the request path names no resource")
)

// delegateRule is a route's compiled delegate rule.
type delegateRule struct {
	action       string
	resourceType string
	segment      int // 1-based segment of the normalized path
}

// newAuthzClient returns the client of gateway.authz. The gateway calls the
// service with its own client-credentials token (audience cfg.Audience,
// scope authz:check), sent only to the service's origin.
func newAuthzClient(cfg config.GatewayAuthz, tokenURL string, d Deps) (*authz.Client, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || u.Host == "" {
		return nil, errors.New("gateway.authz.url: not an absolute URL")
	}
	ts, err := auth.NewClientCredentials(auth.ClientCredentialsConfig{TokenURL: tokenURL, ClientID: cfg.ClientID,
		ClientSecret: cfg.ClientSecret, Audience: []string{cfg.Audience}, Scopes: []string{authzScope},
		HTTPClient: d.HTTPClient})
	if err != nil {
		return nil, fmt.Errorf("gateway.authz: %w", err)
	}
	tr, err := auth.NewServiceTransport(d.HTTPClient.Transport, ts, u.Scheme+"://"+u.Host)
	if err != nil {
		return nil, fmt.Errorf("gateway.authz: %w", err)
	}
	ttl := cfg.CacheTTL.Std()
	if ttl == 0 {
		ttl = -1 // 0 in the configuration disables the cache
	}
	c, err := authz.New(authz.Config{URL: cfg.URL, HTTPClient: &http.Client{Transport: tr},
		Timeout: cfg.Timeout.Std(), CacheTTL: ttl, CacheSize: 100_000, Now: d.Now})
	if err != nil {
		return nil, fmt.Errorf("gateway.authz: %w", err)
	}
	return c, nil
}

// compileDelegate sets the route's delegate rule. It needs an authenticated
// route (the caller's token is the principal) and gateway.authz.
func (g *Gateway) compileDelegate(r *route, c *config.GatewayDelegate) error {
	if c == nil {
		return nil
	}
	switch {
	case r.anonymous:
		return errors.New("delegate on an anonymous route: there is no caller token to ask with")
	case g.authz == nil:
		return errors.New("delegate needs gateway.authz.url")
	case c.Action == "" || c.ResourceType == "" || c.ResourceIDSegment < 1:
		return errors.New("delegate needs action, resource_type and resource_id_segment >= 1")
	}
	r.delegate = &delegateRule{action: c.Action, resourceType: c.ResourceType, segment: c.ResourceIDSegment}
	return nil
}

// delegate asks the authorization service whether the caller (its verified
// token as principal) may do the route's action on the resource named by the
// path. Everything but an allow refuses with 403: a deny with the service's
// reason, a failure with authz.UnavailableReason (fail closed).
func (g *Gateway) delegate(ctx context.Context, rt *route, path, token string) *denial {
	dr := rt.delegate
	id, ok := pathSegment(path, dr.segment)
	if !ok {
		g.metrics.delegations.WithLabelValues(rt.name, "no_resource").Inc()
		return deny(http.StatusForbidden, "access_denied", "the request names no resource", "delegate_no_resource", errNoResource)
	}
	d := g.authz.Authorize(ctx, authz.Request{
		Principal: authz.Principal{Token: token},
		Action:    dr.action,
		Resource:  authz.Resource{Type: dr.resourceType, ID: id},
	})
	switch {
	case d.Err != nil:
		g.metrics.delegations.WithLabelValues(rt.name, "error").Inc()
		g.log.Warn("gateway delegate: no decision, refusing", "route", rt.name, "err", d.Err)
		return deny(http.StatusForbidden, "access_denied", authz.UnavailableReason, "delegate_unavailable", d.Err)
	case !d.Allow:
		g.metrics.delegations.WithLabelValues(rt.name, "deny").Inc()
		return deny(http.StatusForbidden, "access_denied", publicReason(d.Reason), "delegate",
			fmt.Errorf("%w (decision %s)", errDelegateDenied, d.DecisionID))
	}
	result := "allow"
	if d.Cached {
		result = "allow_cached"
	}
	g.metrics.delegations.WithLabelValues(rt.name, result).Inc()
	return nil
}

// pathSegment returns the n-th (1-based) segment of a normalized path,
// unescaped; false when the path has no such non-empty segment.
func pathSegment(path string, n int) (string, bool) {
	rest := strings.TrimPrefix(path, "/")
	for i := 1; i < n; i++ {
		j := strings.IndexByte(rest, '/')
		if j < 0 {
			return "", false
		}
		rest = rest[j+1:]
	}
	if j := strings.IndexByte(rest, '/'); j >= 0 {
		rest = rest[:j]
	}
	seg, err := url.PathUnescape(rest)
	if err != nil || seg == "" {
		return "", false
	}
	return seg, true
}

// publicReason is the service's reason as a single printable line of at
// most maxReasonLen bytes; "denied" when it gave none.
func publicReason(s string) string {
	s = strings.Map(func(r rune) rune {
		if !unicode.IsPrint(r) {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(s, "?"))
	s = strings.TrimSpace(s)
	if len(s) > maxReasonLen {
		cut := maxReasonLen
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "..."
	}
	if s == "" {
		return "denied"
	}
	return s
}
