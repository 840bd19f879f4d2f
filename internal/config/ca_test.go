package config

import (
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/storage"
	"github.com/gatehouse/gatehouse/sdk/workload"
)

const testFingerprint = "5f2b0a1c4e6d8f90a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718"

// validCA returns a whole configuration with the CA, a gateway with its own
// SVID (all-in-one) and one spiffe_id route: valid without warnings.
func validCA() Config {
	c := valid()
	c.CA.Listen, c.CA.TrustDomain = "127.0.0.1:8443", "gatehouse.local"
	c.CA.Policy = []workload.Rule{{Name: "orders-pays", Effect: "allow", From: []string{"spiffe://gatehouse.local/orders"},
		To: []string{"spiffe://gatehouse.local/payments"}, Paths: []string{"/payments", "/payments/*"}, Methods: []string{"POST"}}}
	c.Gateway.Listen = "127.0.0.1:8000"
	c.Gateway.Workload = GatewayWorkload{CAURL: "https://127.0.0.1:8443", ClientID: "gateway", ClientSecret: "gw-workload-secret",
		Audience: "gatehouse-ca"}
	rt := minimalRoute()
	rt.Upstreams = []string{"https://orders:8443"}
	rt.UpstreamTLS.SPIFFEID = "spiffe://gatehouse.local/orders"
	c.Gateway.Routes = []GatewayRoute{rt}
	return c
}

func TestCAValid(t *testing.T) {
	c := validCA()
	warns, err := c.Validate()
	if err != nil || len(warns) != 0 {
		t.Fatalf("valid CA config: warnings %v, error %v", warns, err)
	}
	off := valid() // CA off: nothing of the section is checked
	off.CA.TrustDomain, off.CA.SVIDTTL = "NOT VALID", 0
	if _, err := off.Validate(); err != nil {
		t.Fatalf("disabled CA: %v", err)
	}
	// A separate gateway process with its own trust settings.
	g := validCA()
	g.CA = Default().CA
	g.Gateway.Workload.TrustDomain, g.Gateway.Workload.RootFingerprint = "gatehouse.local", testFingerprint
	if warns, err := g.Validate(); err != nil || len(warns) != 0 {
		t.Fatalf("gateway with its own workload settings: warnings %v, error %v", warns, err)
	}
	g.Gateway.Workload.RootFingerprint, g.Gateway.Workload.BundleFile = "", "/etc/gatehouse/bundle.json"
	if _, err := g.Validate(); err != nil {
		t.Fatalf("gateway with a bundle file: %v", err)
	}
}

// TestCAInvalid: every bad value of the ca section, of gateway.workload and
// of a route's spiffe_id is reported under its exact key.
func TestCAInvalid(t *testing.T) {
	r0 := "gateway.routes[0]"
	cases := []struct {
		name string
		edit func(c *Config)
		keys []string
	}{
		{"listen", func(c *Config) { c.CA.Listen = "nope" }, []string{"ca.listen"}},
		{"trust-domain-missing", func(c *Config) { c.CA.TrustDomain = "" }, []string{"ca.trust_domain"}},
		{"trust-domain-bad", func(c *Config) { c.CA.TrustDomain = "Gatehouse Local" }, []string{"ca.trust_domain"}},
		{"trust-domain-uri", func(c *Config) { c.CA.TrustDomain = "spiffe://gatehouse.local/x" }, []string{"ca.trust_domain"}},
		{"root-half", func(c *Config) { c.CA.Root.CertFile = "root.pem" }, []string{"ca.root"}},
		{"root-key-only", func(c *Config) { c.CA.Root.KeyFile = "root.key" }, []string{"ca.root"}},
		{"svid-ttl-zero", func(c *Config) { c.CA.SVIDTTL = 0 }, []string{"ca.svid_ttl"}},
		{"svid-ttl-long", func(c *Config) { c.CA.SVIDTTL = Duration(25 * time.Hour) }, []string{"ca.svid_ttl"}},
		{"root-ttl-short", func(c *Config) { c.CA.RootTTL = Duration(time.Minute) }, []string{"ca.root_ttl"}},
		{"root-ttl-long", func(c *Config) { c.CA.RootTTL = Duration(87601 * time.Hour) }, []string{"ca.root_ttl"}},
		{"intermediate-zero", func(c *Config) { c.CA.IntermediateTTL = 0 }, []string{"ca.intermediate_ttl"}},
		{"intermediate-below-2-svid", func(c *Config) { c.CA.IntermediateTTL = Duration(90 * time.Minute) }, []string{"ca.intermediate_ttl"}},
		{"intermediate-above-half-root", func(c *Config) { c.CA.IntermediateTTL = Duration(4381 * time.Hour) }, []string{"ca.intermediate_ttl"}},
		{"join-token-short", func(c *Config) { c.CA.JoinTokenTTL = Duration(time.Second) }, []string{"ca.join_token_ttl"}},
		{"join-token-long", func(c *Config) { c.CA.JoinTokenTTL = Duration(25 * time.Hour) }, []string{"ca.join_token_ttl"}},
		{"refresh-zero", func(c *Config) { c.CA.RefreshInterval = 0 }, []string{"ca.refresh_interval"}},
		{"refresh-long", func(c *Config) { c.CA.RefreshInterval = Duration(11 * time.Minute) }, []string{"ca.refresh_interval"}},
		{"refresh-vs-intermediate", func(c *Config) {
			c.CA.SVIDTTL, c.CA.IntermediateTTL, c.CA.RefreshInterval = Duration(time.Minute), Duration(6*time.Minute), Duration(2*time.Minute)
		}, []string{"ca.refresh_interval"}},
		{"client-audience", func(c *Config) { c.CA.ClientAudience = "" }, []string{"ca.client_audience"}},
		{"client-audience-space", func(c *Config) { c.CA.ClientAudience = "a b" }, []string{"ca.client_audience"}},
		{"policy-effect", func(c *Config) { c.CA.Policy[0].Effect = "permit" }, []string{"ca.policy[0].effect"}},
		{"policy-from-bad", func(c *Config) { c.CA.Policy[0].From = []string{"spiffe://gatehouse.local/a*"} }, []string{"ca.policy[0].from[0]"}},
		{"policy-no-to", func(c *Config) { c.CA.Policy[0].To = nil }, []string{"ca.policy[0].to"}},
		{"policy-path", func(c *Config) { c.CA.Policy[0].Paths = []string{"orders"} }, []string{"ca.policy[0].paths[0]"}},
		{"policy-dup-name", func(c *Config) { c.CA.Policy = append(c.CA.Policy, c.CA.Policy[0]) }, []string{"ca.policy[1].name"}},
		{"policy-all-at-once", func(c *Config) {
			c.CA.Policy = append(c.CA.Policy, workload.Rule{Effect: "deny", From: []string{"x"}, To: []string{"spiffe://gatehouse.local/*"}})
		}, []string{"ca.policy[1].name", "ca.policy[1].from[0]"}},
		{"workload-ca-url-http", func(c *Config) { c.Gateway.Workload.CAURL = "http://127.0.0.1:8443" }, []string{"gateway.workload.ca_url"}},
		{"workload-ca-url-path", func(c *Config) { c.Gateway.Workload.CAURL = "https://ca:8443/v1" }, []string{"gateway.workload.ca_url"}},
		{"workload-ca-url-userinfo", func(c *Config) { c.Gateway.Workload.CAURL = "https://u:p@ca:8443" }, []string{"gateway.workload.ca_url"}},
		{"workload-trust-domain", func(c *Config) { c.Gateway.Workload.TrustDomain = "BAD DOMAIN" }, []string{"gateway.workload.trust_domain"}},
		{"workload-fingerprint", func(c *Config) { c.Gateway.Workload.RootFingerprint = "abcd" }, []string{"gateway.workload.root_fingerprint"}},
		{"workload-fingerprint-and-bundle", func(c *Config) {
			c.Gateway.Workload.RootFingerprint, c.Gateway.Workload.BundleFile = testFingerprint, "b.json"
		}, []string{"gateway.workload"}},
		{"workload-client-id", func(c *Config) { c.Gateway.Workload.ClientID = "" }, []string{"gateway.workload.client_id", r0 + ".upstream_tls.spiffe_id"}},
		{"workload-client-secret", func(c *Config) { c.Gateway.Workload.ClientSecret = "" }, []string{"gateway.workload.client_secret", r0 + ".upstream_tls.spiffe_id"}},
		{"workload-audience", func(c *Config) { c.Gateway.Workload.Audience = "" }, []string{"gateway.workload.audience"}},
		{"workload-standalone-needs-trust", func(c *Config) { c.CA = Default().CA }, []string{"gateway.workload.trust_domain", "gateway.workload.root_fingerprint"}},
		{"spiffe-id-not-spiffe", func(c *Config) { c.Gateway.Routes[0].UpstreamTLS.SPIFFEID = "https://orders" }, []string{r0 + ".upstream_tls.spiffe_id"}},
		{"spiffe-id-no-path", func(c *Config) { c.Gateway.Routes[0].UpstreamTLS.SPIFFEID = "spiffe://gatehouse.local" }, []string{r0 + ".upstream_tls.spiffe_id"}},
		{"spiffe-id-other-domain", func(c *Config) { c.Gateway.Routes[0].UpstreamTLS.SPIFFEID = "spiffe://evil.example/orders" }, []string{r0 + ".upstream_tls.spiffe_id"}},
		{"spiffe-id-with-ca-file", func(c *Config) { c.Gateway.Routes[0].UpstreamTLS.CAFile = "ca.pem" }, []string{r0 + ".upstream_tls"}},
		{"spiffe-id-with-cert", func(c *Config) {
			c.Gateway.Routes[0].UpstreamTLS.CertFile, c.Gateway.Routes[0].UpstreamTLS.KeyFile = "c.pem", "k.pem"
		}, []string{r0 + ".upstream_tls"}},
		{"spiffe-id-http-upstream", func(c *Config) {
			c.Gateway.Routes[0].Upstreams = []string{"https://orders:8443", "http://orders-2:8080"}
		}, []string{r0 + ".upstreams[1]"}},
		{"spiffe-id-without-workload", func(c *Config) { c.Gateway.Workload = Default().Gateway.Workload }, []string{r0 + ".upstream_tls.spiffe_id"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := validCA()
			tc.edit(&c)
			_, err := c.Validate()
			if got := fieldKeys(t, err); !slices.Equal(got, tc.keys) {
				t.Fatalf("keys %v, want %v (%v)", got, tc.keys, err)
			}
		})
	}
}

func TestCAWarnings(t *testing.T) {
	tests := []struct {
		name string
		edit func(c *Config)
		want []string
	}{
		{"short svid", func(c *Config) {
			c.CA.SVIDTTL, c.CA.IntermediateTTL, c.CA.RefreshInterval = Duration(30*time.Second), Duration(time.Hour), Duration(time.Second)
		}, []string{"ca.svid_ttl"}},
		{"intermediate below 6 svid", func(c *Config) { c.CA.IntermediateTTL = Duration(3 * time.Hour) }, []string{"ca.intermediate_ttl"}},
		{"policy without ca", func(c *Config) {
			c.CA.Listen, c.Gateway.Workload.TrustDomain, c.Gateway.Workload.RootFingerprint = "", "gatehouse.local", testFingerprint
		}, []string{"ca.policy"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validCA()
			tt.edit(&c)
			warns, err := c.Validate()
			if err != nil || !slices.Equal(warnKeys(warns), tt.want) {
				t.Fatalf("warnings %v, want %v (error %v)", warnKeys(warns), tt.want, err)
			}
		})
	}
}

// TestCAImportedRootIgnoresRootTTL: with an upstream root the generated
// root's lifetime does not bound the intermediate.
func TestCAImportedRootIgnoresRootTTL(t *testing.T) {
	c := validCA()
	c.CA.Root = CARoot{CertFile: "root.pem", KeyFile: "root.key"}
	c.CA.RootTTL, c.CA.IntermediateTTL = Duration(time.Hour), Duration(24*time.Hour)
	if _, err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestCANeedsIdP(t *testing.T) {
	c := validCA()
	c.IDP.Listen, c.Admin.Listen = "", ""
	c.Gateway.Workload.TrustDomain, c.Gateway.Workload.RootFingerprint = "gatehouse.local", testFingerprint
	_, err := c.Validate()
	if got := fieldKeys(t, err); !slices.Equal(got, []string{"ca.listen"}) {
		t.Fatalf("CA in a gateway-only process: %v", err)
	}
	// The same gateway without the CA is a valid gateway-only process.
	c.CA = Default().CA
	if _, err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	// A gateway-only process cannot take trust from a CA that is not there.
	c.Gateway.Workload.TrustDomain, c.Gateway.Workload.RootFingerprint = "", ""
	c.CA.Listen, c.CA.TrustDomain = "", "gatehouse.local"
	_, err = c.Validate()
	if got := fieldKeys(t, err); !slices.Equal(got, []string{"gateway.workload.trust_domain", "gateway.workload.root_fingerprint"}) {
		t.Fatalf("gateway-only without trust settings: %v", err)
	}
}

const caYAML = minimalYAML + `idp:
  listen: 127.0.0.1:8080
ca:
  listen: 127.0.0.1:8443
  trust_domain: gatehouse.local
  svid_ttl: 30m
  policy:
    - name: orders-pays
      effect: allow
      from: [spiffe://gatehouse.local/orders]
      to: [spiffe://gatehouse.local/payments]
      paths: [/payments, /payments/*]
      methods: [POST]
    - name: no-admin
      effect: deny
      from: [spiffe://gatehouse.local/*]
      to: [spiffe://gatehouse.local/admin]
gateway:
  listen: 127.0.0.1:8000
  workload:
    ca_url: https://127.0.0.1:8443
    client_id: gateway
  routes:
    - name: orders
      path_prefix: /orders
      upstreams: [https://orders.internal:8443]
      upstream_tls: {spiffe_id: spiffe://gatehouse.local/orders}
      auth: {mode: jwt, audience: orders}
      token: forward
`

func TestCALoadYAML(t *testing.T) {
	cfg, warns, err := Load(strings.NewReader(caYAML), []string{"GATEHOUSE_GATEWAY_WORKLOAD_CLIENT_SECRET=from-env-secret"})
	if err != nil || len(warns) != 0 {
		t.Fatalf("load: warnings %v, error %v", warns, err)
	}
	if cfg.CA.SVIDTTL.Std() != 30*time.Minute || cfg.CA.RootTTL.Std() != 8760*time.Hour || cfg.CA.ClientAudience != "gatehouse-ca" {
		t.Errorf("durations/defaults: %+v", cfg.CA)
	}
	if len(cfg.CA.Policy) != 2 || cfg.CA.Policy[0].Methods[0] != "POST" || cfg.CA.Policy[1].Effect != "deny" {
		t.Errorf("policy: %+v", cfg.CA.Policy)
	}
	p, err := cfg.CA.NewPolicy()
	if err != nil || p.Version() == "" {
		t.Fatalf("policy: %v", err)
	}
	if cfg.Gateway.Workload.ClientSecret != "from-env-secret" || cfg.Gateway.Routes[0].UpstreamTLS.SPIFFEID != "spiffe://gatehouse.local/orders" {
		t.Errorf("gateway.workload: %v", cfg.Gateway.Workload)
	}
	if td, err := cfg.CA.TrustDomainID(); err != nil || td.Name() != "gatehouse.local" {
		t.Errorf("trust domain %v %v", td, err)
	}
	if !cfg.Gateway.SPIFFEIDs() {
		t.Error("SPIFFEIDs: want true")
	}
}

func TestCALoadErrors(t *testing.T) {
	tests := []struct {
		name, doc string
		env       []string
		want      []string
	}{
		{"unknown rule member", strings.Replace(caYAML, "      methods: [POST]\n", "      methods: [POST]\n      method: GET\n", 1),
			[]string{"GATEHOUSE_GATEWAY_WORKLOAD_CLIENT_SECRET=s"}, []string{"ca.policy[0].method"}},
		{"rule is not a mapping", strings.Replace(caYAML, "    - name: no-admin\n", "    - oops\n    - name: no-admin\n", 1),
			[]string{"GATEHOUSE_GATEWAY_WORKLOAD_CLIENT_SECRET=s"}, []string{"ca.policy[1]"}},
		{"secret missing", caYAML, nil, []string{"gateway.workload.client_secret", "gateway.routes[0].upstream_tls.spiffe_id"}},
		{"env overrides", caYAML, []string{"GATEHOUSE_GATEWAY_WORKLOAD_CLIENT_SECRET=s", "GATEHOUSE_CA_SVID_TTL=48h",
			"GATEHOUSE_CA_TRUST_DOMAIN=", "GATEHOUSE_GATEWAY_WORKLOAD_ROOT_FINGERPRINT=xyz"},
			[]string{"ca.trust_domain", "ca.svid_ttl", "gateway.workload.root_fingerprint"}},
		{"policy from env is refused", caYAML, []string{"GATEHOUSE_GATEWAY_WORKLOAD_CLIENT_SECRET=s", "GATEHOUSE_CA_POLICY=x"},
			[]string{"GATEHOUSE_CA_POLICY"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := Load(strings.NewReader(tt.doc), tt.env)
			if got := fieldKeys(t, err); !slices.Equal(got, tt.want) {
				t.Fatalf("keys %v, want %v (%v)", got, tt.want, err)
			}
			if err != nil && strings.Contains(err.Error(), "from-env-secret") {
				t.Fatal("secret in an error")
			}
		})
	}
}

func TestGatewayWorkloadSecretRedacted(t *testing.T) {
	c := validCA()
	w := c.Gateway.Workload
	var b strings.Builder
	slog.New(slog.NewTextHandler(&b, nil)).Info("x", "workload", w, "gateway", c.Gateway)
	for _, s := range []string{w.String(), fmt.Sprint(w), fmt.Sprintf("%+v", w), fmt.Sprintf("%#v", w), w.LogValue().String(), b.String()} {
		if strings.Contains(s, "gw-workload-secret") || !strings.Contains(s, "gateway") {
			t.Errorf("not redacted: %s", s)
		}
	}
}

// TestSPIFFERevocationRetentionCoversSVIDs: storage prunes a SPIFFE
// revocation only after every SVID it can refuse has expired, i.e. after the
// longest svid_ttl plus the longest refresh interval.
func TestSPIFFERevocationRetentionCoversSVIDs(t *testing.T) {
	if maxSVIDTTL+maxCARefresh >= storage.SPIFFERevocationRetention {
		t.Fatalf("storage.SPIFFERevocationRetention %v does not outlast svid_ttl %v + refresh_interval %v",
			storage.SPIFFERevocationRetention, maxSVIDTTL, maxCARefresh)
	}
}
