package devdemo

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// fakeIdP is a minimal OpenID provider: discovery, JWKS, /authorize (which
// signs the user in at once), a token endpoint that checks PKCE S256 and the
// client secret, userinfo and end_session. Knobs let a test corrupt what it
// sends back.
type fakeIdP struct {
	t        testing.TB
	srv      *httptest.Server
	signer   jose.Signer
	jwks     jose.JSONWebKeySet
	clientID string
	secret   string

	mu          sync.Mutex
	redirectURI string
	down        bool                   // discovery answers 500
	mutateResp  func(q url.Values)     // applied to the authorization response
	mutateID    func(c map[string]any) // applied to ID token claims
	codes       map[string]grant
	refresh     map[string]bool
	access      map[string]bool
	issued      []string // every token handed out, for leak checks
	lastIDToken string
	lastLogout  url.Values
}

type grant struct {
	challenge, nonce, redirectURI string
}

const (
	testSub      = "user-1"
	testUsername = "alice"
	testEmail    = "alice@example.test"
)

func newFakeIdP(t testing.TB) *fakeIdP {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	jwk := jose.JSONWebKey{Key: key, KeyID: "test-1", Algorithm: string(jose.RS256), Use: "sig"}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jwk}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeIdP{
		t:        t,
		signer:   signer,
		jwks:     jose.JSONWebKeySet{Keys: []jose.JSONWebKey{jwk.Public()}},
		clientID: "demo",
		secret:   "demo-secret-0123456789",
		codes:    map[string]grant{},
		refresh:  map[string]bool{},
		access:   map[string]bool{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", f.discovery)
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, f.jwks) })
	mux.HandleFunc("GET /authorize", f.authorize)
	mux.HandleFunc("POST /token", f.token)
	mux.HandleFunc("GET /userinfo", f.userinfo)
	mux.HandleFunc("GET /end_session", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.lastLogout = r.URL.Query()
		f.mu.Unlock()
		_, _ = w.Write([]byte("signed out at the IdP"))
	})
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeIdP) issuer() string { return f.srv.URL }

func (f *fakeIdP) set(fn func(f *fakeIdP)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

func (f *fakeIdP) discovery(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	down := f.down
	f.mu.Unlock()
	if down {
		http.Error(w, "starting", http.StatusInternalServerError)
		return
	}
	iss := f.issuer()
	writeJSON(w, 200, map[string]any{
		"issuer":                                         iss,
		"authorization_endpoint":                         iss + "/authorize",
		"token_endpoint":                                 iss + "/token",
		"jwks_uri":                                       iss + "/jwks",
		"userinfo_endpoint":                              iss + "/userinfo",
		"end_session_endpoint":                           iss + "/end_session",
		"response_types_supported":                       []string{"code"},
		"id_token_signing_alg_values_supported":          []string{"RS256"},
		"code_challenge_methods_supported":               []string{"S256"},
		"authorization_response_iss_parameter_supported": true,
	})
}

func (f *fakeIdP) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f.mu.Lock()
	defer f.mu.Unlock()
	if q.Get("client_id") != f.clientID || q.Get("redirect_uri") != f.redirectURI ||
		q.Get("response_type") != "code" || q.Get("code_challenge_method") != "S256" ||
		q.Get("code_challenge") == "" || q.Get("nonce") == "" || q.Get("state") == "" {
		f.t.Errorf("fake IdP: bad authorization request %v", q)
		http.Error(w, "bad authorization request", http.StatusBadRequest)
		return
	}
	code := rand.Text()
	f.codes[code] = grant{challenge: q.Get("code_challenge"), nonce: q.Get("nonce"), redirectURI: q.Get("redirect_uri")}
	resp := url.Values{"code": {code}, "state": {q.Get("state")}, "iss": {f.issuer()}}
	if f.mutateResp != nil {
		f.mutateResp(resp)
	}
	http.Redirect(w, r, f.redirectURI+"?"+resp.Encode(), http.StatusFound)
}

func (f *fakeIdP) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		writeJSON(w, 400, map[string]string{"error": "invalid_request"})
		return
	}
	id, sec, ok := r.BasicAuth()
	if !ok {
		id, sec = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	if id != f.clientID || subtle.ConstantTimeCompare([]byte(sec), []byte(f.secret)) != 1 {
		writeJSON(w, 401, map[string]string{"error": "invalid_client"})
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var nonce string
	switch r.PostForm.Get("grant_type") {
	case "authorization_code":
		g, ok := f.codes[r.PostForm.Get("code")]
		delete(f.codes, r.PostForm.Get("code"))
		sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
		if !ok || g.redirectURI != r.PostForm.Get("redirect_uri") ||
			base64.RawURLEncoding.EncodeToString(sum[:]) != g.challenge {
			writeJSON(w, 400, map[string]string{"error": "invalid_grant"})
			return
		}
		nonce = g.nonce
	case "refresh_token":
		rt := r.PostForm.Get("refresh_token")
		if !f.refresh[rt] {
			writeJSON(w, 400, map[string]string{"error": "invalid_grant"})
			return
		}
		delete(f.refresh, rt) // rotation
	default:
		writeJSON(w, 400, map[string]string{"error": "unsupported_grant_type"})
		return
	}
	at, rt := "at-"+rand.Text(), "rt-"+rand.Text()
	f.access[at], f.refresh[rt] = true, true
	atSum := sha256.Sum256([]byte(at))
	now := time.Now()
	claims := map[string]any{
		"iss": f.issuer(), "sub": testSub, "aud": f.clientID,
		"iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
		"at_hash":            base64.RawURLEncoding.EncodeToString(atSum[:16]),
		"preferred_username": testUsername, "email": testEmail, "name": "Alice Example",
	}
	if nonce != "" {
		claims["nonce"] = nonce
	}
	if f.mutateID != nil {
		f.mutateID(claims)
	}
	idt, err := jwt.Signed(f.signer).Claims(claims).Serialize()
	if err != nil {
		f.t.Errorf("fake IdP: sign: %v", err)
		writeJSON(w, 500, map[string]string{"error": "server_error"})
		return
	}
	f.issued = append(f.issued, at, rt, idt)
	f.lastIDToken = idt
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, 200, map[string]any{
		"access_token": at, "token_type": "Bearer", "expires_in": 300,
		"refresh_token": rt, "id_token": idt, "scope": "openid profile email offline_access",
	})
}

func (f *fakeIdP) userinfo(w http.ResponseWriter, r *http.Request) {
	const p = "Bearer "
	h := r.Header.Get("Authorization")
	f.mu.Lock()
	ok := len(h) > len(p) && h[:len(p)] == p && f.access[h[len(p):]]
	f.mu.Unlock()
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	writeJSON(w, 200, map[string]any{"sub": testSub, "preferred_username": testUsername, "email": testEmail})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
