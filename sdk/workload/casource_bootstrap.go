package workload

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	crand "crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
	"unicode"

	"github.com/gatehouse/gatehouse/sdk/jwtx"
	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// caError is an error answer of the CA API ({"error", "error_description"}).
type caError struct {
	Status      int
	Code        string
	Description string
}

func (e *caError) Error() string {
	msg := fmt.Sprintf("workload: CA answered %d", e.Status)
	if e.Code != "" {
		msg += " " + e.Code
	}
	if e.Description != "" {
		msg += ": " + e.Description
	}
	return msg
}

// permanent reports whether retrying the same request cannot help: every
// answer but 5xx, 408 and 429 (redirects are never followed).
func (e *caError) permanent() bool {
	return e.Status < 500 && e.Status != http.StatusRequestTimeout && e.Status != http.StatusTooManyRequests
}

// isCACode reports whether err is a CA answer with the given status and code.
func isCACode(err error, status int, codes ...string) bool {
	var ce *caError
	if !errors.As(err, &ce) || ce.Status != status {
		return false
	}
	for _, c := range codes {
		if ce.Code == c {
			return true
		}
	}
	return false
}

// permanentError marks a bootstrap failure that retrying cannot fix.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// trustError is a CA certificate that does not verify against the bundle:
// permanent at bootstrap (wrong BundleFile), retried later (rotation).
type trustError struct{ err error }

func (e *trustError) Error() string { return e.err.Error() }
func (e *trustError) Unwrap() error { return e.err }

func isPermanent(err error) bool {
	var pe *permanentError
	var ce *caError
	var te *trustError
	return errors.As(err, &pe) || errors.As(err, &te) || errors.As(err, &ce) && ce.permanent()
}

// cleanText keeps a CA-provided text printable and short.
func cleanText(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) {
			return r
		}
		return ' '
	}, s)
	if len(s) > n {
		s = s[:n] + "…"
	}
	return s
}

func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// newClient builds an HTTP client for the CA. verify and clientCert may be
// nil (first bundle fetch; no client certificate).
func (s *CASource) newClient(verify func(tls.ConnectionState) error,
	clientCert func(*tls.CertificateRequestInfo) (*tls.Certificate, error)) (*http.Transport, *http.Client) {
	tr := &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		TLSClientConfig: &tls.Config{
			MinVersion: tls.VersionTLS12,
			// The CA's certificate is a SPIFFE SVID, verified in
			// VerifyConnection against the bundle (not against a host name).
			InsecureSkipVerify:   true, //nolint:gosec // verified in VerifyConnection / after the pinned fetch
			VerifyConnection:     verify,
			GetClientCertificate: clientCert,
		},
		TLSHandshakeTimeout:   s.cfg.Timeout,
		ResponseHeaderTimeout: s.cfg.Timeout,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConnsPerHost:   2,
	}
	return tr, &http.Client{Transport: tr, Timeout: s.cfg.Timeout, CheckRedirect: noRedirect}
}

// newVerifiedClients returns the clients used after bootstrap: anon (no
// client certificate: bundle, join token, client credentials) and mtls (the
// current SVID as client certificate: renewal, policy). Both verify that the
// CA presents spiffe://<td>/gatehouse/ca under the current bundle.
func (s *CASource) newVerifiedClients() {
	s.anonTr, s.anon = s.newClient(s.verifyCA, func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
		return &tls.Certificate{}, nil
	})
	s.mtlsTr, s.mtls = s.newClient(s.verifyCA, s.clientCertificate)
}

func (s *CASource) verifyCA(cs tls.ConnectionState) error {
	b := s.currentBundle()
	if b == nil {
		return errors.New("workload: no trust bundle for the CA")
	}
	id, _, err := x509svid.Verify(cs.PeerCertificates, b, x509svid.WithTime(s.opt.now()))
	if err != nil {
		return &trustError{fmt.Errorf("workload: the CA's certificate does not verify against the trust bundle: %w", err)}
	}
	if id != s.caID {
		return &trustError{fmt.Errorf("workload: the CA presented %s, want %s", id, s.caID)}
	}
	return nil
}

func (s *CASource) clientCertificate(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	sv := s.currentSVID()
	if sv == nil {
		return &tls.Certificate{}, nil
	}
	c := &tls.Certificate{PrivateKey: sv.PrivateKey, Leaf: sv.Certificates[0]}
	for _, cert := range sv.Certificates {
		c.Certificate = append(c.Certificate, cert.Raw)
	}
	return c, nil
}

// call performs one CA request and returns the body of a 200 answer; any
// other answer becomes a *caError. auth is never part of an error.
func (s *CASource) call(ctx context.Context, client *http.Client, method, path string, body []byte, auth string) ([]byte, *http.Response, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, s.base+path, rd)
	if err != nil {
		return nil, nil, fmt.Errorf("workload: CA request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("workload: CA %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxCABody+1))
	if err != nil {
		return nil, nil, fmt.Errorf("workload: CA %s %s: reading the answer: %w", method, path, err)
	}
	if len(data) > maxCABody {
		return nil, nil, &permanentError{fmt.Errorf("workload: CA %s %s: answer larger than %d bytes", method, path, maxCABody)}
	}
	if resp.StatusCode != http.StatusOK {
		ce := &caError{Status: resp.StatusCode}
		var e struct {
			Error       string `json:"error"`
			Description string `json:"error_description"`
		}
		if json.Unmarshal(data, &e) == nil {
			ce.Code, ce.Description = cleanText(e.Error, 64), cleanText(e.Description, 512)
		}
		return nil, resp, ce
	}
	return data, resp, nil
}

// bootstrapPinned fetches the bundle over a not yet verified connection and
// accepts it only when one of its roots has the pinned SHA-256 and the CA's
// certificate on that same connection chains to that root.
func (s *CASource) bootstrapPinned(ctx context.Context, pin []byte) error {
	tr, client := s.newClient(nil, nil)
	defer tr.CloseIdleConnections()
	return s.retry(ctx, "fetching the trust bundle", func() error {
		data, resp, err := s.call(ctx, client, http.MethodGet, "/v1/bundle", nil, "")
		if err != nil {
			return err
		}
		b, err := parseBundle(s.cfg.TrustDomain, data)
		if err != nil {
			return &permanentError{err}
		}
		var root *x509.Certificate
		for _, r := range b.X509Authorities() {
			sum := sha256.Sum256(r.Raw)
			if subtle.ConstantTimeCompare(sum[:], pin) == 1 {
				root = r
			}
		}
		if root == nil {
			return &permanentError{errors.New("workload: no root in the CA's bundle matches RootFingerprint")}
		}
		if resp.TLS == nil {
			return &permanentError{errors.New("workload: the bundle did not come over TLS")}
		}
		pinned := x509bundle.FromX509Authorities(s.cfg.TrustDomain, []*x509.Certificate{root})
		id, _, err := x509svid.Verify(resp.TLS.PeerCertificates, pinned, x509svid.WithTime(s.opt.now()))
		if err != nil || id != s.caID {
			return &permanentError{errors.New("workload: the CA's certificate does not chain to the pinned root " +
				"as " + s.caID.String() + " (pin the CA's active root)")}
		}
		seq, hasSeq := b.SequenceNumber()
		hint, _ := b.RefreshHint()
		s.mu.Lock()
		s.setBundleLocked(b.X509Bundle(), seq, hasSeq, hint)
		s.mu.Unlock()
		return nil
	})
}

// parseBundle parses a SPIFFE bundle of td that has at least one X.509 root.
func parseBundle(td spiffeid.TrustDomain, data []byte) (*spiffebundle.Bundle, error) {
	b, err := spiffebundle.Parse(td, data)
	if err != nil {
		return nil, fmt.Errorf("workload: invalid SPIFFE bundle: %w", err)
	}
	if len(b.X509Authorities()) == 0 {
		return nil, errors.New("workload: the SPIFFE bundle has no X.509 root")
	}
	return b, nil
}

// loadBundleFile reads a SPIFFE bundle (JSON) or PEM roots.
func loadBundleFile(td spiffeid.TrustDomain, path string) (*x509bundle.Bundle, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("workload: CAConfig.BundleFile: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxCABody+1))
	if err != nil {
		return nil, fmt.Errorf("workload: CAConfig.BundleFile: %w", err)
	}
	if len(data) > maxCABody {
		return nil, fmt.Errorf("workload: CAConfig.BundleFile: larger than %d bytes", maxCABody)
	}
	b, err := parseBundleFile(td, data)
	if err != nil {
		return nil, fmt.Errorf("workload: CAConfig.BundleFile: %w", err)
	}
	return b, nil
}

// parseBundleFile parses a SPIFFE bundle (JSON object) or PEM roots; at
// least one root is required.
func parseBundleFile(td spiffeid.TrustDomain, data []byte) (*x509bundle.Bundle, error) {
	if t := bytes.TrimSpace(data); len(t) > 0 && t[0] == '{' {
		b, err := parseBundle(td, t)
		if err != nil {
			return nil, err
		}
		return b.X509Bundle(), nil
	}
	b, err := x509bundle.Parse(td, data)
	if err != nil {
		return nil, fmt.Errorf("workload: invalid PEM bundle: %w", err)
	}
	if len(b.X509Authorities()) == 0 {
		return nil, errors.New("workload: the PEM bundle has no X.509 root")
	}
	return b, nil
}

// retry runs fn until it succeeds, fails permanently or ctx ends, backing
// off between attempts.
func (s *CASource) retry(ctx context.Context, what string, fn func() error) error {
	backoff := s.opt.backoffMin
	for {
		err := fn()
		if err == nil {
			return nil
		}
		if isPermanent(err) {
			return err
		}
		s.log.Warn("workload: CA not reachable, retrying", "step", what, "error", err.Error())
		t := time.NewTimer(s.jitter(backoff))
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("workload: %s: %w (last error: %w)", what, ctx.Err(), err)
		case <-t.C:
		}
		backoff = min(2*backoff, s.opt.backoffMax)
	}
}

// jitter returns a duration uniform in [d/2, d].
func (s *CASource) jitter(d time.Duration) time.Duration {
	return d/2 + time.Duration(s.opt.rand()*float64(d/2))
}

// firstSVID obtains the first SVID with the join token (else the token
// source).
func (s *CASource) firstSVID(ctx context.Context, joinToken string) error {
	return s.retry(ctx, "obtaining the first SVID", func() error {
		auth, method := "", "client_credentials"
		if joinToken != "" {
			auth, method = "JoinToken "+joinToken, "join_token"
		} else {
			var err error
			if auth, err = s.bearer(); err != nil {
				return err
			}
		}
		return s.issue(ctx, s.anon, auth, method, nil)
	})
}

// bearer returns an Authorization value from the token source.
func (s *CASource) bearer() (string, error) {
	tok, err := s.cfg.TokenSource.Token()
	if err != nil {
		return "", fmt.Errorf("workload: TokenSource: %w", err)
	}
	if tok == nil || tok.AccessToken == "" {
		return "", errors.New("workload: TokenSource returned no access token")
	}
	return "Bearer " + tok.AccessToken, nil
}

// issue asks the CA for an SVID for a fresh key, verifies and installs it.
// renewing is the current ID on renewal (the CA must keep it).
func (s *CASource) issue(ctx context.Context, client *http.Client, auth, method string, renewing *spiffeid.ID) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), crand.Reader)
	if err != nil {
		return fmt.Errorf("workload: generating a key: %w", err)
	}
	csr, err := x509.CreateCertificateRequest(crand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		return fmt.Errorf("workload: creating the CSR: %w", err)
	}
	body, _ := json.Marshal(map[string]string{"csr": base64.StdEncoding.EncodeToString(csr)})
	data, _, err := s.call(ctx, client, http.MethodPost, "/v1/svid", body, auth)
	if err != nil {
		return err
	}
	sv, b, err := s.verifyIssued(data, key, renewing)
	if err != nil {
		return &permanentError{err}
	}
	s.install(sv, b, method)
	return nil
}

// issueAnswer is the body of a 200 answer to POST /v1/svid.
type issueAnswer struct {
	SpiffeID  string          `json:"spiffe_id"`
	X509SVID  []string        `json:"x509_svid"`
	ExpiresAt string          `json:"expires_at"`
	Bundle    json.RawMessage `json:"bundle"`
}

// maxChain bounds the certificates of an issued SVID.
const maxChain = 8

// verifyIssued parses an issuance answer and accepts the SVID only when it
// verifies against the returned bundle (or the current one), names an ID in
// the trust domain, and carries key's public key.
func (s *CASource) verifyIssued(data []byte, key *ecdsa.PrivateKey, renewing *spiffeid.ID) (*x509svid.SVID, *spiffebundle.Bundle, error) {
	if err := jwtx.CheckObject(data); err != nil {
		return nil, nil, fmt.Errorf("workload: the CA's SVID answer is not valid JSON: %w", err)
	}
	var a issueAnswer
	if err := json.Unmarshal(data, &a); err != nil {
		return nil, nil, fmt.Errorf("workload: the CA's SVID answer is malformed: %w", err)
	}
	if len(a.X509SVID) == 0 || len(a.X509SVID) > maxChain {
		return nil, nil, fmt.Errorf("workload: the CA's SVID answer has %d certificates", len(a.X509SVID))
	}
	var der []byte
	for i, c := range a.X509SVID {
		b, err := base64.StdEncoding.DecodeString(c)
		if err != nil {
			return nil, nil, fmt.Errorf("workload: x509_svid[%d] is not base64", i)
		}
		der = append(der, b...)
	}
	pk, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("workload: encoding the key: %w", err)
	}
	sv, err := x509svid.ParseRaw(der, pk)
	if err != nil {
		return nil, nil, fmt.Errorf("workload: the issued SVID is invalid (or not for our key): %w", err)
	}
	var b *spiffebundle.Bundle
	if raw := bytes.TrimSpace(a.Bundle); len(raw) > 0 && !bytes.Equal(raw, []byte("null")) {
		if b, err = parseBundle(s.cfg.TrustDomain, raw); err != nil {
			return nil, nil, err
		}
	}
	if !sv.ID.MemberOf(s.cfg.TrustDomain) {
		return nil, nil, fmt.Errorf("workload: the issued SVID %s is not in trust domain %s", sv.ID, s.cfg.TrustDomain.Name())
	}
	if a.SpiffeID != "" && a.SpiffeID != sv.ID.String() {
		return nil, nil, errors.New("workload: the CA's spiffe_id differs from the issued SVID's")
	}
	if renewing != nil && sv.ID != *renewing {
		return nil, nil, fmt.Errorf("workload: renewal returned %s, want %s", sv.ID, *renewing)
	}
	var verifyWith x509bundle.Source = s.currentBundle()
	if b != nil {
		verifyWith = b.X509Bundle()
	}
	if _, _, err := x509svid.Verify(sv.Certificates, verifyWith, x509svid.WithTime(s.opt.now())); err != nil {
		return nil, nil, fmt.Errorf("workload: the issued SVID does not verify against the bundle: %w", err)
	}
	return sv, b, nil
}
