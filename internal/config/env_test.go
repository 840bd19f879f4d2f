package config

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func mustAddr(t *testing.T, s string) netip.Addr {
	t.Helper()
	a, err := netip.ParseAddr(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestEnvOverrides(t *testing.T) {
	env := []string{
		"PATH=/usr/bin",
		"GATEHOUSE_STORAGE_DRIVER=postgres",
		"GATEHOUSE_STORAGE_DSN=postgres://db/gh",
		"GATEHOUSE_SECRETS_KEY_ENCRYPTION_KEY=" + strings.TrimRight(testKEK, "="),
		"GATEHOUSE_IDP_SIGNING_ALGORITHM=ES256",
		"GATEHOUSE_IDP_TRUSTED_PROXIES= 10.0.0.0/8 ,fd00::/8,,",
		"GATEHOUSE_IDP_ACCESS_TOKEN_TTL=5m",
		"GATEHOUSE_IDP_CLAIMS_GROUPS=true",
		"GATEHOUSE_IDP_CLAIMS_ROLES=0",
		"GATEHOUSE_IDP_THROTTLE_IP_MAX_FAILURES=20",
		"GATEHOUSE_IDP_TLS_CERT_FILE=/c.pem",
		"GATEHOUSE_IDP_TLS_KEY_FILE=/k.pem",
		"GATEHOUSE_LOG_LEVEL=debug",
		"GATEHOUSE_LOG_LEVEL=warn", // the last one wins
		// read by other parts of Gatehouse, ignored here
		"GATEHOUSE_CONFIG=/etc/gatehouse.yaml",
		"GATEHOUSE_ADMIN_TOKEN=secret-admin-token",
		"GATEHOUSE_ADMIN_URL=http://127.0.0.1:8081",
		"GATEHOUSE_TEST_POSTGRES_DSN=postgres://test",
	}
	cfg, warns, err := Load(strings.NewReader(minimalYAML), env)
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name string
		ok   bool
	}{
		{"storage.driver", cfg.Storage.Driver == "postgres"},
		{"storage.dsn", cfg.Storage.DSN == "postgres://db/gh"},
		{"secrets.key_encryption_key", cfg.Secrets.KeyEncryptionKey == strings.TrimRight(testKEK, "=")},
		{"secrets.pepper from file", cfg.Secrets.Pepper == testPepper},
		{"idp.signing.algorithm", cfg.IDP.Signing.Algorithm == "ES256"},
		{"idp.trusted_proxies", slices.Equal(cfg.IDP.TrustedProxies, []string{"10.0.0.0/8", "fd00::/8"})},
		{"idp.access_token_ttl", cfg.IDP.AccessTokenTTL == 5*minute},
		{"idp.claims.groups", cfg.IDP.Claims.Groups},
		{"idp.claims.roles", !cfg.IDP.Claims.Roles},
		{"idp.throttle.ip_max_failures", cfg.IDP.Throttle.IPMaxFailures == 20},
		{"idp.tls", cfg.IDP.TLS.Enabled()},
		{"log.level", cfg.Log.Level == "warn"},
		{"untouched default", cfg.IDP.IDTokenTTL == hour},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("%s not overridden as expected: %+v", c.name, cfg)
		}
	}
	if len(warns) != 0 {
		t.Errorf("unexpected warnings %v", warns)
	}
}

func TestEnvErrors(t *testing.T) {
	tests := []struct {
		name     string
		env      []string
		wantErrs []string
	}{
		{"unknown variable", []string{"GATEHOUSE_FOO=1"},
			[]string{"GATEHOUSE_FOO: unknown environment variable (no such configuration key)"}},
		{"typo in a known key", []string{"GATEHOUSE_STORAGE_DNS=x"},
			[]string{"GATEHOUSE_STORAGE_DNS: unknown environment variable (no such configuration key)"}},
		{"section is not a key", []string{"GATEHOUSE_IDP=x"},
			[]string{"GATEHOUSE_IDP: unknown environment variable (no such configuration key)"}},
		{"lower-case is not ours", []string{"gatehouse_foo=1"}, nil},
		{"bad duration", []string{"GATEHOUSE_IDP_ACCESS_TOKEN_TTL=600"},
			[]string{"idp.access_token_ttl: must be a duration with a unit, e.g. 30s, 10m or 1h30m (from GATEHOUSE_IDP_ACCESS_TOKEN_TTL)"}},
		{"bad bool", []string{"GATEHOUSE_IDP_DEV_MODE=yes"},
			[]string{"idp.dev_mode: must be true or false (from GATEHOUSE_IDP_DEV_MODE)"}},
		{"bad int", []string{"GATEHOUSE_IDP_THROTTLE_ACCOUNT_MAX_FAILURES=five"},
			[]string{"idp.throttle.account_max_failures: must be an integer (from GATEHOUSE_IDP_THROTTLE_ACCOUNT_MAX_FAILURES)"}},
		{"env values are validated", []string{"GATEHOUSE_IDP_AUTH_CODE_TTL=1h", "GATEHOUSE_IDP_TRUSTED_PROXIES=10.0.0.0/8,bogus"},
			[]string{"idp.trusted_proxies[1]: must be a CIDR such as 10.0.0.0/8 or fd00::/8", "idp.auth_code_ttl: must be between 1m and 10m"}},
		{"all reported together", []string{"GATEHOUSE_FOO=1", "GATEHOUSE_BAR=2", "GATEHOUSE_LOG_LEVEL=loud"},
			[]string{
				"GATEHOUSE_FOO: unknown environment variable (no such configuration key)",
				"GATEHOUSE_BAR: unknown environment variable (no such configuration key)",
				"log.level: must be one of debug, info, warn, error",
			}},
		{"empty value clears a string", []string{"GATEHOUSE_STORAGE_DSN="}, []string{"storage.dsn: required"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := Load(strings.NewReader(minimalYAML), tt.env)
			if got := errLines(err); !slices.Equal(got, tt.wantErrs) {
				t.Errorf("errors:\n got %q\nwant %q", got, tt.wantErrs)
			}
		})
	}
}

func TestKeys(t *testing.T) {
	keys, err := Keys()
	if err != nil {
		t.Fatal(err)
	}
	byPath := map[string]string{}
	for _, k := range keys {
		byPath[k.Path] = k.Env
	}
	for path, env := range map[string]string{
		"issuer":                     "GATEHOUSE_ISSUER",
		"storage.dsn":                "GATEHOUSE_STORAGE_DSN",
		"secrets.key_encryption_key": "GATEHOUSE_SECRETS_KEY_ENCRYPTION_KEY",
		"idp.signing.algorithm":      "GATEHOUSE_IDP_SIGNING_ALGORITHM",
		"idp.trusted_proxies":        "GATEHOUSE_IDP_TRUSTED_PROXIES",
		"idp.session.idle_timeout":   "GATEHOUSE_IDP_SESSION_IDLE_TIMEOUT",
	} {
		if byPath[path] != env {
			t.Errorf("%s: env %q, want %q", path, byPath[path], env)
		}
	}
	if len(keys) != 99 {
		t.Errorf("%d keys; update this test and docs/configuration.md when adding keys", len(keys))
	}
}
