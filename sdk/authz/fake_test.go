package authz

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// serviceToken is the credential the test client sends; the fake refuses
// calls without it.
const serviceToken = "svc-token-123"

// wireRequest is POST /authorize as the fake decodes it (strictly).
type wireRequest struct {
	Principal   map[string]any `json:"principal"`
	Action      string         `json:"action"`
	Resource    wireResource   `json:"resource"`
	Context     map[string]any `json:"context"`
	Consistency *struct {
		AtLeastAsFresh string `json:"at_least_as_fresh"`
	} `json:"consistency"`
}

type wireResource struct {
	Type   string         `json:"type"`
	ID     string         `json:"id"`
	Tenant string         `json:"tenant"`
	Attrs  map[string]any `json:"attrs"`
}

type wireBatch struct {
	Principal map[string]any `json:"principal"`
	Checks    []struct {
		Action   string         `json:"action"`
		Resource wireResource   `json:"resource"`
		Context  map[string]any `json:"context"`
	} `json:"checks"`
}

// fakeService is an honest fake of the authorization service's HTTP API:
// it checks the credential, decodes requests strictly, checks their shape
// and answers with documented JSON. The policy: a principal may "read"
// anything; the token "tok-admin" or the user "usr_admin" may do anything.
type fakeService struct {
	t   *testing.T
	srv *httptest.Server

	mu        sync.Mutex
	calls     map[string]int // by path
	requests  []wireRequest
	batches   []wireBatch
	bodies    [][]byte
	override  func(w http.ResponseWriter, r *http.Request) bool // true: answered
	shapeErrs []string
}

func newFakeService(t *testing.T) *fakeService {
	t.Helper()
	f := &fakeService{t: t, calls: map[string]int{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /authorize", f.authorize)
	mux.HandleFunc("POST /authorize/batch", f.batch)
	mux.HandleFunc("POST /relationships", f.relationships)
	mux.HandleFunc("PUT /entities/{type}/{id}", f.entity)
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.calls[r.URL.Path]++
		ov := f.override
		f.mu.Unlock()
		if r.Header.Get("Authorization") != "Bearer "+serviceToken {
			f.shapeErr("no service credential")
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		if r.Header.Get("Content-Type") != "application/json" {
			f.shapeErr("content type " + r.Header.Get("Content-Type"))
		}
		if ov != nil && ov(w, r) {
			return
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		f.srv.Close()
		f.mu.Lock()
		defer f.mu.Unlock()
		for _, e := range f.shapeErrs {
			t.Errorf("fake service saw a malformed request: %s", e)
		}
	})
	return f
}

func (f *fakeService) shapeErr(s string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.shapeErrs = append(f.shapeErrs, s)
}

func (f *fakeService) setOverride(h func(w http.ResponseWriter, r *http.Request) bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.override = h
}

func (f *fakeService) count(path string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[path]
}

func (f *fakeService) lastRequest() wireRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.requests) == 0 {
		f.t.Fatal("no request received")
	}
	return f.requests[len(f.requests)-1]
}

// decodeStrict decodes one JSON document into v, refusing unknown members.
func (f *fakeService) decodeStrict(r *http.Request, v any) ([]byte, bool) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return nil, false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil || dec.More() {
		f.shapeErr(fmt.Sprintf("%s: %v: %s", r.URL.Path, err, body))
		return nil, false
	}
	return body, true
}

// principalOK checks the documented principal forms: {"token"} alone, or
// claims with an id.
func (f *fakeService) principalOK(p map[string]any) (id string, ok bool) {
	if tok, has := p["token"]; has {
		if len(p) != 1 {
			f.shapeErr("token principal with other members")
			return "", false
		}
		s, _ := tok.(string)
		return "token:" + s, s != ""
	}
	for k := range p {
		if !strings.Contains(" type id roles tenant attrs ", " "+k+" ") {
			f.shapeErr("unknown principal member " + k)
			return "", false
		}
	}
	s, _ := p["id"].(string)
	return "user:" + s, s != ""
}

func (f *fakeService) decide(principal, action string, res wireResource) map[string]any {
	allow := action == "read" || principal == "token:tok-admin" || principal == "user:usr_admin"
	reason := "no permit for " + action + " on " + res.Type + ":" + res.ID
	if allow {
		reason = "permitted for " + action + " on " + res.Type + ":" + res.ID
	}
	return map[string]any{"allow": allow, "reason": reason, "decision_id": "dec_1", "policy_version": "3f2a9c0d5e6b7a81",
		"revision": "57", "policies": []string{"p-" + action},
		"relations": []map[string]any{{"check": res.Type + ":" + res.ID + "#view@" + principal, "allowed": allow, "path": []string{"a", "b"}}}}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (f *fakeService) authorize(w http.ResponseWriter, r *http.Request) {
	var req wireRequest
	body, ok := f.decodeStrict(r, &req)
	if !ok {
		writeJSON(w, http.StatusBadRequest, map[string]any{"allow": false, "reason": "malformed"})
		return
	}
	p, ok := f.principalOK(req.Principal)
	if !ok || req.Action == "" || req.Resource.Type == "" || req.Resource.ID == "" {
		f.shapeErr("incomplete request")
		writeJSON(w, http.StatusBadRequest, map[string]any{"allow": false, "reason": "incomplete"})
		return
	}
	f.mu.Lock()
	f.requests = append(f.requests, req)
	f.bodies = append(f.bodies, body)
	f.mu.Unlock()
	writeJSON(w, http.StatusOK, f.decide(p, req.Action, req.Resource))
}

func (f *fakeService) batch(w http.ResponseWriter, r *http.Request) {
	var req wireBatch
	if _, ok := f.decodeStrict(r, &req); !ok {
		writeJSON(w, http.StatusBadRequest, map[string]any{"allow": false, "reason": "malformed"})
		return
	}
	p, ok := f.principalOK(req.Principal)
	if !ok || len(req.Checks) == 0 || len(req.Checks) > 100 {
		f.shapeErr(fmt.Sprintf("batch of %d checks", len(req.Checks)))
		writeJSON(w, http.StatusBadRequest, map[string]any{"allow": false, "reason": "bad batch"})
		return
	}
	f.mu.Lock()
	f.batches = append(f.batches, req)
	f.mu.Unlock()
	results := make([]map[string]any, len(req.Checks))
	for i, c := range req.Checks {
		results[i] = f.decide(p, c.Action, c.Resource)
	}
	writeJSON(w, http.StatusOK, map[string]any{"results": results})
}

func (f *fakeService) relationships(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Writes []struct {
			Op    string `json:"op"`
			Tuple string `json:"tuple"`
		} `json:"writes"`
	}
	if _, ok := f.decodeStrict(r, &req); !ok || len(req.Writes) == 0 {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "bad"})
		return
	}
	for _, wr := range req.Writes {
		if wr.Op != "touch" && wr.Op != "delete" || !strings.Contains(wr.Tuple, "#") {
			f.shapeErr("bad write " + wr.Op + " " + wr.Tuple)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"revision": fmt.Sprint(100 + len(req.Writes))})
}

func (f *fakeService) entity(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Attrs   map[string]any `json:"attrs"`
		Version *int64         `json:"version"`
	}
	if _, ok := f.decodeStrict(r, &req); !ok || req.Version == nil || req.Attrs == nil {
		f.shapeErr("bad entity body")
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "bad"})
		return
	}
	applied := *req.Version > 1 // version 1 is "older than stored"
	writeJSON(w, http.StatusOK, map[string]any{"applied": applied, "revision": r.PathValue("type") + "/" + r.PathValue("id")})
}

// bearer adds the service credential, as sdk/auth.NewServiceTransport would.
type bearer struct{ base http.RoundTripper }

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+serviceToken)
	return b.base.RoundTrip(r)
}

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// newTestClient returns a client of f with a settable clock.
func newTestClient(t *testing.T, f *fakeService, mod func(*Config)) (*Client, *clock) {
	t.Helper()
	clk := newClock()
	cfg := Config{URL: f.srv.URL, HTTPClient: &http.Client{Transport: bearer{f.srv.Client().Transport}},
		Timeout: 5 * time.Second, Now: clk.Now}
	if mod != nil {
		mod(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c, clk
}
