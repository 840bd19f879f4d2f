package config

import (
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/gatehouse/gatehouse/sdk/workload"
)

// CAConfig is the "ca" section: the workload CA and its HTTPS API
// (docs/workload.md). It is off unless listen is set, and runs beside the
// IdP: it keeps its authorities in the same storage, sealed with
// secrets.key_encryption_key, and accepts the IdP's client-credentials
// tokens.
type CAConfig struct {
	Listen          string          `yaml:"listen"`       // CA API (HTTPS with the CA's own SVID); empty disables
	TrustDomain     string          `yaml:"trust_domain"` // required with listen
	Root            CARoot          `yaml:"root"`         // an imported upstream root; empty: generate one
	RootTTL         Duration        `yaml:"root_ttl"`     // generated root
	IntermediateTTL Duration        `yaml:"intermediate_ttl"`
	SVIDTTL         Duration        `yaml:"svid_ttl"`
	JoinTokenTTL    Duration        `yaml:"join_token_ttl"`   // default TTL of join tokens made by the admin API
	RefreshInterval Duration        `yaml:"refresh_interval"` // storage reload, rotation tick, bundle refresh hint
	ClientAudience  string          `yaml:"client_audience"`  // audience of client-credentials tokens accepted by POST /v1/svid
	Policy          []workload.Rule `yaml:"policy"`           // who may call whom; hot-reloaded
}

// CARoot is "ca.root": PEM files of an upstream root certificate and key.
type CARoot struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// Imported reports whether an upstream root is configured.
func (r CARoot) Imported() bool { return r.CertFile != "" }

// GatewayWorkload is "gateway.workload": how the gateway gets its own SVID
// from the CA, for routes with upstream_tls.spiffe_id. The client secret is
// never printed.
type GatewayWorkload struct {
	CAURL           string `yaml:"ca_url"`           // https://host:port of the CA API
	TrustDomain     string `yaml:"trust_domain"`     // default (all-in-one): ca.trust_domain
	RootFingerprint string `yaml:"root_fingerprint"` // hex SHA-256 of a root's DER (bootstrap trust)
	BundleFile      string `yaml:"bundle_file"`      // or a SPIFFE bundle JSON / PEM file
	ClientID        string `yaml:"client_id"`        // the gateway's client at the issuer (registered with a spiffe_id)
	ClientSecret    string `yaml:"client_secret"`
	Audience        string `yaml:"audience"` // the CA's ca.client_audience
}

// Enabled reports whether the gateway is configured to get an SVID.
func (w GatewayWorkload) Enabled() bool { return w.CAURL != "" }

// String redacts the client secret.
func (w GatewayWorkload) String() string {
	return fmt.Sprintf("{CAURL:%s TrustDomain:%s RootFingerprint:%s BundleFile:%s ClientID:%s ClientSecret:REDACTED Audience:%s}",
		w.CAURL, w.TrustDomain, w.RootFingerprint, w.BundleFile, w.ClientID, w.Audience)
}

// GoString redacts the client secret.
func (w GatewayWorkload) GoString() string { return w.String() }

// LogValue redacts the client secret.
func (w GatewayWorkload) LogValue() slog.Value { return slog.StringValue(w.String()) }

// CA bounds.
const (
	minSVIDTTL      = time.Second
	maxSVIDTTL      = 24 * time.Hour
	warnSVIDTTL     = time.Minute
	minRootTTL      = time.Hour
	maxRootTTL      = 10 * 8760 * time.Hour
	minJoinTokenTTL = time.Minute
	maxJoinTokenTTL = 24 * time.Hour
	minCARefresh    = time.Second
	maxCARefresh    = 10 * time.Minute
)

// SetDefaults sets the documented defaults of the section.
func (c *CAConfig) SetDefaults() {
	*c = CAConfig{
		RootTTL:         Duration(8760 * time.Hour),
		IntermediateTTL: Duration(24 * time.Hour),
		SVIDTTL:         Duration(time.Hour),
		JoinTokenTTL:    Duration(10 * time.Minute),
		RefreshInterval: Duration(10 * time.Second),
		ClientAudience:  "gatehouse-ca",
	}
}

// Enabled reports whether the CA runs.
func (c *CAConfig) Enabled() bool { return c.Listen != "" }

// Validate checks the section alone.
func (c *CAConfig) Validate() ([]Warning, error) {
	var r report
	c.validate(&r)
	return r.result()
}

// TrustDomainID returns the parsed ca.trust_domain.
func (c CAConfig) TrustDomainID() (spiffeid.TrustDomain, error) {
	td, err := parseTrustDomain(c.TrustDomain)
	if err != nil {
		return spiffeid.TrustDomain{}, fmt.Errorf("config: ca.trust_domain: %w", err)
	}
	return td, nil
}

// parseTrustDomain accepts a bare trust domain name (not a SPIFFE ID).
func parseTrustDomain(s string) (spiffeid.TrustDomain, error) {
	td, err := spiffeid.TrustDomainFromString(s)
	if err != nil || s == "" || td.Name() != s {
		return spiffeid.TrustDomain{}, errors.New("not a trust domain name")
	}
	return td, nil
}

// NewPolicy builds the workload policy of ca.policy.
func (c CAConfig) NewPolicy() (*workload.Policy, error) { return workload.NewPolicy(c.Policy) }

func (c *CAConfig) validate(r *report) {
	if !c.Enabled() {
		if len(c.Policy) > 0 {
			r.warnf("ca.policy", "rules are configured but ca.listen is not set: nothing serves them")
		}
		return
	}
	validateListen(r, "ca.listen", c.Listen)
	if c.TrustDomain == "" {
		r.errorf("ca.trust_domain", "required with ca.listen, e.g. gatehouse.local")
	} else if _, err := parseTrustDomain(c.TrustDomain); err != nil {
		r.errorf("ca.trust_domain", "must be a trust domain name: lower-case letters, digits, '.', '-' and '_'")
	}
	if (c.Root.CertFile == "") != (c.Root.KeyFile == "") {
		r.errorf("ca.root", "cert_file and key_file must be set together")
	}
	svid, inter, root := c.SVIDTTL.Std(), c.IntermediateTTL.Std(), c.RootTTL.Std()
	svidOK := svid >= minSVIDTTL && svid <= maxSVIDTTL
	if !svidOK {
		r.errorf("ca.svid_ttl", "must be between 1s and 24h")
	} else if svid < warnSVIDTTL {
		r.warnf("ca.svid_ttl", "SVIDs live less than a minute: every workload renews constantly")
	}
	rootOK := root >= minRootTTL && root <= maxRootTTL
	if !rootOK {
		r.errorf("ca.root_ttl", "must be between 1h and 87600h")
	}
	switch {
	case inter <= 0:
		r.errorf("ca.intermediate_ttl", "must be positive")
	case svidOK && inter < 2*svid:
		r.errorf("ca.intermediate_ttl", "must be at least 2 × ca.svid_ttl (%s)", Duration(2*svid))
	case rootOK && !c.Root.Imported() && inter > root/2:
		r.errorf("ca.intermediate_ttl", "must be at most ca.root_ttl / 2 (%s)", Duration(root/2))
	case inter > maxRootTTL/2:
		r.errorf("ca.intermediate_ttl", "must be at most 43800h")
	case svidOK && inter < 6*svid:
		r.warnf("ca.intermediate_ttl", "less than 6 × ca.svid_ttl: SVIDs issued late in an intermediate's life are cut short")
	}
	if d := c.JoinTokenTTL.Std(); d < minJoinTokenTTL || d > maxJoinTokenTTL {
		r.errorf("ca.join_token_ttl", "must be between 1m and 24h")
	}
	if d := c.RefreshInterval.Std(); d < minCARefresh || d > maxCARefresh {
		r.errorf("ca.refresh_interval", "must be between 1s and 10m")
	} else if inter > 0 && d > inter/6 {
		r.errorf("ca.refresh_interval", "must be at most ca.intermediate_ttl / 6 (rotation steps are that far apart)")
	}
	if !scopeToken(c.ClientAudience) {
		r.errorf("ca.client_audience", "required: one audience, without spaces")
	}
	if _, err := workload.NewPolicy(c.Policy); err != nil {
		policyErrors(r, err)
	}
}

// rePolicyKey finds the rule field an error of workload.NewPolicy names
// ("rules[2].from[0]: ...").
var rePolicyKey = regexp.MustCompile(`^rules(\[\d+\](?:\.[a-z]+(?:\[\d+\])?)?): (.*)$`)

// policyErrors reports each problem of a policy under ca.policy, naming the
// rule and field when the error does (ca.policy[2].from[0]).
func policyErrors(r *report, err error) {
	for _, e := range policyLeaves(err) {
		msg := strings.TrimPrefix(e.Error(), workload.ErrInvalidPolicy.Error()+": ")
		if m := rePolicyKey.FindStringSubmatch(msg); m != nil {
			r.errorf("ca.policy"+m[1], "%s", m[2])
			continue
		}
		r.errorf("ca.policy", "%s", msg)
	}
}

// policyLeaves flattens joined errors, dropping the ErrInvalidPolicy marker.
func policyLeaves(err error) []error {
	j, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return []error{err}
	}
	var out []error
	for _, e := range j.Unwrap() {
		if e != workload.ErrInvalidPolicy {
			out = append(out, policyLeaves(e)...)
		}
	}
	return out
}

// validateWorkload checks gateway.workload and the routes' spiffe_id
// against the whole configuration: in one process with the CA
// (ca.listen set) the trust domain and the root come from the CA.
func (c *Config) validateWorkload(r *report) {
	g, w := &c.Gateway, c.Gateway.Workload
	allInOne := c.CA.Enabled() && !c.GatewayOnly()
	var td spiffeid.TrustDomain
	tdKnown := false
	if w.TrustDomain != "" {
		if t, err := parseTrustDomain(w.TrustDomain); err != nil {
			r.errorf("gateway.workload.trust_domain", "must be a trust domain name: lower-case letters, digits, '.', '-' and '_'")
		} else {
			td, tdKnown = t, true
		}
	} else if allInOne {
		if t, err := parseTrustDomain(c.CA.TrustDomain); err == nil {
			td, tdKnown = t, true
		}
	}
	if fp := w.RootFingerprint; fp != "" {
		if b, err := hex.DecodeString(fp); err != nil || len(b) != 32 {
			r.errorf("gateway.workload.root_fingerprint", "must be 64 hex digits (SHA-256 of the root certificate's DER)")
		}
	}
	if w.RootFingerprint != "" && w.BundleFile != "" {
		r.errorf("gateway.workload", "set root_fingerprint or bundle_file, not both")
	}
	if w.Enabled() {
		u, err := url.Parse(w.CAURL)
		if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || strings.ContainsAny(w.CAURL, "?#") ||
			(u.Path != "" && u.Path != "/") {
			r.errorf("gateway.workload.ca_url", "must be https://host:port of the CA API, without path, user info, query or fragment")
		}
		if w.TrustDomain == "" && !allInOne {
			r.errorf("gateway.workload.trust_domain", "required with gateway.workload.ca_url (unless ca.listen runs in the same process)")
		}
		if w.RootFingerprint == "" && w.BundleFile == "" && !allInOne {
			r.errorf("gateway.workload.root_fingerprint", "root_fingerprint or bundle_file is required with gateway.workload.ca_url (unless ca.listen runs in the same process)")
		}
		if w.ClientID == "" {
			r.errorf("gateway.workload.client_id", "required with gateway.workload.ca_url: the gateway's client at the issuer")
		}
		if w.ClientSecret == "" {
			r.errorf("gateway.workload.client_secret", "required with gateway.workload.ca_url")
		}
		if !scopeToken(w.Audience) {
			r.errorf("gateway.workload.audience", "required with gateway.workload.ca_url: one audience, without spaces")
		}
	}
	for i, rt := range g.Routes {
		ut := rt.UpstreamTLS
		if ut.SPIFFEID == "" {
			continue
		}
		k := fmt.Sprintf("gateway.routes[%d]", i)
		id, err := spiffeid.FromString(ut.SPIFFEID)
		switch {
		case err != nil:
			r.errorf(k+".upstream_tls.spiffe_id", "must be a SPIFFE ID such as spiffe://gatehouse.local/orders")
		case id.Path() == "":
			r.errorf(k+".upstream_tls.spiffe_id", "must name a workload: a SPIFFE ID with a path")
		case tdKnown && id.TrustDomain() != td:
			r.errorf(k+".upstream_tls.spiffe_id", "must be in the gateway's trust domain %s", td)
		}
		if ut.CAFile != "" || ut.CertFile != "" || ut.KeyFile != "" {
			r.errorf(k+".upstream_tls", "spiffe_id excludes ca_file, cert_file and key_file (the gateway's SVID and the trust bundle are used)")
		}
		if !w.Enabled() || w.ClientID == "" || w.ClientSecret == "" {
			r.errorf(k+".upstream_tls.spiffe_id", "needs gateway.workload.ca_url, client_id and client_secret (the gateway's own SVID)")
		}
		for j, up := range rt.Upstreams {
			if u, err := url.Parse(up); err == nil && u.Scheme != "https" {
				r.errorf(fmt.Sprintf("%s.upstreams[%d]", k, j), "must be https with upstream_tls.spiffe_id")
			}
		}
	}
}

// SPIFFEIDs reports whether any route authenticates its upstream by SPIFFE
// ID (and so needs the gateway's own SVID).
func (g *GatewayConfig) SPIFFEIDs() bool {
	for _, rt := range g.Routes {
		if rt.UpstreamTLS.SPIFFEID != "" {
			return true
		}
	}
	return false
}

// errCAWithoutIdP is reported for a gateway-only configuration with ca.listen.
var errCAWithoutIdP = errors.New("the workload CA runs beside the IdP (it shares its storage, secrets and issuer): set idp.listen too")
