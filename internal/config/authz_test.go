package config

import (
	"slices"
	"testing"
	"time"
)

// validAuthzSection is a full authz section that validates without errors or
// warnings.
func validAuthzSection() AuthzConfig {
	a := Default().Authz
	a.Listen = "127.0.0.1:8002"
	a.PrincipalAudiences = []string{"orders", "payments"}
	a.Policies.Dir, a.Policies.ShadowDir = "/etc/gatehouse/policies", "/etc/gatehouse/candidate"
	a.Relations.SchemaFile = "/etc/gatehouse/relations.zed"
	a.DecisionLog.Path, a.DecisionLog.Sample = "/var/log/gatehouse/decisions.jsonl", 0.25
	a.Fetch = []AuthzFetch{{Type: "order", URL: "https://orders.internal/attrs/{id}", TTL: Duration(30 * time.Second),
		Timeout: Duration(time.Second), OnError: "ignore"}, {Type: "invoice", URL: "http://127.0.0.1:9000/{id}"}}
	return a
}

func TestAuthzValid(t *testing.T) {
	a := validAuthzSection()
	var r report
	a.validate(&r)
	warns, err := r.result()
	if err != nil || len(warns) != 0 {
		t.Fatalf("valid section: warnings %v, error %v", warns, err)
	}
	off := Default().Authz // disabled: nothing is checked
	r = report{}
	off.validate(&r)
	if _, err := r.result(); err != nil {
		t.Fatalf("disabled section: %v", err)
	}
}

// TestAuthzInvalid: every bad value is reported under its exact key, and all
// of them at once.
func TestAuthzInvalid(t *testing.T) {
	cases := []struct {
		name string
		edit func(a *AuthzConfig)
		keys []string
	}{
		{"listen", func(a *AuthzConfig) { a.Listen = "nope" }, []string{"authz.listen"}},
		{"tls-half", func(a *AuthzConfig) { a.TLS.CertFile = "c.pem" }, []string{"authz.tls"}},
		{"audience", func(a *AuthzConfig) { a.Audience = " " }, []string{"authz.audience"}},
		{"principal-audience-empty", func(a *AuthzConfig) { a.PrincipalAudiences = []string{"orders", ""} }, []string{"authz.principal_audiences[1]"}},
		{"decision-timeout", func(a *AuthzConfig) { a.DecisionTimeout = 0 }, []string{"authz.decision_timeout"}},
		{"policies-dir", func(a *AuthzConfig) { a.Policies.Dir = "" }, []string{"authz.policies.dir"}},
		{"shadow-same", func(a *AuthzConfig) { a.Policies.ShadowDir = a.Policies.Dir }, []string{"authz.policies.shadow_dir"}},
		{"reload", func(a *AuthzConfig) { a.Policies.ReloadInterval = -1 }, []string{"authz.policies.reload_interval"}},
		{"schema", func(a *AuthzConfig) { a.Relations.SchemaFile = "" }, []string{"authz.relations.schema_file"}},
		{"freshness", func(a *AuthzConfig) { a.Relations.Freshness = Duration(time.Hour) }, []string{"authz.relations.freshness"}},
		{"depth", func(a *AuthzConfig) { a.Relations.MaxDepth = 0 }, []string{"authz.relations.max_depth"}},
		{"dispatch", func(a *AuthzConfig) { a.Relations.MaxDispatch = -1 }, []string{"authz.relations.max_dispatch"}},
		{"timeout", func(a *AuthzConfig) { a.Relations.Timeout = 0 }, []string{"authz.relations.timeout"}},
		{"cache", func(a *AuthzConfig) { a.Relations.CacheEntries = -1 }, []string{"authz.relations.cache_entries"}},
		{"ring", func(a *AuthzConfig) { a.DecisionLog.Ring = -1 }, []string{"authz.decision_log.ring"}},
		{"sample", func(a *AuthzConfig) { a.DecisionLog.Sample = 1.5 }, []string{"authz.decision_log.sample"}},
		{"fetch-type", func(a *AuthzConfig) { a.Fetch[0].Type = "Order" }, []string{"authz.fetch[0].type"}},
		{"fetch-dup", func(a *AuthzConfig) { a.Fetch[1].Type = "order" }, []string{"authz.fetch[1].type"}},
		{"fetch-url-no-id", func(a *AuthzConfig) { a.Fetch[0].URL = "https://orders.internal/attrs" }, []string{"authz.fetch[0].url"}},
		{"fetch-url-two-ids", func(a *AuthzConfig) { a.Fetch[0].URL = "https://o/{id}/{id}" }, []string{"authz.fetch[0].url"}},
		{"fetch-url-userinfo", func(a *AuthzConfig) { a.Fetch[0].URL = "https://u:p@o/{id}" }, []string{"authz.fetch[0].url"}},
		{"fetch-url-scheme", func(a *AuthzConfig) { a.Fetch[0].URL = "file:///{id}" }, []string{"authz.fetch[0].url"}},
		{"fetch-url-id-in-host", func(a *AuthzConfig) { a.Fetch[0].URL = "https://{id}.svc/attrs" }, []string{"authz.fetch[0].url"}},
		{"principal-audience-is-authz", func(a *AuthzConfig) { a.PrincipalAudiences = []string{a.Audience} }, []string{"authz.principal_audiences[0]"}},
		{"fetch-ttl", func(a *AuthzConfig) { a.Fetch[0].TTL = Duration(2 * time.Hour) }, []string{"authz.fetch[0].ttl"}},
		{"fetch-timeout", func(a *AuthzConfig) { a.Fetch[0].Timeout = -1 }, []string{"authz.fetch[0].timeout"}},
		{"fetch-on-error", func(a *AuthzConfig) { a.Fetch[0].OnError = "allow" }, []string{"authz.fetch[0].on_error"}},
		{"all-at-once", func(a *AuthzConfig) {
			a.Policies.Dir, a.Relations.SchemaFile, a.DecisionLog.Sample = "", "", -0.1
		}, []string{"authz.policies.dir", "authz.relations.schema_file", "authz.decision_log.sample"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := validAuthzSection()
			tc.edit(&a)
			var r report
			a.validate(&r)
			_, err := r.result()
			if got := fieldKeys(t, err); !slices.Equal(got, tc.keys) {
				t.Fatalf("keys %v, want %v (%v)", got, tc.keys, err)
			}
		})
	}
}

func TestAuthzWarnings(t *testing.T) {
	a := validAuthzSection()
	a.Listen = "0.0.0.0:8002"
	a.Fetch[0].URL = "http://orders.internal/{id}"
	var r report
	a.validate(&r)
	warns, err := r.result()
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, w := range warns {
		keys = append(keys, w.Key)
	}
	if !slices.Equal(keys, []string{"authz.listen", "authz.fetch[0].url"}) {
		t.Fatalf("warnings %v", warns)
	}
}

func TestAuthzNeedsIdP(t *testing.T) {
	c := Default()
	c.Issuer = "https://auth.example.com"
	c.IDP.Listen, c.Admin.Listen = "", ""
	c.Gateway.Listen = "127.0.0.1:8000"
	c.Authz = validAuthzSection()
	_, err := c.Validate()
	if !slices.Contains(fieldKeys(t, err), "authz.listen") {
		t.Fatalf("authz without the IdP: %v", err)
	}
}
