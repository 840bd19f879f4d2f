package caserver

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/gatehouse/gatehouse/internal/ca"
	"github.com/gatehouse/gatehouse/internal/storage"
	"github.com/gatehouse/gatehouse/sdk/auth"
)

// Issuance methods, as logged and counted by the CA.
const (
	methodJoinToken         = ca.MethodJoinToken
	methodClientCredentials = ca.MethodClientCredentials
	methodRenewal           = ca.MethodRenewal
)

// maxTokenLen caps a join or access token before any work.
const maxTokenLen = 8192

// joinTokenInvalid is the one public message for every join token failure.
const joinTokenInvalid = "join token is invalid, expired or already used"

// credential is the single credential a POST /v1/svid carries.
type credential struct {
	method string // methodJoinToken | methodClientCredentials | methodRenewal
	token  string // join or access token; never logged
}

// svidResponse is the answer of POST /v1/svid.
type svidResponse struct {
	SPIFFEID  string          `json:"spiffe_id"`
	X509SVID  []string        `json:"x509_svid"`
	ExpiresAt string          `json:"expires_at"`
	Bundle    json.RawMessage `json:"bundle"`
}

// handleSVID issues an SVID for the identity the one credential proves.
func (s *Server) handleSVID(w http.ResponseWriter, r *http.Request) error {
	// An address with too many failed credentials is refused before its
	// credential is looked up.
	ip := clientIP(r)
	if err := throttled(s.failures, ip); err != nil {
		return err
	}
	cred, err := requestCredential(r)
	if err != nil {
		return err
	}
	// The body is checked before the credential is spent: a malformed
	// request never burns a single-use join token.
	csrDER, err := readSVIDRequest(r)
	if err != nil {
		return err
	}
	// The CSR's signature is checked once, here; the CA gets the checked
	// CSR (IssueRequest) and checks its key again.
	csr, err := precheckCSR(csrDER)
	if err != nil {
		return err
	}
	ctx := r.Context()
	// Readiness and the revocation set are checked before a credential is
	// spent: a 503 never burns a join token.
	revoked, err := s.preflight(ctx)
	if err != nil {
		return err
	}
	var id spiffeid.ID
	switch cred.method {
	case methodJoinToken:
		id, err = s.joinTokenID(r, cred.token)
	case methodClientCredentials:
		id, err = s.clientCredentialsID(r, cred.token)
	default:
		var leaf *x509.Certificate
		id, leaf, err = s.verifyPeer(r)
		if err == nil {
			err = s.checkRevoked(revoked, id, leaf)
		}
	}
	if err != nil {
		if credentialFailure(err) {
			s.failures.Fail(ip)
		}
		return err
	}
	if reserved(id) {
		return &apiError{Status: http.StatusForbidden, Code: "unauthorized_client",
			Public: "SPIFFE IDs under /gatehouse/ are reserved for Gatehouse itself"}
	}
	svid, err := s.deps.CA.IssueRequest(ca.WithMethod(ctx, cred.method), id, csr, s.ttl)
	if err != nil {
		return issueError(err)
	}
	if len(svid.Certificates) == 0 {
		return asAPIError(errors.New("caserver: the CA returned no certificate"))
	}
	bundle, err := s.deps.CA.BundleJSON()
	if err != nil {
		return unavailable(fmt.Errorf("bundle: %w", err))
	}
	expires := svid.NotAfter.UTC().Format(time.RFC3339)
	// The arguments are formatted only when the record is kept.
	if s.log.Enabled(ctx, slog.LevelInfo) {
		s.log.InfoContext(ctx, "svid issued", "spiffe_id", svid.ID.String(), "method", cred.method,
			"serial", svid.Certificates[0].SerialNumber.Text(16), "expires_at", expires)
	}
	b, err := appendSVIDResponse(make([]byte, 0, 3072), svid, expires, s.checkedBundle(bundle))
	if err != nil {
		return asAPIError(fmt.Errorf("encode the answer: %w", err))
	}
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	writeJSONBytes(w, http.StatusOK, append(b, '\n'))
	return nil
}

// checkedBundle returns bundle when it is valid JSON (checked once per
// bundle: the last valid one is remembered), nil otherwise.
func (s *Server) checkedBundle(bundle []byte) []byte {
	if last := s.validBundle.Load(); last != nil && bytes.Equal(*last, bundle) {
		return bundle
	}
	if !json.Valid(bundle) {
		return nil
	}
	valid := bytes.Clone(bundle)
	s.validBundle.Store(&valid)
	return bundle
}

// appendSVIDResponse appends the JSON answer of POST /v1/svid (svidResponse)
// to dst without reflection: the bundle is the CA's own JSON, checked by
// checkedBundle (nil: not JSON, an error), the certificates are base64 and
// the time RFC 3339, none needing escapes; the SPIFFE ID is encoded by
// encoding/json.
func appendSVIDResponse(dst []byte, svid *ca.SVID, expires string, bundle []byte) ([]byte, error) {
	if len(bundle) == 0 {
		return nil, errors.New("the bundle is not JSON")
	}
	id, err := json.Marshal(svid.ID.String())
	if err != nil {
		return nil, err
	}
	dst = append(dst, `{"spiffe_id":`...)
	dst = append(dst, id...)
	dst = append(dst, `,"x509_svid":[`...)
	for i, c := range svid.Certificates {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, '"')
		dst = base64.StdEncoding.AppendEncode(dst, c.Raw)
		dst = append(dst, '"')
	}
	dst = append(dst, `],"expires_at":"`...)
	dst = append(dst, expires...)
	dst = append(dst, `","bundle":`...)
	dst = append(dst, bytes.TrimSpace(bundle)...)
	return append(dst, '}'), nil
}

// requestCredential finds the request's one credential: an Authorization
// header (JoinToken or Bearer) or a client certificate, never both, never
// none.
func requestCredential(r *http.Request) (credential, error) {
	hasCert := r.TLS != nil && len(r.TLS.PeerCertificates) > 0
	headers := r.Header.Values("Authorization")
	switch {
	case len(headers) > 1:
		return credential{}, badRequest("several Authorization headers: send exactly one credential", nil)
	case len(headers) == 1 && hasCert:
		return credential{}, badRequest("several credentials (an Authorization header and a client certificate): send exactly one", nil)
	case len(headers) == 0 && !hasCert:
		return credential{}, badRequest("no credential: send a join token, a client-credentials access token, or renew with a valid SVID over mTLS", nil)
	case hasCert:
		return credential{method: methodRenewal}, nil
	}
	scheme, token, ok := strings.Cut(headers[0], " ")
	token = strings.TrimLeft(token, " ")
	if !ok || token == "" || strings.ContainsAny(token, " \t") {
		return credential{}, badRequest("malformed Authorization header", nil)
	}
	switch {
	case strings.EqualFold(scheme, "JoinToken"):
		return credential{method: methodJoinToken, token: token}, nil
	case strings.EqualFold(scheme, "Bearer"):
		return credential{method: methodClientCredentials, token: token}, nil
	}
	return credential{}, badRequest("unsupported Authorization scheme: use JoinToken or Bearer", nil)
}

// joinTokenID consumes a join token and returns its SPIFFE ID.
func (s *Server) joinTokenID(r *http.Request, token string) (spiffeid.ID, error) {
	invalid := func(cause error) error {
		return &apiError{Status: http.StatusUnauthorized, Code: "invalid_token", Public: joinTokenInvalid, Cause: cause}
	}
	if len(token) > maxTokenLen {
		return spiffeid.ID{}, invalid(errors.New("join token too long"))
	}
	hash := hex.EncodeToString(s.deps.Secrets.Sum(token))
	jt, err := s.deps.JoinTokens.ConsumeJoinToken(r.Context(), hash, s.now())
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return spiffeid.ID{}, invalid(errors.New("join token unknown"))
	case errors.Is(err, storage.ErrAlreadyUsed):
		s.log.WarnContext(r.Context(), "join token replayed", "spiffe_id", jt.SPIFFEID)
		return spiffeid.ID{}, invalid(errors.New("join token already used"))
	case errors.Is(err, storage.ErrExpired):
		return spiffeid.ID{}, invalid(errors.New("join token expired"))
	case err != nil:
		return spiffeid.ID{}, unavailable(fmt.Errorf("consume join token: %w", err))
	}
	id, err := spiffeid.FromString(jt.SPIFFEID)
	if err != nil || !id.MemberOf(s.td) || id.Path() == "" {
		return spiffeid.ID{}, invalid(fmt.Errorf("join token names %q, not an ID in trust domain %s", jt.SPIFFEID, s.td))
	}
	return id, nil
}

// clientCredentialsID verifies a client-credentials access token and
// returns the registered SPIFFE ID of its client.
func (s *Server) clientCredentialsID(r *http.Request, token string) (spiffeid.ID, error) {
	ctx := r.Context()
	invalid := func(cause error) error {
		return &apiError{Status: http.StatusUnauthorized, Code: "invalid_token", Public: "the access token is invalid", Cause: cause}
	}
	if len(token) > maxTokenLen {
		return spiffeid.ID{}, invalid(errors.New("access token too long"))
	}
	claims, err := s.deps.Tokens.Authenticate(ctx, token)
	switch {
	case errors.Is(err, auth.ErrUnavailable):
		return spiffeid.ID{}, unavailable(err)
	case err != nil:
		return spiffeid.ID{}, invalid(err)
	case claims == nil:
		return spiffeid.ID{}, invalid(errors.New("no claims"))
	}
	// The verifier requires the CA's audience; any other audience means the
	// token was also sent to another service, which could replay it here
	// and get this client's SVID for a key of its own.
	if len(claims.Audience) > 1 {
		return spiffeid.ID{}, &apiError{Status: http.StatusUnauthorized, Code: "invalid_token",
			Public: "the access token must be for the CA alone (one audience): request it with the CA's audience only",
			Cause:  fmt.Errorf("token has %d audiences", len(claims.Audience))}
	}
	if !clientCredentialsToken(claims) {
		return spiffeid.ID{}, &apiError{Status: http.StatusForbidden, Code: "unauthorized_client",
			Public: "only a client-credentials access token (sub = client_id) can obtain an SVID"}
	}
	c, err := s.deps.Clients.GetClient(ctx, claims.ClientID)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return spiffeid.ID{}, invalid(errors.New("the token's client no longer exists"))
	case err != nil:
		return spiffeid.ID{}, unavailable(fmt.Errorf("get client: %w", err))
	}
	if c.SPIFFEID == "" {
		return spiffeid.ID{}, &apiError{Status: http.StatusForbidden, Code: "unauthorized_client",
			Public: "the client has no spiffe_id registered"}
	}
	id, err := spiffeid.FromString(c.SPIFFEID)
	if err != nil || !id.MemberOf(s.td) || id.Path() == "" {
		return spiffeid.ID{}, &apiError{Status: http.StatusForbidden, Code: "unauthorized_client",
			Public: "the client's spiffe_id is not an ID in the CA's trust domain " + s.td.String(), Cause: err}
	}
	return id, nil
}

// clientCredentialsToken reports whether c is a client's own token: the
// subject is the client (RFC 9068 §2.2), and it carries none of the marks of
// a user token (gid, auth_time) or of an exchanged one (act).
func clientCredentialsToken(c *auth.Claims) bool {
	if c.Subject == "" || c.Subject != c.ClientID {
		return false
	}
	for _, k := range []string{"gid", "act", "auth_time"} {
		if _, ok := c.Extra[k]; ok {
			return false
		}
	}
	return true
}

// reserved reports whether id is Gatehouse's own (/gatehouse or below): the
// CA's serving identity must not be obtainable by a workload.
func reserved(id spiffeid.ID) bool {
	p := id.Path()
	return p == "/gatehouse" || strings.HasPrefix(p, "/gatehouse/")
}

// precheckCSR refuses, before any credential is spent, a CSR that the CA
// would refuse: unparsable, a signature that does not verify, or a key
// outside ECDSA P-256/P-384, Ed25519 and RSA 2048-8192. The CA checks again.
func precheckCSR(der []byte) (*x509.CertificateRequest, error) {
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return nil, &apiError{Status: http.StatusBadRequest, Code: "invalid_csr", Public: "the CSR cannot be parsed", Cause: err}
	}
	// The key is checked before the signature: a weak or exotic key costs
	// no signature verification.
	if !acceptedKey(csr.PublicKey) {
		return nil, &apiError{Status: http.StatusBadRequest, Code: "invalid_csr",
			Public: "unsupported or weak public key (accepted: ECDSA P-256/P-384, Ed25519, RSA 2048-8192)"}
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, &apiError{Status: http.StatusBadRequest, Code: "invalid_csr", Public: "the CSR's signature does not verify", Cause: err}
	}
	return csr, nil
}

func acceptedKey(pub any) bool {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		return k.Curve == elliptic.P256() || k.Curve == elliptic.P384()
	case ed25519.PublicKey:
		return len(k) == ed25519.PublicKeySize
	case *rsa.PublicKey:
		n := k.N.BitLen()
		return n >= 2048 && n <= 8192
	}
	return false
}

// issueError maps the CA's errors to answers.
func issueError(err error) error {
	switch {
	case errors.Is(err, ca.ErrBadCSR):
		return &apiError{Status: http.StatusBadRequest, Code: "invalid_csr", Public: ca.ErrBadCSR.Error(), Cause: err}
	case errors.Is(err, ca.ErrWeakKey):
		return &apiError{Status: http.StatusBadRequest, Code: "invalid_csr", Public: ca.ErrWeakKey.Error(), Cause: err}
	case errors.Is(err, ca.ErrBadID):
		return &apiError{Status: http.StatusForbidden, Code: "unauthorized_client", Public: ca.ErrBadID.Error(), Cause: err}
	case errors.Is(err, ca.ErrNotReady), errors.Is(err, storage.ErrUnavailable):
		return unavailable(err)
	}
	return asAPIError(fmt.Errorf("issue: %w", err))
}
