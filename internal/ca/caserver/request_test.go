package caserver

import (
	"bytes"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestRequestErrors: malformed requests, missing or several credentials and
// bad CSRs are refused before any credential is spent.
func TestRequestErrors(t *testing.T) {
	h := newHarness(t)
	c := h.client(nil, nil)
	tok := h.addJoinToken("spiffe://gatehouse.test/orders", time.Minute)
	good, key := svidBody(t)
	csr := csrB64(t, key, nil)
	der, _ := base64.StdEncoding.DecodeString(csr)
	der[len(der)-1] ^= 0xff // breaks the CSR's signature
	badSig := base64.StdEncoding.EncodeToString(der)
	join := "JoinToken " + tok

	tests := []struct {
		name, method, authz, body, ctype string
		status                           int
		code                             string
	}{
		{"no credential", "POST", "", good, "", 400, "invalid_request"},
		{"unknown scheme", "POST", "Basic dTpw", good, "", 400, "invalid_request"},
		{"empty token", "POST", "JoinToken ", good, "", 400, "invalid_request"},
		{"token with spaces", "POST", "JoinToken a b", good, "", 400, "invalid_request"},
		{"GET", "GET", join, "", "", 405, "invalid_request"},
		{"wrong content type", "POST", join, good, "text/plain", 400, "invalid_request"},
		{"not JSON", "POST", join, "csr=" + csr, "", 400, "invalid_request"},
		{"array", "POST", join, `["` + csr + `"]`, "", 400, "invalid_request"},
		{"unknown member", "POST", join, `{"csr":"` + csr + `","spiffe_id":"spiffe://gatehouse.test/admin"}`, "", 400, "invalid_request"},
		{"duplicate csr", "POST", join, `{"csr":"` + csr + `","csr":"` + csr + `"}`, "", 400, "invalid_request"},
		{"member case", "POST", join, `{"CSR":"` + csr + `"}`, "", 400, "invalid_request"},
		{"trailing data", "POST", join, good + `{}`, "", 400, "invalid_request"},
		{"csr not a string", "POST", join, `{"csr":{"a":1}}`, "", 400, "invalid_request"},
		{"empty csr", "POST", join, `{"csr":""}`, "", 400, "invalid_request"},
		{"empty body", "POST", join, ``, "", 400, "invalid_request"},
		{"too large", "POST", join, `{"csr":"` + strings.Repeat("A", maxBody) + `"}`, "", 400, "invalid_request"},
		{"csr not base64", "POST", join, `{"csr":"@@@"}`, "", 400, "invalid_csr"},
		{"csr url-safe base64", "POST", join, `{"csr":"` + strings.TrimRight(base64.RawURLEncoding.EncodeToString([]byte{0xfb, 0xff}), "=") + `"}`, "", 400, "invalid_csr"},
		{"csr garbage DER", "POST", join, `{"csr":"` + base64.StdEncoding.EncodeToString([]byte("not a csr")) + `"}`, "", 400, "invalid_csr"},
		{"csr bad signature", "POST", join, `{"csr":"` + badSig + `"}`, "", 400, "invalid_csr"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, h.ts.URL+"/v1/svid", strings.NewReader(tc.body))
			if tc.authz != "" {
				req.Header.Set("Authorization", tc.authz)
			}
			if tc.ctype != "" {
				req.Header.Set("Content-Type", tc.ctype)
			}
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var buf bytes.Buffer
			_, _ = buf.ReadFrom(resp.Body)
			if resp.StatusCode != tc.status || !strings.Contains(buf.String(), `"error":"`+tc.code+`"`) {
				t.Fatalf("%d %s; want %d %s", resp.StatusCode, buf.String(), tc.status, tc.code)
			}
		})
	}
	// Two Authorization headers: several credentials.
	req, _ := http.NewRequest(http.MethodPost, h.ts.URL+"/v1/svid", strings.NewReader(good))
	req.Header.Add("Authorization", join)
	req.Header.Add("Authorization", "Bearer x")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("two Authorization headers: %d", resp.StatusCode)
	}
	// None of the refused requests spent the token.
	if a := h.do(c, http.MethodPost, "/v1/svid", join, good); a.status != http.StatusOK {
		t.Fatalf("token after refused requests: %d %s", a.status, a.raw)
	}
}

func TestDecodeSVIDRequest(t *testing.T) {
	if der, err := decodeSVIDRequest([]byte(` {"csr" : "AAEC"} `)); err != nil || !bytes.Equal(der, []byte{0, 1, 2}) {
		t.Fatalf("valid body: %v %v", der, err)
	}
	for _, body := range []string{`{}`, `{"csr":"AAEC",}`, `{"csr":null}`, `{"csr":1}`, `{"csr":["AAEC"]}`, `{"csr":"AAEC"}x`,
		`{"csr":"AAEC","x":1}`, `{"csr":"AAF="}`, "{\"csr\":\"AAEC\"}\x00", `{"csr":"AA EC"}`, `{"c\u0073r":"AAEC","csr":"AAEC"}`} {
		if _, err := decodeSVIDRequest([]byte(body)); err == nil {
			t.Errorf("%q accepted", body)
		}
	}
}

// FuzzDecodeSVIDRequest: the decoder never panics, accepts only one
// well-formed object with the single member "csr", and every refusal is a
// 400 with a public code.
func FuzzDecodeSVIDRequest(f *testing.F) {
	for _, s := range []string{`{"csr":"AAEC"}`, `{"csr":"AAEC","csr":"AAEC"}`, `{"CSR":"AAEC"}`, `[]`, `{"csr":{"a":[1,2]}}`,
		`{"csr":"AAEC"} {}`, `{"csr":"\u0041AEC"}`, ``, `{`, `{"csr":"` + strings.Repeat("QUFB", 100) + `"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		der, err := decodeSVIDRequest(body)
		if err != nil {
			var e *apiError
			if !errors.As(err, &e) || e.Status != http.StatusBadRequest || (e.Code != "invalid_request" && e.Code != "invalid_csr") {
				t.Fatalf("error %v is not a 400 invalid_request/invalid_csr", err)
			}
			return
		}
		if len(der) == 0 {
			t.Fatal("accepted an empty CSR")
		}
		if !bytes.Contains(body, []byte(`"csr"`)) && !bytes.Contains(body, []byte(`\u`)) {
			t.Fatalf("accepted %q without a csr member", body)
		}
	})
}
