package caserver

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"sync"
	"time"
)

// retryBackoff is the pause between failed renewals of the serving
// certificate while the current one is still valid.
const retryBackoff = 5 * time.Second

// TLSConfig returns the listener's TLS configuration: the CA's own SVID
// (spiffe://<td>/gatehouse/ca, from an in-memory ECDSA P-256 key, renewed at
// half-life on the first handshake after it), TLS ≥ 1.2, and a client
// certificate requested but not verified in the handshake (the handlers
// verify it). Session tickets are off so that every connection presents its
// certificate again.
func (s *Server) TLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion:             tls.VersionTLS12,
		ClientAuth:             tls.RequestClientCert,
		SessionTicketsDisabled: true,
		NextProtos:             []string{"h2", "http/1.1"},
		GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
			return s.certs.get(hello.Context())
		},
	}
}

// certSource holds the serving certificate and renews it single-flight.
type certSource struct {
	s        *Server
	mu       sync.Mutex
	cur      *tls.Certificate
	renewAt  time.Time
	notAfter time.Time
	retryAt  time.Time     // no renewal attempt before, after a failure
	inflight chan struct{} // non-nil while a renewal runs
}

func newCertSource(s *Server) *certSource { return &certSource{s: s} }

// get returns a valid serving certificate, renewing it when half of its
// life has passed. While a renewal runs (or after one failed, for
// retryBackoff) the current certificate keeps serving if still valid.
func (c *certSource) get(ctx context.Context) (*tls.Certificate, error) {
	for {
		c.mu.Lock()
		now := c.s.now()
		valid := c.cur != nil && now.Before(c.notAfter)
		if valid && (now.Before(c.renewAt) || c.inflight != nil || now.Before(c.retryAt)) {
			cur := c.cur
			c.mu.Unlock()
			return cur, nil
		}
		if ch := c.inflight; ch != nil {
			c.mu.Unlock()
			select {
			case <-ch:
				continue
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		ch := make(chan struct{})
		c.inflight = ch
		c.mu.Unlock()

		cert, err := c.issue(ctx)

		c.mu.Lock()
		c.inflight = nil
		close(ch)
		if err != nil {
			c.retryAt = c.s.now().Add(retryBackoff)
			cur, ok := c.cur, c.cur != nil && c.s.now().Before(c.notAfter)
			c.mu.Unlock()
			c.s.log.ErrorContext(ctx, "renewing the CA's serving certificate failed", "err", err)
			if ok {
				return cur, nil
			}
			return nil, err
		}
		leaf := cert.Leaf
		c.cur, c.notAfter = cert, leaf.NotAfter
		c.renewAt = renewalTime(leaf.NotBefore, leaf.NotAfter, c.s.now())
		c.retryAt = time.Time{}
		c.mu.Unlock()
		c.s.log.InfoContext(ctx, "svid issued", "spiffe_id", c.s.selfID.String(), "method", "self",
			"serial", leaf.SerialNumber.Text(16), "expires_at", leaf.NotAfter.UTC().Format(time.RFC3339))
		return cert, nil
	}
}

// renewalTime is half-way between issued (when the certificate was
// obtained) and notAfter. The CA backdates NotBefore (30 s for clock skew),
// so half-life measured from NotBefore would already be past with a short
// svid_ttl, and the certificate would be re-issued on every handshake.
func renewalTime(notBefore, notAfter, issued time.Time) time.Time {
	start := issued
	if start.Before(notBefore) {
		start = notBefore
	}
	return start.Add(notAfter.Sub(start) / 2)
}

// issue creates a key and has the CA issue the serving SVID for it.
func (c *certSource) issue(ctx context.Context) (*tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("caserver: generate key: %w", err)
	}
	// The handshake's context may be short; issuance must not be cut by a
	// client going away while others wait for it.
	ictx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	svid, err := c.s.deps.CA.Issue(ictx, c.s.selfID, key.Public(), c.s.ttl)
	if err != nil {
		return nil, fmt.Errorf("caserver: issue the CA's serving SVID: %w", err)
	}
	if svid == nil || len(svid.Certificates) == 0 {
		return nil, errors.New("caserver: the CA returned no certificate")
	}
	cert := &tls.Certificate{PrivateKey: key, Leaf: svid.Certificates[0]}
	for _, x := range svid.Certificates {
		cert.Certificate = append(cert.Certificate, x.Raw)
	}
	return cert, nil
}
