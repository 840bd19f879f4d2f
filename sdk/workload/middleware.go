package workload

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

type peerIDKey struct{}

// PeerID returns the verified SPIFFE ID of the peer that Middleware put in
// the request context.
func PeerID(ctx context.Context) (spiffeid.ID, bool) {
	id, ok := ctx.Value(peerIDKey{}).(spiffeid.ID)
	return id, ok && !id.IsZero()
}

// Middleware checks every request against the current policy of p: the
// caller is the SPIFFE ID of the client certificate, self the server's own
// ID, and Policy.Decide decides on the method and the escaped path
// (r.URL.EscapedPath(); non-canonical paths are denied). A denied request
// gets 403 with {"error":"access_denied","error_description":<reason>} and
// never reaches next; an allowed one reaches next with the caller's ID in
// its context (PeerID). A request without TLS or without a client
// certificate, or with no policy loaded, is denied.
//
// A keep-alive connection can outlive the peer's SVID, which was verified
// only in the handshake: each request therefore checks the presented chain's
// validity window (its earliest NotAfter and latest NotBefore) against the
// current time. Outside it the request gets 401
// {"error":"svid_expired",...} with Connection: close, so that the client
// reconnects with its renewed SVID, and never reaches next. That is the
// backstop; normally the connection is closed earlier, gracefully: once the
// chain's earliest NotAfter falls within the last third of the leaf's life
// (counted from when this middleware first saw the leaf, or its NotBefore
// if later, since CAs backdate NotBefore), the client has renewed (at
// half-life), so the request is served normally with Connection: close and
// the next one comes on a new connection with the new SVID. net/http closes
// an HTTP/1.x connection after such a response; its HTTP/2 server turns
// Connection: close into a graceful GOAWAY (streams in flight complete, the
// client opens a new connection for new requests).
//
// The middleware reads the peer certificate; it relies on the server's TLS
// configuration (ServerTLSConfig) having verified it in the handshake.
// Serve it only behind such a configuration.
func Middleware(p PolicySource, self spiffeid.ID, next http.Handler) http.Handler {
	if next == nil {
		panic("workload: Middleware needs a handler")
	}
	ages := newLeafAges()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
			denyRequest(w, "the request carries no client certificate (mutual TLS required)")
			return
		}
		now := time.Now()
		if msg := outsideValidity(r.TLS.PeerCertificates, now); msg != "" {
			expiredPeer(w, msg)
			return
		}
		if nearExpiry(r.TLS.PeerCertificates, ages.start(r.TLS.PeerCertificates[0], now), now) {
			w.Header().Set("Connection", "close")
		}
		peer, err := x509svid.IDFromCert(r.TLS.PeerCertificates[0])
		if err != nil {
			denyRequest(w, "the client certificate holds no valid SPIFFE ID")
			return
		}
		var pol *Policy
		if p != nil {
			pol = p.Policy()
		}
		d := pol.Decide(peer, self, r.Method, r.URL.EscapedPath())
		if !d.Allow {
			denyRequest(w, d.Reason)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), peerIDKey{}, peer)))
	})
}

// outsideValidity returns why chain is not valid at now ("" when it is):
// now must lie within every certificate's NotBefore..NotAfter.
func outsideValidity(chain []*x509.Certificate, now time.Time) string {
	notBefore, notAfter := chain[0].NotBefore, chain[0].NotAfter
	for _, c := range chain[1:] {
		if c.NotBefore.After(notBefore) {
			notBefore = c.NotBefore
		}
		if c.NotAfter.Before(notAfter) {
			notAfter = c.NotAfter
		}
	}
	switch {
	case now.After(notAfter):
		return "the client's SVID expired at " + notAfter.UTC().Format(time.RFC3339) + "; reconnect with a current SVID"
	case now.Before(notBefore):
		return "the client's SVID is not valid before " + notBefore.UTC().Format(time.RFC3339)
	}
	return ""
}

// nearExpiry reports whether chain's earliest NotAfter lies within the last
// third of the leaf's life, counted from start.
func nearExpiry(chain []*x509.Certificate, start, now time.Time) bool {
	notAfter := chain[0].NotAfter
	for _, c := range chain[1:] {
		if c.NotAfter.Before(notAfter) {
			notAfter = c.NotAfter
		}
	}
	return notAfter.Sub(now) <= chain[0].NotAfter.Sub(start)/3
}

// expiredPeer answers 401 svid_expired and closes the connection.
func expiredPeer(w http.ResponseWriter, reason string) {
	w.Header().Set("Connection", "close")
	writeError(w, http.StatusUnauthorized, "svid_expired", reason)
}

type errorBody struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

func denyRequest(w http.ResponseWriter, reason string) {
	writeError(w, http.StatusForbidden, "access_denied", reason)
}

func writeError(w http.ResponseWriter, status int, code, reason string) {
	b, err := json.Marshal(errorBody{Error: code, Description: reason})
	if err != nil {
		b = []byte(`{"error":"` + code + `"}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
