package e2e

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/storage"
)

// TestLogout: RP-initiated logout through the confirmation page ends the
// server-side session, revokes the session's grants, and prompt=none then
// answers login_required (OA-L, SE-03).
func TestLogout(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *Env) {
		b := e.browser()
		v, ch := pkce()
		loc := e.authorize(t, b, authParams("firstparty", webRedirect, ch), "alice", alicePassword)
		st, tok, _ := e.postForm(t, "/oauth/token", url.Values{"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")},
			"redirect_uri": {webRedirect}, "code_verifier": {v}}, "firstparty", e.Secrets["firstparty"])
		if st != 200 {
			t.Fatalf("exchange %d %v", st, tok)
		}
		e.remember(str(tok["access_token"]), str(tok["refresh_token"]), str(tok["id_token"]))
		// Signed in: prompt=none succeeds.
		_, ch2 := pkce()
		loc = e.authorize(t, b, authParams("firstparty", webRedirect, ch2, "prompt", "none"), "", "")
		if loc.Query().Get("code") == "" {
			t.Fatalf("prompt=none while signed in: %v", loc.Query())
		}
		iss, _ := url.Parse(e.Issuer)
		var oldCookie *http.Cookie
		for _, c := range b.Jar.Cookies(iss) {
			if strings.Contains(c.Name, "session") {
				oldCookie = c
			}
		}
		if oldCookie == nil {
			t.Fatal("no session cookie")
		}
		// GET end_session shows a confirmation and changes nothing (CS-01).
		q := url.Values{"id_token_hint": {str(tok["id_token"])}, "post_logout_redirect_uri": {"https://client.example.com/bye"}, "state": {"s1"}}
		resp, err := b.Get(e.Issuer + "/end_session?" + q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		page := readBody(t, resp)
		if resp.StatusCode != 200 || !strings.Contains(page, `id="logout"`) {
			t.Fatalf("confirmation page: %d %.300s", resp.StatusCode, page)
		}
		if e.introspect(t, str(tok["access_token"]))["active"] != true {
			t.Fatal("GET end_session changed state")
		}
		form := url.Values{"decision": {"logout"}}
		for _, k := range []string{"csrf", "client_id", "post_logout_redirect_uri", "state"} {
			form.Set(k, hidden(page, k))
		}
		resp, err = noRedirect(b).PostForm(e.Issuer+"/logout", form)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "https://client.example.com/bye?state=s1" {
			t.Fatalf("logout redirect: %d %q", resp.StatusCode, resp.Header.Get("Location"))
		}
		// OA-L: prompt=none now yields login_required.
		_, ch3 := pkce()
		loc = e.authorize(t, b, authParams("firstparty", webRedirect, ch3, "prompt", "none"), "", "")
		if loc.Query().Get("error") != "login_required" || loc.Query().Get("iss") != e.Issuer {
			t.Fatalf("OA-L: prompt=none after logout: %v", loc.Query())
		}
		// SE-03: replaying the old cookie does not restore the session.
		replay := e.browser()
		replay.Jar.SetCookies(iss, []*http.Cookie{{Name: oldCookie.Name, Value: oldCookie.Value, Path: "/"}})
		_, ch4 := pkce()
		loc = e.authorize(t, replay, authParams("firstparty", webRedirect, ch4, "prompt", "none"), "", "")
		if loc.Query().Get("error") != "login_required" {
			t.Fatal("SE-03: replayed session cookie still valid after logout")
		}
		// OA-T: the session's grants were revoked.
		st, _, _ = e.postForm(t, "/oauth/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {str(tok["refresh_token"])}}, "firstparty", e.Secrets["firstparty"])
		if st != 400 {
			t.Fatal("OA-T: refresh token survived logout")
		}
		if e.introspect(t, str(tok["access_token"]))["active"] != false {
			t.Fatal("access token of the session still active after logout")
		}
	})
}

// TestDisableUser: disabling a user ends their sessions and refresh tokens
// (SE-03, OA-T).
func TestDisableUser(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *Env) {
		tok := e.codeFlow(t, "web")
		err := e.Store.UpdateUser(context.Background(), "usr_alice", func(u storage.User) (storage.User, error) {
			u.Disabled = true
			return u, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		st, _, _ := e.postForm(t, "/oauth/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {str(tok["refresh_token"])}}, "web", e.Secrets["web"])
		if st != 400 {
			t.Fatal("refresh token of a disabled user still works")
		}
		// Another replica learns of it through the revocation feed within the poll interval.
		deadline := time.Now().Add(5 * time.Second)
		for e.introspect(t, str(tok["access_token"]))["active"] != false {
			if time.Now().After(deadline) {
				t.Fatal("access token of a disabled user still active after the revocation poll bound")
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
}
