package authz

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestFailClosed: every way the service can fail to give a well-formed
// answer is a deny carrying the error (AZ-01: an error never allows).
func TestFailClosed(t *testing.T) {
	body := func(status int, s string) func(w http.ResponseWriter, r *http.Request) bool {
		return func(w http.ResponseWriter, _ *http.Request) bool {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			_, _ = w.Write([]byte(s))
			return true
		}
	}
	const allowTrue = `{"allow":true,"reason":"ok"}`
	tests := []struct {
		name    string
		handler func(w http.ResponseWriter, r *http.Request) bool
		want    error
	}{
		{"AZ-01/timeout", nil, ErrUnavailable}, // the handler hangs until the test ends
		{"AZ-01/status 500", body(500, allowTrue), ErrUnavailable},
		{"AZ-01/status 403 with allow", body(403, allowTrue), ErrUnavailable},
		{"AZ-01/status 400 service deny", body(400, `{"allow":false,"reason":"malformed"}`), ErrRefused},
		{"AZ-01/status 422 budget", body(422, `{"error":"budget_exceeded","error_description":"rebac: budget exceeded"}`), ErrRefused},
		{"AZ-01/status 204", body(204, ""), ErrUnavailable},
		{"AZ-01/garbage", body(200, "<html>allow</html>"), ErrBadAnswer},
		{"AZ-01/empty body", body(200, ""), ErrBadAnswer},
		{"AZ-01/allow string", body(200, `{"allow":"true"}`), ErrBadAnswer},
		{"AZ-01/allow number", body(200, `{"allow":1}`), ErrBadAnswer},
		{"AZ-01/allow null", body(200, `{"allow":null}`), ErrBadAnswer},
		{"AZ-01/missing allow", body(200, `{"reason":"permitted"}`), ErrBadAnswer},
		{"AZ-01/duplicate allow", body(200, `{"allow":false,"allow":true}`), ErrBadAnswer},
		{"AZ-01/case variant allow", body(200, `{"allow":false,"Allow":true}`), ErrBadAnswer},
		{"AZ-01/only Allow", body(200, `{"Allow":true}`), ErrBadAnswer},
		{"AZ-01/unknown member", body(200, `{"allow":true,"admin":true}`), ErrBadAnswer},
		{"AZ-01/duplicate nested", body(200, `{"allow":true,"relations":[{"check":"a","allowed":true,"allowed":false}]}`), ErrBadAnswer},
		{"AZ-01/unknown nested", body(200, `{"allow":true,"relations":[{"check":"a","allowed":true,"x":1}]}`), ErrBadAnswer},
		{"AZ-01/reason not string", body(200, `{"allow":true,"reason":{}}`), ErrBadAnswer},
		{"AZ-01/policies not strings", body(200, `{"allow":true,"policies":[1]}`), ErrBadAnswer},
		{"AZ-01/trailing data", body(200, allowTrue+`{"allow":true}`), ErrBadAnswer},
		{"AZ-01/array", body(200, `[{"allow":true}]`), ErrBadAnswer},
		{"AZ-01/invalid utf-8", body(200, "{\"allow\":true,\"reason\":\"\xff\"}"), ErrBadAnswer},
		{"AZ-01/huge body", body(200, `{"allow":true,"reason":"`+strings.Repeat("a", 1<<20)+`"}`), ErrBadAnswer},
		{"AZ-01/redirect not followed", func(w http.ResponseWriter, r *http.Request) bool {
			if r.URL.Path == "/authorize" {
				http.Redirect(w, r, "/elsewhere", http.StatusTemporaryRedirect)
				return true
			}
			return body(200, allowTrue)(w, r)
		}, ErrUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeService(t)
			// A short timeout only where the handler hangs: a 1 MiB answer
			// under -race on a loaded machine can take longer than that.
			timeout := 5 * time.Second
			if tt.handler == nil {
				timeout = 100 * time.Millisecond
			}
			c, _ := newTestClient(t, f, func(c *Config) { c.Timeout = timeout })
			h := tt.handler
			if h == nil {
				stop := make(chan struct{})
				t.Cleanup(func() { close(stop) }) // runs before the server closes
				h = func(w http.ResponseWriter, r *http.Request) bool {
					select { // answers allow only after the client gave up
					case <-r.Context().Done():
					case <-stop:
					}
					return body(200, allowTrue)(w, r)
				}
			}
			f.setOverride(h)
			// The admin token would be allowed by a working service.
			d := c.Authorize(t.Context(), Request{Principal: Principal{Token: "tok-admin"}, Action: "read",
				Resource: Resource{Type: "order", ID: "o-1"}})
			if d.Allow || d.Err == nil || d.Reason != UnavailableReason {
				t.Fatalf("got %+v, want a fail-closed deny", d)
			}
			if !errors.Is(d.Err, tt.want) {
				t.Errorf("error %v, want %v", d.Err, tt.want)
			}
			if f.count("/elsewhere") != 0 {
				t.Error("redirect followed")
			}
			// The same failure in a batch denies every check.
			ds := c.AuthorizeBatch(t.Context(), Principal{Token: "tok-admin"}, []Check{
				{Action: "read", Resource: Resource{Type: "order", ID: "o-1"}},
				{Action: "read", Resource: Resource{Type: "order", ID: "o-2"}}})
			for i, d := range ds {
				if d.Allow || d.Err == nil {
					t.Errorf("batch check %d: %+v, want a fail-closed deny", i, d)
				}
			}
		})
	}
}

func TestFailClosedTransport(t *testing.T) {
	f := newFakeService(t)
	c, _ := newTestClient(t, f, nil)
	f.srv.Close() // nothing listens any more
	d := c.Authorize(t.Context(), readReq(Principal{Token: "tok-admin"}))
	if d.Allow || !errors.Is(d.Err, ErrUnavailable) {
		t.Fatalf("got %+v, want a deny with ErrUnavailable", d)
	}
	if strings.Contains(d.Err.Error(), "tok-admin") {
		t.Error("the error names the principal's token")
	}
}

// TestCanceledCallerDenies: a caller whose context ends gets a deny at once.
func TestCanceledCallerDenies(t *testing.T) {
	f := newFakeService(t)
	c, _ := newTestClient(t, f, nil)
	release := make(chan struct{})
	defer close(release)
	f.setOverride(func(w http.ResponseWriter, r *http.Request) bool {
		select {
		case <-release:
		case <-r.Context().Done():
		}
		return false
	})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if d := c.Authorize(ctx, readReq(Principal{ID: "usr_alice"})); d.Allow || d.Err == nil {
		t.Fatalf("got %+v", d)
	}
}

func TestDecodeDecisionExamples(t *testing.T) {
	doc := []byte(`{"allow": true, "reason": "permitted by owner-or-team-manager-reads", "decision_id": "dec_x",
 "policy_version": "3f2a9c0d5e6b7a81", "revision": "57",
 "policies": ["owner-or-team-manager-reads"],
 "relations": [{"check": "order:o-2001#view@user:usr_alice", "allowed": true,
                "path": ["order:o-2001#team@team:eng", "team:eng#manager@user:usr_alice"]}],
 "errors": ["policy p2: attribute missing", {"policy": "p3"}]}`)
	d, err := decodeDecision(doc)
	if err != nil {
		t.Fatal(err)
	}
	if !d.Allow || d.Revision != "57" || len(d.Relations) != 1 || len(d.Relations[0].Path) != 2 ||
		len(d.Errors) != 2 || d.Errors[1] != `{"policy":"p3"}` {
		t.Errorf("documented decision decoded as %+v", d)
	}
	if d, err := decodeDecision([]byte(`{"allow":false,"reason":null,"policies":null,"relations":null}`)); err != nil || d.Allow {
		t.Errorf("nulls: %+v %v", d, err)
	}
}

// stuckTransport blocks without looking at the request's context, like a
// transport waiting for its own credentials.
type stuckTransport struct{ release chan struct{} }

func (s stuckTransport) RoundTrip(*http.Request) (*http.Response, error) {
	<-s.release
	return nil, errors.New("released")
}

// TestTimeoutHoldsWithStuckTransport: Config.Timeout bounds the decision
// even when the transport ignores cancellation (AZ-01/slow credentials).
func TestTimeoutHoldsWithStuckTransport(t *testing.T) {
	st := stuckTransport{release: make(chan struct{})}
	defer close(st.release)
	c, err := New(Config{URL: "https://authz.example.com", HTTPClient: &http.Client{Transport: st}, Timeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	d := c.Authorize(t.Context(), readReq(Principal{ID: "usr_alice"}))
	if d.Allow || !errors.Is(d.Err, ErrUnavailable) || !errors.Is(d.Err, context.DeadlineExceeded) {
		t.Fatalf("got %+v", d)
	}
	if el := time.Since(start); el > 3*time.Second {
		t.Errorf("took %v with a 50ms timeout", el)
	}
}

// TestRefusalCarriesTheDescription: a write the service refuses (400) is
// ErrRefused with the service's description, not an outage to retry.
func TestRefusalCarriesTheDescription(t *testing.T) {
	for _, tc := range []struct{ body, want string }{
		{`{"error":"invalid_request","error_description":"writes[1]: unknown relation \"ownr\"\u001b[31m"}`, `writes[1]: unknown relation "ownr"[31m`},
		{`not json`, ""},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(tc.body))
		}))
		c, err := New(Config{URL: srv.URL, HTTPClient: srv.Client()})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.WriteRelationships(t.Context(), []RelationshipWrite{{Op: "touch", Tuple: "order:o-1#ownr@user:u"}})
		srv.Close()
		if !errors.Is(err, ErrRefused) || errors.Is(err, ErrUnavailable) || !strings.HasSuffix(err.Error(), "status 400: "+tc.want) {
			t.Errorf("%s: %v", tc.body, err)
		}
	}
}
