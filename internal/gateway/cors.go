package gateway

import (
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/gatehouse/gatehouse/internal/config"
)

// corsPolicy is a route's CORS policy. Origins are compared exactly; an
// origin that is not allowed gets no CORS headers at all.
type corsPolicy struct {
	origins     []string
	any         bool
	methods     string
	headers     []string // lower-case
	headersList string
	exposed     string
	credentials bool
	maxAge      string
}

func newCORS(c config.GatewayCORS) *corsPolicy {
	p := &corsPolicy{origins: c.AllowedOrigins, any: slices.Contains(c.AllowedOrigins, "*"), credentials: c.AllowCredentials}
	methods := c.AllowedMethods
	if len(methods) == 0 {
		methods = []string{http.MethodGet, http.MethodHead, http.MethodPost}
	}
	p.methods = strings.Join(methods, ", ")
	for _, h := range c.AllowedHeaders {
		p.headers = append(p.headers, strings.ToLower(h))
	}
	p.headersList = strings.Join(c.AllowedHeaders, ", ")
	p.exposed = strings.Join(c.ExposedHeaders, ", ")
	if c.MaxAge > 0 {
		p.maxAge = strconv.Itoa(int(c.MaxAge.Std().Seconds()))
	}
	return p
}

// allowOrigin returns the Access-Control-Allow-Origin value, or "".
func (p *corsPolicy) allowOrigin(origin string) string {
	if origin == "" {
		return ""
	}
	if slices.Contains(p.origins, origin) {
		return origin
	}
	if p.any {
		return "*"
	}
	return ""
}

// actual adds the CORS headers of a non-preflight request.
func (p *corsPolicy) actual(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Add("Vary", "Origin")
	o := p.allowOrigin(r.Header.Get("Origin"))
	if o == "" {
		return
	}
	h.Set("Access-Control-Allow-Origin", o)
	if p.credentials {
		h.Set("Access-Control-Allow-Credentials", "true")
	}
	if p.exposed != "" {
		h.Set("Access-Control-Expose-Headers", p.exposed)
	}
}

// preflight answers an OPTIONS preflight with 204. A preflight for a method
// or header that is not allowed gets no CORS headers (the browser refuses).
func (p *corsPolicy) preflight(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Add("Vary", "Origin")
	h.Add("Vary", "Access-Control-Request-Method")
	h.Add("Vary", "Access-Control-Request-Headers")
	o := p.allowOrigin(r.Header.Get("Origin"))
	m := r.Header.Get("Access-Control-Request-Method")
	ok := o != "" && slices.Contains(strings.Split(p.methods, ", "), m)
	for _, rh := range strings.Split(r.Header.Get("Access-Control-Request-Headers"), ",") {
		rh = strings.ToLower(strings.TrimSpace(rh))
		if rh != "" && !slices.Contains(p.headers, rh) {
			ok = false
		}
	}
	if ok {
		h.Set("Access-Control-Allow-Origin", o)
		h.Set("Access-Control-Allow-Methods", p.methods)
		if p.headersList != "" {
			h.Set("Access-Control-Allow-Headers", p.headersList)
		}
		if p.credentials {
			h.Set("Access-Control-Allow-Credentials", "true")
		}
		if p.maxAge != "" {
			h.Set("Access-Control-Max-Age", p.maxAge)
		}
	}
	w.WriteHeader(http.StatusNoContent)
}
