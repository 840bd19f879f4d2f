package edge

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
)

func TestScrubIdentityHeaders(t *testing.T) {
	tests := []struct {
		name     string
		in       http.Header
		strict   bool
		extra    []string
		wantGone []string
		wantKept []string
	}{
		{"GW-01/canonical", http.Header{"X-Auth-Subject": {"admin"}}, false, nil, []string{"X-Auth-Subject"}, nil},
		{"GW-01/underscore", http.Header{"X_auth_subject": {"admin"}}, false, nil, []string{"X_auth_subject"}, nil},
		{"GW-01/underscore-mixed", http.Header{"X_Auth-Subject": {"admin"}}, false, nil, []string{"X_Auth-Subject"}, nil},
		{"GW-01/upper-case-noncanonical", http.Header{"X-AUTH-SUBJECT": {"a"}, "x-auth-subject": {"b"}}, false, nil,
			[]string{"X-AUTH-SUBJECT", "x-auth-subject"}, nil},
		{"GW-01/duplicates", http.Header{"X-User-Id": {"1", "2", "3"}}, false, nil, []string{"X-User-Id"}, nil},
		{"GW-01/x-auth-prefix-any", http.Header{"X-Auth-Request-Email": {"e"}, "X-Auth-Roles": {"admin"}}, false, nil,
			[]string{"X-Auth-Request-Email", "X-Auth-Roles"}, nil},
		{"GW-01/x-forwarded-user", http.Header{"X-Forwarded-User": {"root"}, "X-Forwarded-Email": {"e"}, "X-Forwarded-Groups": {"g"}},
			false, nil, []string{"X-Forwarded-User", "X-Forwarded-Email", "X-Forwarded-Groups"}, nil},
		{"GW-01/client-cert", http.Header{"Client-Cert": {":x:"}, "X-Client-Cert": {"c"}, "X-Ssl-Client-Cert": {"c"}, "Client_cert": {"c"}},
			false, nil, []string{"Client-Cert", "X-Client-Cert", "X-Ssl-Client-Cert", "Client_cert"}, nil},
		{"GW-01/xfcc", http.Header{"X-Forwarded-Client-Cert": {"By=x"}}, false, nil, []string{"X-Forwarded-Client-Cert"}, nil},
		{"GW-01/remote-user", http.Header{"Remote-User": {"a"}, "X-Remote-User": {"a"}, "X-User": {"a"}}, false, nil,
			[]string{"Remote-User", "X-Remote-User", "X-User"}, nil},
		{"GW-01/extra-names", http.Header{"X-Tenant": {"t"}, "X_Scope_Roles": {"r"}, "X-Request-Id": {"id"}}, false,
			[]string{"x-tenant", "X-Scope-*"}, []string{"X-Tenant", "X_Scope_Roles"}, []string{"X-Request-Id"}},
		{"GW-01/non-identity-kept", http.Header{"X-Request-Id": {"id"}, "Authorization": {"Bearer x"}, "X-Auth": {"a"}, "X-Authx": {"a"}, "X-User-Agent-Hint": {"a"}},
			false, nil, nil, []string{"X-Request-Id", "Authorization", "X-Auth", "X-Authx", "X-User-Agent-Hint"}},
		{"GW-01/strict-underscore", http.Header{"Some_header": {"v"}, "X-Request-Id": {"id"}}, true, nil,
			[]string{"Some_header"}, []string{"X-Request-Id"}},
		{"GW-01/lenient-underscore-kept", http.Header{"Some_header": {"v"}}, false, nil, nil, []string{"Some_header"}},
		{"GW-01/bare-star-extra-ignored", http.Header{"X-Request-Id": {"id"}}, false, []string{"*", ""}, nil, []string{"X-Request-Id"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ScrubIdentityHeaders(tc.in, tc.strict, tc.extra...)
			for _, k := range tc.wantGone {
				if _, ok := tc.in[k]; ok {
					t.Errorf("%q still present", k)
				}
			}
			for _, k := range tc.wantKept {
				if _, ok := tc.in[k]; !ok {
					t.Errorf("%q was removed", k)
				}
			}
		})
	}
}

func TestIdentityHeadersListIsNotMutable(t *testing.T) {
	saved := IdentityHeaders
	IdentityHeaders = nil
	defer func() { IdentityHeaders = saved }()
	h := http.Header{"X-Auth-Subject": {"admin"}}
	ScrubIdentityHeaders(h, false)
	if len(h) != 0 {
		t.Fatal("GW-01: scrubbing depends on the mutable exported slice")
	}
}

func TestRemoveHopByHop(t *testing.T) {
	many := make([]string, 1000)
	manyHeader := http.Header{}
	for i := range many {
		many[i] = fmt.Sprintf("X-H%d", i)
		manyHeader.Set(many[i], "v")
	}
	manyHeader.Set("Connection", strings.Join(many, ", "))
	manyHeader.Set("X-Auth-Subject", "alice")

	tests := []struct {
		name      string
		in        http.Header
		protected []string
		wantGone  []string
		wantKept  []string
		wantNamed []string
	}{
		{"GW-05/connection-names-protected", http.Header{"Connection": {"X-Auth-Subject"}, "X-Auth-Subject": {"alice"}},
			IdentityHeaders, []string{"Connection"}, []string{"X-Auth-Subject"}, []string{"X-Auth-Subject"}},
		{"GW-05/connection-names-protected-underscore", http.Header{"Connection": {"x_auth_subject, X-USER-ID"}, "X-Auth-Subject": {"a"}, "X-User-Id": {"1"}},
			IdentityHeaders, nil, []string{"X-Auth-Subject", "X-User-Id"}, []string{"x_auth_subject", "X-USER-ID"}},
		{"GW-05/close", http.Header{"Connection": {"close"}, "X-Request-Id": {"1"}}, nil,
			[]string{"Connection"}, []string{"X-Request-Id"}, []string{"close"}},
		{"GW-05/keep-alive", http.Header{"Connection": {"keep-alive"}, "Keep-Alive": {"timeout=5"}}, nil,
			[]string{"Connection", "Keep-Alive"}, nil, []string{"keep-alive"}},
		{"GW-05/names-non-protected", http.Header{"Connection": {"X-Debug", "x-other"}, "X-Debug": {"1"}, "X-Other": {"1"}, "X-Auth-Subject": {"a"}},
			IdentityHeaders, []string{"X-Debug", "X-Other"}, []string{"X-Auth-Subject"}, []string{"X-Debug", "x-other"}},
		{"GW-05/fixed-hop-headers", http.Header{"Te": {"trailers"}, "Trailer": {"X"}, "Transfer-Encoding": {"chunked"}, "Upgrade": {"h2c"},
			"Proxy-Authorization": {"Basic x"}, "Proxy-Authenticate": {"x"}, "Proxy-Connection": {"keep-alive"}, "keep-alive": {"x"}},
			nil, []string{"Te", "Trailer", "Transfer-Encoding", "Upgrade", "Proxy-Authorization", "Proxy-Authenticate", "Proxy-Connection", "keep-alive"}, nil, nil},
		{"GW-05/invalid-names-ignored", http.Header{"Connection": {" , ,bad name, \x00x,ok"}, "Ok": {"1"}}, nil,
			[]string{"Ok"}, nil, []string{"ok"}},
		{"GW-05/protected-prefix-pattern", http.Header{"Connection": {"X-Auth-Email"}, "X-Auth-Email": {"e"}},
			[]string{"X-Auth-*"}, nil, []string{"X-Auth-Email"}, []string{"X-Auth-Email"}},
		{"GW-05/1000-names-bounded", manyHeader, IdentityHeaders, many, []string{"X-Auth-Subject"}, many[:32]},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			named := RemoveHopByHop(tc.in, tc.protected...)
			for _, k := range tc.wantGone {
				if _, ok := tc.in[http.CanonicalHeaderKey(k)]; ok {
					t.Errorf("%q still present", k)
				}
				if _, ok := tc.in[k]; ok {
					t.Errorf("%q still present", k)
				}
			}
			for _, k := range tc.wantKept {
				if tc.in.Get(k) == "" {
					t.Errorf("%q was removed", k)
				}
			}
			if !slices.Equal(named, tc.wantNamed) {
				t.Errorf("named = %q, want %q", named, tc.wantNamed)
			}
		})
	}
}

func TestRemoveHopByHopTruncatesReportedNames(t *testing.T) {
	long := strings.Repeat("x", 10_000)
	named := RemoveHopByHop(http.Header{"Connection": {long}})
	if len(named) != 1 || len(named[0]) != maxReportedNameLen {
		t.Fatalf("GW-05: reported name not truncated: %d entries", len(named))
	}
}

// TestEveryIdentityHeaderVariant checks each listed name, in underscore and
// case variants, is scrubbed and protected from Connection-based deletion.
func TestEveryIdentityHeaderVariant(t *testing.T) {
	for _, name := range IdentityHeaders {
		name = strings.TrimSuffix(name, "*") + map[bool]string{true: "Subject", false: ""}[strings.HasSuffix(name, "*")]
		if len(name) >= maxFoldedLookup {
			t.Fatalf("%q is too long for the stack lookup", name)
		}
		variants := []string{name, strings.ToUpper(name), strings.ToLower(name), strings.ReplaceAll(name, "-", "_")}
		for _, v := range variants {
			t.Run("GW-01/"+v, func(t *testing.T) {
				h := http.Header{v: {"evil", "evil2"}, "X-Request-Id": {"1"}}
				ScrubIdentityHeaders(h, false)
				if _, ok := h[v]; ok || len(h) != 1 {
					t.Fatalf("%q not scrubbed: %v", v, h)
				}
			})
			t.Run("GW-05/"+v, func(t *testing.T) {
				h := http.Header{"Connection": {v}, "X-Request-Id": {"1"}}
				h.Set(name, "gateway-set")
				RemoveHopByHop(h, IdentityHeaders...)
				if h.Get(name) != "gateway-set" {
					t.Fatalf("Connection: %s deleted the protected %s header", v, name)
				}
			})
		}
	}
}
