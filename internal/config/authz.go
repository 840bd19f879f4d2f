package config

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// AuthzConfig is the "authz" section: the authorization service (Cedar
// policies and relationships, docs/authz.md). It is off unless listen is set.
type AuthzConfig struct {
	Listen             string           `yaml:"listen"` // empty disables
	TLS                TLSConfig        `yaml:"tls"`
	Audience           string           `yaml:"audience"`            // callers' tokens must be for this API
	PrincipalAudiences []string         `yaml:"principal_audiences"` // principal tokens may be for these APIs
	DecisionTimeout    Duration         `yaml:"decision_timeout"`
	Policies           AuthzPolicies    `yaml:"policies"`
	Relations          AuthzRelations   `yaml:"relations"`
	DecisionLog        AuthzDecisionLog `yaml:"decision_log"`
	Fetch              []AuthzFetch     `yaml:"fetch"`
}

// AuthzPolicies is "authz.policies": the Cedar policy directories.
type AuthzPolicies struct {
	Dir            string   `yaml:"dir"`        // schema.cedarschema + *.cedar (required)
	ShadowDir      string   `yaml:"shadow_dir"` // candidate set evaluated beside the active one
	ReloadInterval Duration `yaml:"reload_interval"`
}

// AuthzRelations is "authz.relations": the relationship schema and budgets.
type AuthzRelations struct {
	SchemaFile   string   `yaml:"schema_file"` // required
	Freshness    Duration `yaml:"freshness"`   // bound on how stale a decision's relationships may be (AZ-05)
	MaxDepth     int      `yaml:"max_depth"`
	MaxDispatch  int      `yaml:"max_dispatch"`
	Timeout      Duration `yaml:"timeout"`
	CacheEntries int      `yaml:"cache_entries"`
}

// AuthzDecisionLog is "authz.decision_log".
type AuthzDecisionLog struct {
	Path   string  `yaml:"path"`   // JSON lines file; "-" stdout; empty: in-memory ring only
	Ring   int     `yaml:"ring"`   // decisions kept in memory for GET /decisions
	Sample float64 `yaml:"sample"` // fraction of allows logged; denies always are
}

// AuthzFetch is one entry of "authz.fetch": where a resource type's
// attributes come from.
type AuthzFetch struct {
	Type    string   `yaml:"type"`
	URL     string   `yaml:"url"` // contains {id}
	TTL     Duration `yaml:"ttl"`
	Timeout Duration `yaml:"timeout"`
	OnError string   `yaml:"on_error"` // deny | ignore
}

// SetDefaults sets the documented defaults of the section.
func (a *AuthzConfig) SetDefaults() {
	*a = AuthzConfig{
		Audience:        "gatehouse-authz",
		DecisionTimeout: Duration(250 * time.Millisecond),
		Policies:        AuthzPolicies{ReloadInterval: 2 * second},
		Relations: AuthzRelations{Freshness: second, MaxDepth: 50, MaxDispatch: 10000,
			Timeout: Duration(100 * time.Millisecond), CacheEntries: 100000},
		DecisionLog: AuthzDecisionLog{Ring: 1000, Sample: 1},
	}
}

// Enabled reports whether the authorization service runs.
func (a *AuthzConfig) Enabled() bool { return a.Listen != "" }

var authzTypeName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)

func (a *AuthzConfig) validate(r *report) {
	if !a.Enabled() {
		return
	}
	if loopback, ok := validateListen(r, "authz.listen", a.Listen); ok && !loopback && !a.TLS.Enabled() {
		r.warnf("authz.listen", "serving plain HTTP on a non-loopback address: put TLS in front or set authz.tls")
	}
	if (a.TLS.CertFile == "") != (a.TLS.KeyFile == "") {
		r.errorf("authz.tls", "cert_file and key_file must be set together")
	}
	if strings.TrimSpace(a.Audience) == "" {
		r.errorf("authz.audience", "required")
	}
	for i, aud := range a.PrincipalAudiences {
		switch {
		case strings.TrimSpace(aud) == "":
			r.errorf(fmt.Sprintf("authz.principal_audiences[%d]", i), "must not be empty")
		case aud == a.Audience:
			r.errorf(fmt.Sprintf("authz.principal_audiences[%d]", i),
				"must not be authz.audience: callers' own service tokens would be accepted as principals")
		}
	}
	if d := a.DecisionTimeout.Std(); d < time.Millisecond || d > 10*time.Second {
		r.errorf("authz.decision_timeout", "must be between 1ms and 10s")
	}
	if a.Policies.Dir == "" {
		r.errorf("authz.policies.dir", "required: a directory with schema.cedarschema and *.cedar files")
	}
	if a.Policies.ShadowDir != "" && a.Policies.ShadowDir == a.Policies.Dir {
		r.errorf("authz.policies.shadow_dir", "must differ from authz.policies.dir")
	}
	if a.Policies.ReloadInterval.Std() < 0 {
		r.errorf("authz.policies.reload_interval", "must not be negative")
	}
	rel := a.Relations
	if rel.SchemaFile == "" {
		r.errorf("authz.relations.schema_file", "required")
	}
	if d := rel.Freshness.Std(); d < 10*time.Millisecond || d > time.Minute {
		r.errorf("authz.relations.freshness", "must be between 10ms and 1m0s (it bounds how stale a decision may be)")
	}
	if rel.MaxDepth < 1 || rel.MaxDepth > 1000 {
		r.errorf("authz.relations.max_depth", "must be between 1 and 1000")
	}
	if rel.MaxDispatch < 1 || rel.MaxDispatch > 10000000 {
		r.errorf("authz.relations.max_dispatch", "must be between 1 and 10000000")
	}
	if d := rel.Timeout.Std(); d < time.Millisecond || d > 10*time.Second {
		r.errorf("authz.relations.timeout", "must be between 1ms and 10s")
	}
	if rel.CacheEntries < 0 || rel.CacheEntries > 100000000 {
		r.errorf("authz.relations.cache_entries", "must be between 0 and 100000000")
	}
	if a.DecisionLog.Ring < 0 || a.DecisionLog.Ring > 1000000 {
		r.errorf("authz.decision_log.ring", "must be between 0 and 1000000")
	}
	if s := a.DecisionLog.Sample; !(s >= 0 && s <= 1) {
		r.errorf("authz.decision_log.sample", "must be between 0 and 1")
	}
	seen := map[string]bool{}
	for i, f := range a.Fetch {
		k := fmt.Sprintf("authz.fetch[%d]", i)
		if !authzTypeName.MatchString(f.Type) {
			r.errorf(k+".type", "must be a type name ([a-z][a-z0-9_]*)")
		} else if seen[f.Type] {
			r.errorf(k+".type", "duplicate type %q", f.Type)
		}
		seen[f.Type] = true
		u, err := url.Parse(strings.ReplaceAll(f.URL, "{id}", "x"))
		switch {
		case err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || u.Fragment != "":
			r.errorf(k+".url", "must be an absolute http(s) URL without user info or fragment")
		case strings.Count(f.URL, "{id}") != 1:
			r.errorf(k+".url", "must contain {id} exactly once")
		case idInAuthority(f.URL):
			r.errorf(k+".url", "{id} must be in the path or query, never in the host")
		case u.Scheme == "http" && !isLoopbackHost(u.Hostname()):
			r.warnf(k+".url", "plain http to a non-loopback host: attributes travel unauthenticated")
		}
		if d := f.TTL.Std(); d < 0 || d > time.Hour {
			r.errorf(k+".ttl", "must be between 0s and 1h0m0s")
		}
		if d := f.Timeout.Std(); d < 0 || d > 10*time.Second {
			r.errorf(k+".timeout", "must be between 0s (default 100ms) and 10s")
		}
		if f.OnError != "" {
			oneOf(r, k+".on_error", f.OnError, "deny", "ignore")
		}
	}
}

// idInAuthority reports whether {id} appears before the path of a URL
// template (in the host, port or user info), where a resource id could
// choose where the request goes.
func idInAuthority(tmpl string) bool {
	_, rest, ok := strings.Cut(tmpl, "://")
	if !ok {
		return false
	}
	authority, _, _ := strings.Cut(rest, "/")
	authority, _, _ = strings.Cut(authority, "?")
	return strings.Contains(authority, "{id}")
}
