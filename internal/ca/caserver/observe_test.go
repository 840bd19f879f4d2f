package caserver

import (
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/gatehouse/gatehouse/internal/testutil/syncbuf"
	"github.com/gatehouse/gatehouse/sdk/auth"
)

// captureLog sends the server's log, every level, to the returned buffer.
func (h *harness) captureLog() *syncbuf.Buffer {
	buf := &syncbuf.Buffer{}
	h.srv.log = slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	return buf
}

// TestLogsNoSecrets: issuance logs the SPIFFE ID, method and serial; join
// tokens and access tokens never reach the log, accepted or refused.
func TestLogsNoSecrets(t *testing.T) {
	h := newHarness(t)
	buf := h.captureLog()
	c := h.client(nil, nil)
	body, _ := svidBody(t)
	tok := h.addJoinToken("spiffe://gatehouse.test/orders", time.Minute)
	a := h.do(c, http.MethodPost, "/v1/svid", "JoinToken "+tok, body)
	if a.status != http.StatusOK {
		t.Fatalf("%d %s", a.status, a.raw)
	}
	serial := chainOf(t, a)[0].SerialNumber.Text(16)
	h.do(c, http.MethodPost, "/v1/svid", "JoinToken "+tok, body) // replay
	const access = "eyJhbGciOiJFUzI1NiJ9.secret-access-token.sig"
	h.tokens.claims[access] = &auth.Claims{Subject: "u", ClientID: "svc"}
	h.do(c, http.MethodPost, "/v1/svid", "Bearer "+access, body)
	h.do(c, http.MethodPost, "/v1/svid", "Bearer forged-"+access, body)
	out := buf.String()
	for _, want := range []string{"spiffe_id=spiffe://gatehouse.test/orders", "method=join_token", "serial=" + serial, "error=invalid_token"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	for _, secret := range []string{tok, access} {
		if strings.Contains(out, secret) {
			t.Fatalf("log contains a token:\n%s", out)
		}
	}
}

func TestMetrics(t *testing.T) {
	h := newHarness(t)
	c := h.client(nil, nil)
	h.do(c, http.MethodGet, "/v1/bundle", "", "")
	h.do(c, http.MethodPost, "/v1/svid", "", "{}")
	if got := counterValue(t, h.srv.metrics.requests.WithLabelValues("bundle", "ok")); got != 1 {
		t.Errorf("bundle ok = %v", got)
	}
	if got := counterValue(t, h.srv.metrics.requests.WithLabelValues("svid", "invalid_request")); got != 1 {
		t.Errorf("svid invalid_request = %v", got)
	}
	if n := len(h.srv.Collectors()); n != 1 {
		t.Errorf("%d collectors", n)
	}
}

// TestMT01StolenCertificate: presenting another workload's SVID without
// its private key fails the handshake (the server checks CertificateVerify
// even though it does not verify the chain there).
func TestMT01StolenCertificate(t *testing.T) {
	h := newHarness(t)
	now := time.Now()
	owner := mustKey(t)
	id := spiffeid.RequireFromString("spiffe://gatehouse.test/payments")
	chain := h.ca.sign(t, leafTemplate(id, now.Add(-time.Minute), now.Add(time.Hour)), owner.Public())
	thief := mustKey(t)
	resp, err := h.client(chain, thief).Get(h.ts.URL + "/v1/policy")
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Fatal("a certificate without its private key was accepted")
		}
	}
}

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// TestUnavailableLogsWarn: a 503 (the IdP's keys not loaded yet at start-up,
// storage briefly away) is logged at WARN, not ERROR: clients retry it.
func TestUnavailableLogsWarn(t *testing.T) {
	h := newHarness(t)
	buf := h.captureLog()
	c := h.client(nil, nil)
	body, _ := svidBody(t)
	h.tokens.err = fmt.Errorf("%w: keys not loaded", auth.ErrUnavailable)
	if a := h.do(c, http.MethodPost, "/v1/svid", "Bearer ok", body); a.status != http.StatusServiceUnavailable {
		t.Fatalf("verifier without keys: %d %s", a.status, a.raw)
	}
	out := buf.String()
	if !strings.Contains(out, "level=WARN") || !strings.Contains(out, "error=temporarily_unavailable") || strings.Contains(out, "level=ERROR") {
		t.Fatalf("want one WARN temporarily_unavailable line, got:\n%s", out)
	}
}
