package idp

import (
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/zitadel/oidc/v3/pkg/oidc"
)

const atType = "urn:ietf:params:oauth:token-type:access_token"

func exchangeForm(kv ...string) url.Values {
	f := url.Values{"grant_type": {grantTokenExchange}, "subject_token": {"a.b.c"},
		"subject_token_type": {atType}, "audience": {"https://orders.internal"}}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "\x00" {
			f.Del(kv[i])
			continue
		}
		f.Set(kv[i], kv[i+1])
	}
	return f
}

func TestParseExchange(t *testing.T) {
	ok, err := parseExchange(exchangeForm("scope", "orders:read orders:read profile", "requested_token_type", atType))
	if err != nil || ok.audience != "https://orders.internal" || ok.subjectToken != "a.b.c" ||
		!slices.Equal(ok.scopes, []string{"orders:read", "profile"}) {
		t.Fatalf("parse: %+v %v", ok, err)
	}
	if r, err := parseExchange(exchangeForm("scope", "")); err != nil || r.scopes != nil {
		t.Fatalf("empty scope: %+v %v", r, err)
	}
	tests := []struct {
		name string
		form url.Values
		want string
	}{
		{"OA-exchange/missing-subject", exchangeForm("subject_token", "\x00"), "invalid_request"},
		{"OA-exchange/empty-subject", exchangeForm("subject_token", ""), "invalid_request"},
		{"OA-exchange/missing-subject-type", exchangeForm("subject_token_type", "\x00"), "invalid_request"},
		{"OA-exchange/id-token-type", exchangeForm("subject_token_type", "urn:ietf:params:oauth:token-type:id_token"), "invalid_request"},
		{"OA-exchange/refresh-token-type", exchangeForm("subject_token_type", "urn:ietf:params:oauth:token-type:refresh_token"), "invalid_request"},
		{"OA-exchange/jwt-type", exchangeForm("subject_token_type", "urn:ietf:params:oauth:token-type:jwt"), "invalid_request"},
		{"OA-exchange/type-case-variant", exchangeForm("subject_token_type", strings.ToUpper(atType)), "invalid_request"},
		{"OA-exchange/actor-token", exchangeForm("actor_token", "x.y.z", "actor_token_type", atType), "invalid_request"},
		{"OA-exchange/empty-actor-token", exchangeForm("actor_token", ""), "invalid_request"},
		{"OA-exchange/actor-token-type-only", exchangeForm("actor_token_type", atType), "invalid_request"},
		{"OA-exchange/requested-refresh", exchangeForm("requested_token_type", "urn:ietf:params:oauth:token-type:refresh_token"), "invalid_request"},
		{"OA-exchange/requested-id-token", exchangeForm("requested_token_type", "urn:ietf:params:oauth:token-type:id_token"), "invalid_request"},
		{"OA-exchange/requested-empty", exchangeForm("requested_token_type", ""), "invalid_request"},
		{"OA-exchange/resource", exchangeForm("resource", "https://orders.internal"), "invalid_target"},
		{"OA-exchange/empty-resource", exchangeForm("resource", ""), "invalid_target"},
		{"OA-exchange/missing-audience", exchangeForm("audience", "\x00"), "invalid_request"},
		{"OA-exchange/two-audiences", exchangeForm("audience", "https://a.internal https://b.internal"), "invalid_target"},
		{"OA-exchange/audience-padded", exchangeForm("audience", " https://a.internal"), "invalid_target"},
		{"OA-exchange/audience-tab", exchangeForm("audience", "https://a.internal\t"), "invalid_target"},
		{"OA-exchange/audience-huge", exchangeForm("audience", strings.Repeat("a", maxAudienceLen+1)), "invalid_target"},
		{"OA-exchange/repeated-audience", url.Values{"subject_token": {"a.b.c"}, "subject_token_type": {atType},
			"audience": {"https://a.internal", "https://b.internal"}}, "invalid_request"},
		{"OA-exchange/huge-subject", exchangeForm("subject_token", strings.Repeat("a", maxSubjectLen+1)), "invalid_request"},
		{"OA-exchange/scope-double-space", exchangeForm("scope", "a  b"), "invalid_scope"},
		{"OA-exchange/scope-quote", exchangeForm("scope", `a"b`), "invalid_scope"},
		{"OA-exchange/scope-control", exchangeForm("scope", "a\x01"), "invalid_scope"},
		{"OA-exchange/scope-too-many", exchangeForm("scope", strings.Repeat("s ", maxExchangeScopes)+"s"), "invalid_scope"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseExchange(tc.form)
			if err == nil || string(err.ErrorType) != tc.want {
				t.Fatalf("error = %v, want %s", err, tc.want)
			}
			for _, v := range tc.form {
				if len(v[0]) >= 8 && strings.Contains(err.Description, v[0]) && v[0] != atType {
					t.Errorf("error description echoes input: %q", err.Description)
				}
			}
		})
	}
}

func TestExchangeScopes(t *testing.T) {
	subject := []string{"openid", "offline_access", "profile", "orders:read", "orders:write"}
	client := []string{"openid", "orders:read", "orders:write", "billing:read"}
	tests := []struct {
		name      string
		requested []string
		allowed   []string
		want      []string
		err       bool
	}{
		{"default-is-intersection", nil, client, []string{"orders:read", "orders:write"}, false},
		{"narrowed", []string{"orders:read"}, client, []string{"orders:read"}, false},
		{"OA-exchange/widen-beyond-subject", []string{"billing:read"}, client, nil, true},
		{"OA-exchange/beyond-client", []string{"profile"}, client, nil, true},
		{"OA-exchange/openid", []string{"openid"}, client, nil, true},
		{"OA-exchange/offline-access", []string{"orders:read", "offline_access"}, append(client, "offline_access"), nil, true},
		{"OA-exchange/empty-intersection", nil, []string{"billing:read"}, nil, true},
		{"OA-exchange/client-without-scopes", nil, nil, nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := exchangeScopes(tc.requested, subject, tc.allowed)
			if tc.err {
				if err == nil || err.ErrorType != oidc.InvalidScope {
					t.Fatalf("got %v, %v; want invalid_scope", got, err)
				}
				return
			}
			if err != nil || !slices.Equal(got, tc.want) {
				t.Fatalf("got %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}

func TestActorDepth(t *testing.T) {
	var a *actor
	if a.depth() != 0 {
		t.Fatal("nil chain")
	}
	a = &actor{Subject: "gw", Actor: &actor{Subject: "svc"}}
	if a.depth() != 2 {
		t.Fatalf("depth = %d", a.depth())
	}
}

// FuzzParseExchange: any form either parses into a request that satisfies
// the grant's invariants, or fails with a fixed description.
func FuzzParseExchange(f *testing.F) {
	f.Add("a.b.c", atType, "https://orders.internal", "orders:read", "", "")
	f.Add("x", "urn:ietf:params:oauth:token-type:id_token", "a b", "a  b", "r", "y")
	f.Add("", atType, "", "\x00", "", "")
	f.Fuzz(func(t *testing.T, subject, typ, aud, scope, resource, actor string) {
		form := url.Values{"subject_token": {subject}, "subject_token_type": {typ}, "audience": {aud}, "scope": {scope}}
		if resource != "" {
			form.Set("resource", resource)
		}
		if actor != "" {
			form.Set("actor_token", actor)
		}
		req, err := parseExchange(form)
		if err != nil {
			if subject != "" && len(subject) >= 8 && strings.Contains(err.Description, subject) {
				t.Fatal("description echoes the subject token")
			}
			return
		}
		if resource != "" || actor != "" || typ != atType || req.subjectToken != subject || subject == "" {
			t.Fatalf("accepted %+v", form)
		}
		if req.audience != aud || len(strings.Fields(aud)) != 1 || strings.TrimSpace(aud) != aud {
			t.Fatalf("audience %q accepted", aud)
		}
		for _, s := range req.scopes {
			if !validScope(s) || !slices.Contains(strings.Split(scope, " "), s) {
				t.Fatalf("scope %q accepted from %q", s, scope)
			}
		}
	})
}
