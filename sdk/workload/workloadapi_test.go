package workload_test

import (
	"context"
	"crypto/x509"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/gatehouse/gatehouse/sdk/workload"
	"github.com/gatehouse/gatehouse/sdk/workload/internal/fakeworkloadapi"
)

func fakeUpdate(e *mtEnv, sv *x509svid.SVID) fakeworkloadapi.Update {
	return fakeworkloadapi.Update{SVIDs: []fakeworkloadapi.SVID{{
		ID: sv.ID, Certificates: sv.Certificates, Key: sv.PrivateKey, Bundle: []*x509.Certificate{e.root.cert},
	}}}
}

func startFake(t *testing.T, u fakeworkloadapi.Update) *fakeworkloadapi.Server {
	t.Helper()
	f, err := fakeworkloadapi.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	if err := f.SetX509(u); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestWorkloadAPISourceMutualTLSAndRotation(t *testing.T) {
	e := newMTEnv(t)
	sfake := startFake(t, fakeUpdate(e, e.inter.issue(t, nil, serverIDs)))
	cfake := startFake(t, fakeUpdate(e, e.inter.issue(t, nil, clientIDs)))

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ssrc, err := workload.NewWorkloadAPISource(ctx, sfake.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ssrc.Close() }()
	csrc, err := workload.NewWorkloadAPISource(ctx, cfake.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = csrc.Close() }()

	pol := &policyHolder{}
	pol.p.Store(mustPolicy(t, workload.Rule{Name: "c-s", Effect: "allow", From: []string{clientIDs}, To: []string{serverIDs}}))
	h := workload.Middleware(pol, serverID, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, _ := workload.PeerID(r.Context())
		_, _ = io.WriteString(w, id.String())
	}))
	url := serveHTTPS(t, mustServerConfig(t, ssrc, workload.AuthorizePolicy(pol, serverID)), h)
	client := httpsClient(mustClientConfig(t, csrc, workload.AuthorizeID(serverID)))

	get := func() *http.Response {
		t.Helper()
		resp, err := client.Get(url + "/hello")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != clientIDs {
			t.Fatalf("status %d body %q", resp.StatusCode, body)
		}
		return resp
	}
	first := get().TLS.PeerCertificates[0]

	// The agent pushes a rotated SVID: the source follows and the next
	// handshake presents it.
	rotated := e.inter.issue(t, nil, serverIDs)
	if err := sfake.SetX509(fakeUpdate(e, rotated)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		sv, err := ssrc.GetX509SVID()
		if err == nil && sv.Certificates[0].SerialNumber.Cmp(rotated.Certificates[0].SerialNumber) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("source did not follow the rotation")
		}
		time.Sleep(10 * time.Millisecond)
	}
	second := get().TLS.PeerCertificates[0]
	if second.SerialNumber.Cmp(rotated.Certificates[0].SerialNumber) != 0 || second.SerialNumber.Cmp(first.SerialNumber) == 0 {
		t.Fatalf("server presented serial %x after rotation, want %x", second.SerialNumber, rotated.Certificates[0].SerialNumber)
	}
}

func TestWorkloadAPISourceNoAgent(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, err := workload.NewWorkloadAPISource(ctx, "unix:///nonexistent/agent.sock"); err == nil {
		t.Fatal("source without an agent")
	}
}
