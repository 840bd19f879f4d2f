package caserver

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
)

// maxBody caps request bodies (64 KiB).
const maxBody = 64 << 10

// apiError is an answer with a public code and message and a private cause.
type apiError struct {
	Status int
	Code   string
	Public string
	Cause  error // logged, never answered
	// RetryAfter (seconds, > 0) is sent as Retry-After (429 answers).
	RetryAfter int
}

func (e *apiError) Error() string {
	if e.Cause != nil {
		return e.Code + ": " + e.Public + ": " + e.Cause.Error()
	}
	return e.Code + ": " + e.Public
}

func (e *apiError) Unwrap() error { return e.Cause }

func asAPIError(err error) *apiError {
	var e *apiError
	if errors.As(err, &e) {
		return e
	}
	return &apiError{Status: http.StatusInternalServerError, Code: "server_error", Public: "internal error", Cause: err}
}

func causeString(e *apiError) string {
	if e.Cause == nil {
		return ""
	}
	return e.Cause.Error()
}

func badRequest(public string, cause error) *apiError {
	return &apiError{Status: http.StatusBadRequest, Code: "invalid_request", Public: public, Cause: cause}
}

func unavailable(cause error) *apiError {
	return &apiError{Status: http.StatusServiceUnavailable, Code: "temporarily_unavailable",
		Public: "the CA is temporarily unavailable; retry later", Cause: cause}
}

// writeError answers {"error","error_description"}. Every error answer is
// uncacheable; a 503 carries Retry-After.
func writeError(w http.ResponseWriter, e *apiError) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	if e.Status == http.StatusServiceUnavailable {
		h.Set("Retry-After", strconv.Itoa(retryAfterSeconds))
	}
	if e.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(e.RetryAfter))
	}
	writeJSON(w, e.Status, map[string]string{"error": e.Code, "error_description": e.Public})
}

// retryAfterSeconds is the Retry-After of 503 answers.
const retryAfterSeconds = 5

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":"server_error","error_description":"internal error"}`)
	}
	writeJSONBytes(w, status, append(b, '\n'))
}

// writeJSONBytes answers the JSON document b with its length (no chunked
// encoding).
func writeJSONBytes(w http.ResponseWriter, status int, b []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// svidRequest is the body of POST /v1/svid.
type svidRequest struct {
	CSR string `json:"csr"`
}

// readSVIDRequest reads and strictly decodes the body of POST /v1/svid and
// returns the CSR's DER bytes.
func readSVIDRequest(r *http.Request) ([]byte, error) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			return nil, badRequest("Content-Type must be application/json", err)
		}
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return nil, badRequest("cannot read the request body", err)
	}
	if len(body) > maxBody {
		return nil, badRequest("the request body exceeds 64 KiB", nil)
	}
	return decodeSVIDRequest(body)
}

var (
	errNotObject  = errors.New("the body must be one JSON object")
	errTrailing   = errors.New("trailing data after the JSON object")
	errNotString  = errors.New(`"csr" must be a string`)
	errNoCSR      = errors.New(`"csr" is required`)
	errCSRBase64  = errors.New(`"csr" must be standard base64 of the DER of a PKCS#10 request`)
	errMemberName = errors.New("object member name expected")
)

// decodeSVIDRequest is the strict decoder of {"csr": "<base64 std DER>"}:
// exactly one JSON object, only the member "csr" (byte-exact name, once), a
// string value, no trailing data. It is the fuzzed parser.
func decodeSVIDRequest(body []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	tok, err := dec.Token()
	if err != nil {
		return nil, badRequest("malformed JSON body", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, badRequest(errNotObject.Error(), nil)
	}
	var req svidRequest
	seen := false
	for {
		tok, err := dec.Token()
		if err != nil {
			return nil, badRequest("malformed JSON body", err)
		}
		if d, ok := tok.(json.Delim); ok && d == '}' {
			break
		}
		name, ok := tok.(string)
		if !ok {
			return nil, badRequest("malformed JSON body", errMemberName)
		}
		if name != "csr" {
			return nil, badRequest(fmt.Sprintf("unknown member %q", truncate(name, 40)), nil)
		}
		if seen {
			return nil, badRequest(`duplicate member "csr"`, nil)
		}
		seen = true
		tok, err = dec.Token()
		if err != nil {
			return nil, badRequest("malformed JSON body", err)
		}
		s, ok := tok.(string)
		if !ok {
			// A '{' or '[' here is refused too: no nested values.
			return nil, badRequest(errNotString.Error(), nil)
		}
		req.CSR = s
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, badRequest(errTrailing.Error(), err)
	}
	if req.CSR == "" {
		return nil, badRequest(errNoCSR.Error(), nil)
	}
	der, err := base64.StdEncoding.Strict().DecodeString(req.CSR)
	if err != nil || len(der) == 0 {
		return nil, &apiError{Status: http.StatusBadRequest, Code: "invalid_csr", Public: errCSRBase64.Error(), Cause: err}
	}
	return der, nil
}

// truncate shortens s for an error message.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
