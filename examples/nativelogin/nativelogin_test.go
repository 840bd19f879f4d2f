package nativelogin_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/examples/nativelogin"
)

// fakeIdP is a minimal authorization server: discovery, and a token
// endpoint that checks the code and the PKCE verifier.
type fakeIdP struct {
	srv          *httptest.Server
	issuer       string // what discovery claims
	mu           sync.Mutex
	challenge    string
	tokenQueries int
}

func newFakeIdP(t *testing.T) *fakeIdP {
	f := &fakeIdP{}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{"issuer": f.issuer, "authorization_endpoint": f.srv.URL + "/authorize",
			"token_endpoint": f.srv.URL + "/token", "authorization_response_iss_parameter_supported": true})
	})
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		f.mu.Lock()
		defer f.mu.Unlock()
		f.tokenQueries++
		sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
		if r.PostForm.Get("code") != "the-code" || r.PostForm.Get("client_id") != "demo-cli" ||
			base64.RawURLEncoding.EncodeToString(sum[:]) != f.challenge || r.PostForm.Get("grant_type") != "authorization_code" {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"error":"invalid_grant"}`))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"access_token":"at-123","token_type":"Bearer","expires_in":60}`))
	})
	f.srv = httptest.NewServer(mux)
	f.issuer = f.srv.URL
	t.Cleanup(f.srv.Close)
	return f
}

// browser returns an OpenURL that checks the authorization request and
// answers the callback with extra (merged into code, state and iss).
func (f *fakeIdP) browser(t *testing.T, answer func(q url.Values) url.Values) func(string) error {
	return func(authURL string) error {
		u, err := url.Parse(authURL)
		if err != nil {
			return err
		}
		q := u.Query()
		if q.Get("code_challenge_method") != "S256" || q.Get("prompt") != "login" || q.Get("client_id") != "demo-cli" ||
			!slices.Equal(q["resource"], []string{"https://api.orders.example", "https://api.payments.example"}) ||
			q.Get("scope") != "openid orders:read" || q.Get("state") == "" {
			t.Errorf("authorization request: %v", q)
		}
		redirect, err := url.Parse(q.Get("redirect_uri"))
		if err != nil || redirect.Scheme != "http" || redirect.Hostname() != "127.0.0.1" || redirect.Path != "/callback" || redirect.Port() == "" {
			t.Errorf("redirect_uri %q", q.Get("redirect_uri"))
		}
		f.mu.Lock()
		f.challenge = q.Get("code_challenge")
		f.mu.Unlock()
		cb := url.Values{"code": {"the-code"}, "state": {q.Get("state")}, "iss": {f.srv.URL}}
		for k, v := range answer(q) {
			if v == nil {
				cb.Del(k)
			} else {
				cb[k] = v
			}
		}
		redirect.RawQuery = cb.Encode()
		resp, err := http.Get(redirect.String())
		if err != nil {
			return err
		}
		return resp.Body.Close()
	}
}

func (f *fakeIdP) config(open func(string) error) nativelogin.Config {
	return nativelogin.Config{Issuer: f.srv.URL, ClientID: "demo-cli", Scopes: []string{"openid", "orders:read"},
		Resources: []string{"https://api.orders.example", "https://api.payments.example"}, ForceLogin: true,
		OpenURL: open, Timeout: 20 * time.Second}
}

func TestLogin(t *testing.T) {
	keep := func(url.Values) url.Values { return nil }
	for _, tc := range []struct {
		name    string
		answer  func(url.Values) url.Values
		wantErr error
	}{
		{"ok", keep, nil},
		{"OA-M/wrong-iss", func(url.Values) url.Values { return url.Values{"iss": {"https://evil.example"}} }, nativelogin.ErrIssuerMismatch},
		{"OA-M/missing-iss", func(url.Values) url.Values { return url.Values{"iss": nil} }, nativelogin.ErrIssuerMismatch},
		{"OA-M/two-iss", func(q url.Values) url.Values { return url.Values{"iss": {"x", "y"}} }, nativelogin.ErrIssuerMismatch},
		{"OA-M/error-response-checked", func(url.Values) url.Values {
			return url.Values{"code": nil, "error": {"access_denied"}}
		}, nativelogin.ErrDenied},
		{"OA-M/no-code", func(url.Values) url.Values { return url.Values{"code": nil} }, nativelogin.ErrDenied},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeIdP(t)
			tok, err := nativelogin.Login(context.Background(), f.config(f.browser(t, tc.answer)))
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err %v, want %v", err, tc.wantErr)
				}
				if f.tokenQueries != 0 {
					t.Error("the code was redeemed after a bad callback")
				}
				return
			}
			if err != nil || tok.AccessToken != "at-123" {
				t.Fatalf("%v %v", tok, err)
			}
		})
	}
}

// A request to the callback with the wrong state (a stray tab, or a forged
// link) is refused and does not end the login; the real one still works.
func TestLoginIgnoresForgedState(t *testing.T) { // CS-01 (login CSRF) on the client side
	f := newFakeIdP(t)
	real := f.browser(t, func(url.Values) url.Values { return nil })
	open := func(authURL string) error {
		u, _ := url.Parse(authURL)
		redirect := u.Query().Get("redirect_uri")
		resp, err := http.Get(redirect + "?" + url.Values{"code": {"attacker-code"}, "state": {"guess"}, "iss": {f.srv.URL}}.Encode())
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("forged callback answered %d", resp.StatusCode)
		}
		return real(authURL)
	}
	tok, err := nativelogin.Login(context.Background(), f.config(open))
	if err != nil || tok.AccessToken != "at-123" {
		t.Fatalf("%v %v", tok, err)
	}
}

func TestLoginDiscoveryIssuerMismatch(t *testing.T) {
	f := newFakeIdP(t)
	f.issuer = "https://other.example"
	opened := false
	_, err := nativelogin.Login(context.Background(), f.config(func(string) error { opened = true; return nil }))
	if !errors.Is(err, nativelogin.ErrIssuerMismatch) || opened {
		t.Fatalf("%v (opened %v)", err, opened)
	}
}

func TestLoginGivesUp(t *testing.T) {
	f := newFakeIdP(t)
	cfg := f.config(func(string) error { return nil }) // the user never signs in
	cfg.Timeout = 300 * time.Millisecond
	if _, err := nativelogin.Login(context.Background(), cfg); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("%v", err)
	}
	if _, err := nativelogin.Login(context.Background(), nativelogin.Config{Issuer: f.srv.URL}); err == nil ||
		!strings.Contains(err.Error(), "required") {
		t.Fatalf("incomplete config: %v", err)
	}
}
