package idp

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	httphelper "github.com/zitadel/oidc/v3/pkg/http"
	"github.com/zitadel/oidc/v3/pkg/oidc"
)

// maxFormBytes caps token-endpoint request bodies.
const maxFormBytes = 64 << 10

// tokenEndpointGuard tightens what op accepts at the token, introspection and
// revocation endpoints (checklist OA-A): only POST with a form body, no query
// string (so no client_secret or token in a URL), no repeated parameter, and
// every response carries Cache-Control: no-store.
//
// It also throttles failed client authentications per source address
// (BF-01): after the IP limit is reached the address gets 429 until the
// window passes. Client secrets have 256 bits, so this is about load and
// noise, not guessing; it never locks a client out for good.
func (p *Provider) tokenEndpointGuard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Pragma", "no-cache")
		fail := func(status int, e *oidc.Error) {
			httphelper.MarshalJSONWithStatus(w, e, status)
		}
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			fail(http.StatusMethodNotAllowed, oidc.ErrInvalidRequest().WithDescription("method must be POST"))
			return
		}
		if r.URL.RawQuery != "" {
			fail(http.StatusBadRequest, oidc.ErrInvalidRequest().WithDescription("parameters must not be sent in the query string"))
			return
		}
		ct := r.Header.Get("Content-Type")
		if i := strings.IndexByte(ct, ';'); i >= 0 {
			ct = ct[:i]
		}
		if !strings.EqualFold(strings.TrimSpace(ct), "application/x-www-form-urlencoded") {
			fail(http.StatusBadRequest, oidc.ErrInvalidRequest().WithDescription("content type must be application/x-www-form-urlencoded"))
			return
		}
		if len(r.Header.Values("Authorization")) > 1 {
			fail(http.StatusBadRequest, oidc.ErrInvalidRequest().WithDescription("multiple Authorization headers"))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
		if err := r.ParseForm(); err != nil {
			fail(http.StatusBadRequest, oidc.ErrInvalidRequest().WithDescription("malformed form body"))
			return
		}
		for k, v := range r.PostForm {
			if len(v) > 1 {
				_ = k
				fail(http.StatusBadRequest, oidc.ErrInvalidRequest().WithDescription("a parameter is repeated"))
				return
			}
		}
		ipKey := "client-auth-ip:" + p.clientIP(r)
		if ok, retry := p.ipLim.Check(ipKey); !ok {
			w.Header().Set("Retry-After", strconv.Itoa(int(retry/time.Second)+1))
			fail(http.StatusTooManyRequests, oidc.ErrInvalidRequest().WithDescription("too many failed client authentications; retry later"))
			return
		}
		sw := &retryAfterWriter{statusWriter{ResponseWriter: w, status: http.StatusOK}}
		next.ServeHTTP(sw, r)
		if sw.status == http.StatusUnauthorized {
			p.ipLim.Fail(ipKey)
		}
	})
}

// retryAfterWriter adds Retry-After to 503 answers (RL-04: the database is
// down; the client should come back).
type retryAfterWriter struct{ statusWriter }

func (w *retryAfterWriter) WriteHeader(s int) {
	if s == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "5")
	}
	w.statusWriter.WriteHeader(s)
}
