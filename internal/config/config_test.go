package config

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

const (
	testKEK    = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=" // 32 bytes
	testPepper = "cGVwcGVyLXBlcHBlci1wZXBwZXItcGVwcGVyLXBlcHA=" // 32 bytes
	testShort  = "c2hvcnQtMTYtYnl0ZXMhIQ=="                     // 16 bytes
	testToken  = "10a4c7c9fc5206d6f36dc6944a81bb6f4a3cb0e25014ae3b12e6c3e52712292a"
)

// minimalYAML is the smallest valid document.
const minimalYAML = `issuer: https://auth.example.com
storage:
  dsn: "file:test.db"
secrets:
  key_encryption_key: ` + testKEK + `
  pepper: ` + testPepper + `
admin:
  token_sha256: ` + testToken + `
`

// valid returns a configuration that passes Validate without warnings.
func valid() Config {
	c := Default()
	c.Issuer = "https://auth.example.com"
	c.Storage.DSN = "file:test.db"
	c.Secrets = SecretsConfig{KeyEncryptionKey: testKEK, Pepper: testPepper}
	c.Admin.TokenSHA256 = testToken
	c.IDP.Listen = "127.0.0.1:8080"
	return c
}

// errLines splits a joined error into its lines.
func errLines(err error) []string {
	if err == nil {
		return nil
	}
	return strings.Split(err.Error(), "\n")
}

func warnKeys(ws []Warning) []string {
	var keys []string
	for _, w := range ws {
		keys = append(keys, w.Key)
	}
	return keys
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name      string
		mod       func(*Config)
		wantErrs  []string // every error line, in order
		wantWarns []string // warning keys, in order
	}{
		{name: "valid", mod: func(*Config) {}},
		{name: "issuer/required", mod: func(c *Config) { c.Issuer = "" }, wantErrs: []string{"issuer: required"}},
		{name: "issuer/path allowed", mod: func(c *Config) { c.Issuer = "https://example.com/tenants/a" }},
		{name: "issuer/port allowed", mod: func(c *Config) { c.Issuer = "https://example.com:8443" }},
		{name: "issuer/empty port", mod: func(c *Config) { c.Issuer = "https://auth.example.com:" },
			wantErrs: []string{"issuer: port must be between 1 and 65535"}},
		{name: "issuer/relative", mod: func(c *Config) { c.Issuer = "auth.example.com" },
			wantErrs: []string{"issuer: must be an absolute https URL such as https://auth.example.com"}},
		{name: "issuer/trailing slash", mod: func(c *Config) { c.Issuer = "https://auth.example.com/" },
			wantErrs: []string{"issuer: must not end with a slash"}},
		{name: "issuer/query", mod: func(c *Config) { c.Issuer = "https://auth.example.com?a=b" },
			wantErrs: []string{"issuer: must not have a query or fragment"}},
		{name: "issuer/empty query", mod: func(c *Config) { c.Issuer = "https://auth.example.com?" },
			wantErrs: []string{"issuer: must not have a query or fragment"}},
		{name: "issuer/fragment", mod: func(c *Config) { c.Issuer = "https://auth.example.com#x" },
			wantErrs: []string{"issuer: must not have a query or fragment"}},
		{name: "issuer/userinfo", mod: func(c *Config) { c.Issuer = "https://u:p@auth.example.com" },
			wantErrs: []string{"issuer: must not contain user info"}},
		{name: "issuer/upper-case host", mod: func(c *Config) { c.Issuer = "https://Auth.example.com" },
			wantErrs: []string{"issuer: must be in canonical form (lower-case scheme and host)"}},
		{name: "issuer/dot segments", mod: func(c *Config) { c.Issuer = "https://auth.example.com/a/../b" },
			wantErrs: []string{"issuer: path must be clean and unescaped"}},
		{name: "issuer/escaped path", mod: func(c *Config) { c.Issuer = "https://auth.example.com/%61" },
			wantErrs: []string{"issuer: path must be clean and unescaped"}},
		{name: "issuer/ftp", mod: func(c *Config) { c.Issuer = "ftp://auth.example.com" },
			wantErrs: []string{"issuer: must use https (http only for localhost, 127.0.0.1 or [::1])"}},
		{name: "issuer/http public host", mod: func(c *Config) { c.Issuer = "http://auth.example.com" },
			wantErrs: []string{"issuer: must use https (http only for localhost, 127.0.0.1 or [::1])"}},
		{name: "issuer/http lookalike loopback", mod: func(c *Config) { c.Issuer = "http://localhost.evil.com" },
			wantErrs: []string{"issuer: must use https (http only for localhost, 127.0.0.1 or [::1])"}},
		{name: "issuer/http localhost warns", mod: func(c *Config) { c.Issuer = "http://localhost:8080" },
			wantWarns: []string{"issuer"}},
		{name: "issuer/http 127.0.0.1 warns", mod: func(c *Config) { c.Issuer = "http://127.0.0.1:8080" },
			wantWarns: []string{"issuer"}},
		{name: "issuer/http [::1] warns", mod: func(c *Config) { c.Issuer = "http://[::1]:8080" },
			wantWarns: []string{"issuer"}},
		{name: "issuer/http public host in dev mode warns", mod: func(c *Config) {
			c.Issuer = "http://gatehouse:8080"
			c.IDP.DevMode = true
		}, wantWarns: []string{"issuer", "idp.dev_mode"}},
		{name: "log/bad values", mod: func(c *Config) { c.Log = LogConfig{Level: "trace", Format: "xml"} },
			wantErrs: []string{"log.level: must be one of debug, info, warn, error", "log.format: must be one of json, text"}},
		{name: "storage/driver", mod: func(c *Config) { c.Storage.Driver = "mysql" },
			wantErrs: []string{"storage.driver: must be one of sqlite, postgres"}},
		{name: "storage/postgres", mod: func(c *Config) { c.Storage = StorageConfig{Driver: "postgres", DSN: "postgres://u:pw@db/gh"} }},
		{name: "storage/dsn required", mod: func(c *Config) { c.Storage.DSN = "" }, wantErrs: []string{"storage.dsn: required"}},
		{name: "secrets/required", mod: func(c *Config) { c.Secrets = SecretsConfig{} }, wantErrs: []string{
			"secrets.key_encryption_key: required (base64 of 32 random bytes, e.g. openssl rand -base64 32)",
			"secrets.pepper: required (base64 of at least 32 random bytes, e.g. openssl rand -base64 32)",
		}},
		{name: "secrets/url alphabet unpadded", mod: func(c *Config) {
			c.Secrets.KeyEncryptionKey = strings.TrimRight(testKEK, "=")
			c.Secrets.Pepper = "_-_-" + strings.TrimRight(testPepper, "=")[4:]
		}},
		{name: "secrets/too short", mod: func(c *Config) { c.Secrets = SecretsConfig{KeyEncryptionKey: testShort, Pepper: testShort} }, wantErrs: []string{
			"secrets.key_encryption_key: must be base64 of exactly 32 bytes",
			"secrets.pepper: must be base64 of at least 32 bytes",
		}},
		{name: "secrets/not base64", mod: func(c *Config) { c.Secrets.Pepper = "not base64!" },
			wantErrs: []string{"secrets.pepper: must be base64 of at least 32 bytes"}},
		{name: "secrets/pepper equals kek", mod: func(c *Config) { c.Secrets.Pepper = testKEK },
			wantErrs: []string{"secrets.pepper: must differ from secrets.key_encryption_key"}},
		{name: "admin/disabled needs no token", mod: func(c *Config) { c.Admin = AdminConfig{} }},
		{name: "admin/token required", mod: func(c *Config) { c.Admin.TokenSHA256 = "" },
			wantErrs: []string{"admin.token_sha256: required when admin.listen is set (hex SHA-256 of the admin token)"}},
		{name: "admin/token not hex", mod: func(c *Config) { c.Admin.TokenSHA256 = "admin-token" },
			wantErrs: []string{"admin.token_sha256: must be 64 hex digits (SHA-256)"}},
		{name: "admin/public listen warns", mod: func(c *Config) { c.Admin.Listen = ":8081" }, wantWarns: []string{"admin.listen"}},
		{name: "admin/bad listen", mod: func(c *Config) { c.Admin.Listen = "8081" },
			wantErrs: []string{"admin.listen: must be host:port, e.g. 127.0.0.1:8080 or :8080"}},
		{name: "admin/hostname listen", mod: func(c *Config) { c.Admin.Listen = "example.com:8081" },
			wantErrs: []string{"admin.listen: host must be an IP address or localhost"}},
		{name: "idp/listen required", mod: func(c *Config) { c.IDP.Listen = "" }, wantErrs: []string{"idp.listen: required"}},
		{name: "idp/bad port", mod: func(c *Config) { c.IDP.Listen = ":99999" },
			wantErrs: []string{"idp.listen: port must be a number between 0 and 65535"}},
		{name: "idp/public listen without tls warns", mod: func(c *Config) { c.IDP.Listen = ":8080" }, wantWarns: []string{"idp.listen"}},
		{name: "idp/public listen with tls", mod: func(c *Config) {
			c.IDP.Listen = ":8443"
			c.IDP.TLS = TLSConfig{CertFile: "c.pem", KeyFile: "k.pem"}
		}},
		{name: "idp/tls half", mod: func(c *Config) { c.IDP.TLS.CertFile = "c.pem" },
			wantErrs: []string{"idp.tls: set both cert_file and key_file, or neither"}},
		{name: "GW-02/trusted proxies parse", mod: func(c *Config) { c.IDP.TrustedProxies = []string{"10.0.0.0/8", "fd00::/8", "10.0.0.1", "10.0.0.1/8"} },
			wantErrs: []string{
				"idp.trusted_proxies[2]: must be a CIDR such as 10.0.0.0/8 or fd00::/8",
				"idp.trusted_proxies[3]: has host bits set; did you mean 10.0.0.0/8?",
			}},
		{name: "idp/access token ttl", mod: func(c *Config) { c.IDP.AccessTokenTTL = 30 * second },
			wantErrs: []string{"idp.access_token_ttl: must be between 1m and 24h"}},
		{name: "idp/id token ttl", mod: func(c *Config) { c.IDP.IDTokenTTL = 30 * second },
			wantErrs: []string{"idp.id_token_ttl: must be between 1m and 24h"}},
		{name: "OA-C/auth code ttl below 1m", mod: func(c *Config) { c.IDP.AuthCodeTTL = 10 * second },
			wantErrs: []string{"idp.auth_code_ttl: must be between 1m and 10m"}},
		{name: "OA-C/auth code ttl above 10m", mod: func(c *Config) { c.IDP.AuthCodeTTL = 11 * minute },
			wantErrs: []string{"idp.auth_code_ttl: must be between 1m and 10m"}},
		{name: "OA-C/auth code ttl 10m", mod: func(c *Config) { c.IDP.AuthCodeTTL = 10 * minute }},
		{name: "idp/auth request ttl", mod: func(c *Config) { c.IDP.AuthRequestTTL = 2 * hour },
			wantErrs: []string{"idp.auth_request_ttl: must be between 1m and 1h"}},
		{name: "OA-T/refresh max below idle", mod: func(c *Config) { c.IDP.RefreshTokenMaxTTL = 700 * hour },
			wantErrs: []string{"idp.refresh_token_max_ttl: must be at least idp.refresh_token_idle_ttl (720h)"}},
		{name: "OA-T/refresh idle too long", mod: func(c *Config) { c.IDP.RefreshTokenIdleTTL = 9000 * hour },
			wantErrs: []string{
				"idp.refresh_token_idle_ttl: must be between 1h and 8760h",
				"idp.refresh_token_max_ttl: must be at least idp.refresh_token_idle_ttl (9000h)",
			}},
		{name: "SE-03/absolute below idle", mod: func(c *Config) { c.IDP.Session.AbsoluteTimeout = 10 * minute },
			wantErrs: []string{"idp.session.absolute_timeout: must be at least idp.session.idle_timeout (30m)"}},
		{name: "SE-03/absolute too long", mod: func(c *Config) { c.IDP.Session.AbsoluteTimeout = 721 * hour },
			wantErrs: []string{"idp.session.absolute_timeout: must be at most 720h"}},
		{name: "SE-03/zero idle", mod: func(c *Config) { c.IDP.Session.IdleTimeout = 0 },
			wantErrs: []string{"idp.session.idle_timeout: must be between 1m and 24h"}},
		{name: "signing/algorithm", mod: func(c *Config) { c.IDP.Signing.Algorithm = "none" },
			wantErrs: []string{"idp.signing.algorithm: must be one of RS256, ES256, EdDSA"}},
		{name: "signing/algorithm case", mod: func(c *Config) { c.IDP.Signing.Algorithm = "rs256" },
			wantErrs: []string{"idp.signing.algorithm: must be one of RS256, ES256, EdDSA"}},
		{name: "signing/ES256 and EdDSA", mod: func(c *Config) { c.IDP.Signing.Algorithm = "EdDSA" }},
		{name: "signing/rotation disabled", mod: func(c *Config) { c.IDP.Signing.RotationPeriod = 0 }},
		{name: "signing/rotation too short", mod: func(c *Config) { c.IDP.Signing.RotationPeriod = 30 * minute },
			wantErrs: []string{
				"idp.signing.rotation_period: must be between 1h and 8760h",
				"idp.signing.publish_ahead: must be less than idp.signing.rotation_period (30m)",
			}},
		{name: "signing/publish ahead not above jwks max age", mod: func(c *Config) { c.IDP.Signing.PublishAhead = 15 * minute },
			wantErrs: []string{"idp.signing.publish_ahead: must be greater than idp.signing.jwks_max_age + idp.signing.refresh_interval (15m30s), or caches miss the new key"}},
		{name: "signing/retain below token ttl", mod: func(c *Config) {
			c.IDP.IDTokenTTL = 2 * hour
			c.IDP.Signing.RetainAfter = 90 * minute
		}, wantErrs: []string{"idp.signing.retain_after: must be at least the longest token lifetime (2h), or live tokens stop verifying"}},
		{name: "signing/refresh interval", mod: func(c *Config) { c.IDP.Signing.RefreshInterval = 0 },
			wantErrs: []string{"idp.signing.refresh_interval: must be between 1s and 10m"}},
		{name: "BF-01/throttle bounds", mod: func(c *Config) {
			c.IDP.Throttle = ThrottleConfig{AccountMaxFailures: 0, AccountWindow: 0, IPMaxFailures: -1, IPWindow: 48 * hour}
		}, wantErrs: []string{
			"idp.throttle.account_window: must be between 1m and 24h",
			"idp.throttle.ip_window: must be between 1m and 24h",
			"idp.throttle.account_max_failures: must be between 1 and 1000",
			"idp.throttle.ip_max_failures: must be between 1 and 100000",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := valid()
			tt.mod(&c)
			warns, err := c.Validate()
			if got := errLines(err); !slices.Equal(got, tt.wantErrs) {
				t.Errorf("errors:\n got %q\nwant %q", got, tt.wantErrs)
			}
			if got := warnKeys(warns); !slices.Equal(got, tt.wantWarns) {
				t.Errorf("warnings: got %q, want %q", got, tt.wantWarns)
			}
		})
	}
}

func TestValidateErrorsAreFieldErrors(t *testing.T) {
	c := valid()
	c.Log.Level = "loud"
	_, err := c.Validate()
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Key != "log.level" {
		t.Fatalf("errors.As FieldError: got %v", err)
	}
}

// TestSectionValidate checks that each component's own Validate agrees with
// the document-level one.
func TestSectionValidate(t *testing.T) {
	c := Default()
	checks := []struct {
		name string
		run  func() ([]Warning, error)
		want string
	}{
		{"log", c.Log.Validate, ""},
		{"storage", c.Storage.Validate, "storage.dsn: required"},
		{"secrets", c.Secrets.Validate, "secrets.key_encryption_key: required"},
		{"admin", c.Admin.Validate, "admin.token_sha256: required"},
		{"idp", c.IDP.Validate, ""},
	}
	for _, tt := range checks {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.run()
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("got %v, want %q", err, tt.want)
			}
		})
	}
}

func TestLoad(t *testing.T) {
	tests := []struct {
		name     string
		doc      string
		wantErrs []string
	}{
		{name: "minimal", doc: minimalYAML},
		{name: "unknown top-level key", doc: minimalYAML + "issuer_url: x\n",
			wantErrs: []string{"issuer_url: unknown key (line 9)"}},
		{name: "unknown key in log", doc: minimalYAML + "log:\n  levle: debug\n",
			wantErrs: []string{"log.levle: unknown key (line 10)"}},
		{name: "unknown key in storage", doc: "storage:\n  dsnn: x\n",
			wantErrs: []string{"storage.dsnn: unknown key (line 2)"}},
		{name: "unknown key in secrets", doc: "secrets:\n  kek: x\n",
			wantErrs: []string{"secrets.kek: unknown key (line 2)"}},
		{name: "unknown key in admin", doc: "admin:\n  token: x\n",
			wantErrs: []string{"admin.token: unknown key (line 2)"}},
		{name: "unknown key in idp", doc: minimalYAML + "idp:\n  access_ttl: 5m\n",
			wantErrs: []string{"idp.access_ttl: unknown key (line 10)"}},
		{name: "unknown key in idp.signing", doc: minimalYAML + "idp:\n  signing:\n    alg: none\n",
			wantErrs: []string{"idp.signing.alg: unknown key (line 11)"}},
		{name: "unknown key in idp.tls", doc: minimalYAML + "idp:\n  tls:\n    ca_file: x\n",
			wantErrs: []string{"idp.tls.ca_file: unknown key (line 11)"}},
		{name: "unknown key in idp.session", doc: minimalYAML + "idp:\n  session:\n    timeout: 1h\n",
			wantErrs: []string{"idp.session.timeout: unknown key (line 11)"}},
		{name: "unknown key in idp.claims", doc: minimalYAML + "idp:\n  claims:\n    email: true\n",
			wantErrs: []string{"idp.claims.email: unknown key (line 11)"}},
		{name: "unknown key in idp.throttle", doc: minimalYAML + "idp:\n  throttle:\n    max: 1\n",
			wantErrs: []string{"idp.throttle.max: unknown key (line 11)"}},
		{name: "unknown key in flow mapping", doc: minimalYAML + "log: {colour: true, level: info}\n",
			wantErrs: []string{"log.colour: unknown key (line 9)"}},
		{name: "duplicate key in flow mapping", doc: minimalYAML + "log: {level: info, format: json, level: debug}\n",
			wantErrs: []string{"log.level: duplicate key (first defined at line 9) (line 9)"}},
		{name: "wrong type in a list", doc: minimalYAML + "idp:\n  trusted_proxies:\n    - 10.0.0.0/8\n    - {cidr: 10.0.0.0/8}\n",
			wantErrs: []string{"idp.trusted_proxies[1]: cannot use a map value here, want a string (line 12)"}},
		{name: "duplicate top-level key", doc: minimalYAML + "issuer: https://evil.example.com\n",
			wantErrs: []string{"issuer: duplicate key (first defined at line 1) (line 9)"}},
		{name: "duplicate nested key", doc: minimalYAML + "idp:\n  signing:\n    algorithm: ES256\n    algorithm: RS256\n",
			wantErrs: []string{"idp.signing.algorithm: duplicate key (first defined at line 11) (line 12)"}},
		{name: "duplicate section", doc: minimalYAML + "log:\n  level: info\nlog:\n  format: text\n",
			wantErrs: []string{"log: duplicate key (first defined at line 9) (line 11)"}},
		{name: "two documents", doc: minimalYAML + "---\nissuer: https://other.example.com\n",
			wantErrs: []string{"the file must hold exactly one YAML document"}},
		{name: "two documents, second empty", doc: minimalYAML + "---\n",
			wantErrs: []string{"the file must hold exactly one YAML document"}},
		{name: "duration without unit", doc: minimalYAML + "idp:\n  access_token_ttl: 600\n",
			wantErrs: []string{"idp.access_token_ttl: must be a duration with a unit, e.g. 30s, 10m or 1h30m (line 10)"}},
		{name: "duration garbage", doc: minimalYAML + "idp:\n  session:\n    idle_timeout: soon\n",
			wantErrs: []string{"idp.session.idle_timeout: must be a duration with a unit, e.g. 30s, 10m or 1h30m (line 11)"}},
		{name: "duration mapping", doc: minimalYAML + "idp:\n  id_token_ttl: {h: 1}\n",
			wantErrs: []string{"idp.id_token_ttl: must be a duration with a unit, e.g. 30s, 10m or 1h30m (line 10)"}},
		{name: "duration zero without unit", doc: minimalYAML + "idp:\n  signing:\n    rotation_period: 0\n"},
		{name: "int as string", doc: minimalYAML + "idp:\n  throttle:\n    ip_max_failures: many\n",
			wantErrs: []string{"idp.throttle.ip_max_failures: cannot use a str value here, want an integer (line 11)"}},
		{name: "bool as yes", doc: minimalYAML + "idp:\n  dev_mode: maybe\n",
			wantErrs: []string{"idp.dev_mode: cannot use a str value here, want true or false (line 10)"}},
		{name: "section as scalar", doc: minimalYAML + "idp: on\n",
			wantErrs: []string{"idp: cannot use a str value here, want a mapping (line 9)"}},
		{name: "list as scalar", doc: minimalYAML + "idp:\n  trusted_proxies: 10.0.0.0/8\n",
			wantErrs: []string{"idp.trusted_proxies: cannot use a str value here, want a list (line 10)"}},
		{name: "document is a list", doc: "- a\n- b\n",
			wantErrs: []string{"cannot use a seq value here, want a mapping (line 1)"}},
		{name: "syntax error", doc: "issuer: [\n",
			wantErrs: []string{"invalid YAML: line 1: did not find expected node content"}},
		{name: "decode errors reported together", doc: minimalYAML + "log:\n  levle: x\nidp:\n  auth_code_ttl: 60\n  foo: 1\n",
			wantErrs: []string{
				"log.levle: unknown key (line 10)",
				"idp.auth_code_ttl: must be a duration with a unit, e.g. 30s, 10m or 1h30m (line 12)",
				"idp.foo: unknown key (line 13)",
			}},
		{name: "validation errors reported together", doc: minimalYAML + "log:\n  level: loud\nidp:\n  auth_code_ttl: 1h\n",
			wantErrs: []string{
				"log.level: must be one of debug, info, warn, error",
				"idp.auth_code_ttl: must be between 1m and 10m",
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, _, err := Load(strings.NewReader(tt.doc), nil)
			if got := errLines(err); !slices.Equal(got, tt.wantErrs) {
				t.Fatalf("errors:\n got %q\nwant %q", got, tt.wantErrs)
			}
			if err != nil && cfg.Issuer != "" {
				t.Errorf("a failed Load returned a non-zero Config")
			}
		})
	}
}

func TestLoadEmptyDocumentKeepsDefaults(t *testing.T) {
	env := []string{
		"GATEHOUSE_ISSUER=https://auth.example.com",
		"GATEHOUSE_STORAGE_DSN=file:x.db",
		"GATEHOUSE_SECRETS_KEY_ENCRYPTION_KEY=" + testKEK,
		"GATEHOUSE_SECRETS_PEPPER=" + testPepper,
		"GATEHOUSE_ADMIN_LISTEN=",
	}
	for _, doc := range []string{"", "# only a comment\n", "---\n"} {
		cfg, _, err := Load(strings.NewReader(doc), env)
		if err != nil {
			t.Fatalf("Load(%q): %v", doc, err)
		}
		want := Default()
		want.Issuer, want.Storage.DSN = "https://auth.example.com", "file:x.db"
		want.Secrets = SecretsConfig{KeyEncryptionKey: testKEK, Pepper: testPepper}
		want.Admin.Listen = ""
		if fmt.Sprintf("%#v", cfg) != fmt.Sprintf("%#v", want) || cfg.Secrets != want.Secrets || cfg.Storage != want.Storage {
			t.Errorf("Load(%q) = %+v, want %+v", doc, cfg, want)
		}
	}
}

func TestLoadTooLarge(t *testing.T) {
	doc := minimalYAML + "# " + strings.Repeat("x", MaxDocumentSize) + "\n"
	if _, _, err := Load(strings.NewReader(doc), nil); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("got %v, want a size error", err)
	}
}

func TestLoadFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gatehouse.yaml")
	if err := os.WriteFile(path, []byte(minimalYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, warns, err := LoadFile(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Issuer != "https://auth.example.com" || cfg.IDP.Signing.Algorithm != "RS256" {
		t.Errorf("unexpected config %+v", cfg)
	}
	if got := warnKeys(warns); !slices.Equal(got, []string{"idp.listen"}) {
		t.Errorf("warnings %q, want the default public idp.listen warning", got)
	}
	if _, _, err := LoadFile(filepath.Join(t.TempDir(), "missing.yaml"), nil); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: got %v, want os.ErrNotExist", err)
	}
}

// TestSecretsNeverPrinted feeds bad and good secrets through every path that
// produces text and checks that no secret value comes out.
func TestSecretsNeverPrinted(t *testing.T) {
	const dsn = "postgres://gatehouse:hunter2-db-password@db/gh"
	secretValues := []string{testShort, "not-base64-but-secret!", testKEK, testPepper, "hunter2-db-password"}
	docs := []string{
		strings.ReplaceAll(strings.ReplaceAll(minimalYAML, testKEK, testShort), testPepper, "not-base64-but-secret!"),
		minimalYAML + "log:\n  level: " + testKEK + "\n",
		minimalYAML + "idp:\n  access_token_ttl: " + testPepper + "\n",
		minimalYAML + "idp:\n  throttle:\n    ip_max_failures: " + testPepper + "\n",
		minimalYAML + "idp:\n  dev_mode: " + testKEK + "\n",
	}
	env := [][]string{nil, {"GATEHOUSE_IDP_ACCESS_TOKEN_TTL=" + testKEK, "GATEHOUSE_IDP_DEV_MODE=" + testPepper,
		"GATEHOUSE_IDP_THROTTLE_IP_MAX_FAILURES=" + testKEK, "GATEHOUSE_SECRETS_PEPPER=" + testShort}}
	for i, doc := range docs {
		for _, e := range env {
			_, _, err := Load(strings.NewReader(doc), e)
			if err == nil {
				t.Fatalf("doc %d: want an error", i)
			}
			for _, s := range secretValues {
				if strings.Contains(err.Error(), s) {
					t.Errorf("doc %d: error text contains secret %q:\n%v", i, s, err)
				}
			}
		}
	}

	c := valid()
	c.Storage.DSN = dsn
	var logged strings.Builder
	slog.New(slog.NewTextHandler(&logged, nil)).Info("config", "cfg", c, "secrets", c.Secrets, "storage", c.Storage)
	outputs := []string{fmt.Sprintf("%v", c), fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c), fmt.Sprint(c.Secrets), logged.String()}
	for _, out := range outputs {
		for _, s := range secretValues {
			if strings.Contains(out, s) {
				t.Errorf("output contains secret %q:\n%s", s, out)
			}
		}
	}
	if kek, err := c.Secrets.KEK(); err != nil || len(kek) != 32 {
		t.Errorf("KEK() = %d bytes, %v", len(kek), err)
	}
	if pep, err := c.Secrets.PepperBytes(); err != nil || len(pep) != 32 {
		t.Errorf("PepperBytes() = %d bytes, %v", len(pep), err)
	}
	if _, err := (SecretsConfig{Pepper: testShort}).PepperBytes(); err == nil || strings.Contains(err.Error(), testShort) {
		t.Errorf("PepperBytes on a short pepper: %v", err)
	}
}

func TestDuration(t *testing.T) {
	tests := []struct {
		in   string
		want Duration
		ok   bool
	}{
		{"10m", 10 * minute, true},
		{"1h30m", 90 * minute, true},
		{"1.5h", 90 * minute, true},
		{"500ms", Duration(500e6), true},
		{"0", 0, true},
		{"0s", 0, true},
		{"-1m", -minute, true}, // sign is for Validate to reject
		{"600", 0, false},
		{"1e3", 0, false},
		{"", 0, false},
		{"m", 0, false},
		{"10 m", 0, false},
		{"10M", 0, false},
	}
	for _, tt := range tests {
		got, err := parseDuration(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("parseDuration(%q) = %v, %v; want %v, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
	for d, want := range map[Duration]string{minute: "1m", 24 * hour: "24h", 90 * minute: "1h30m", 90 * second: "1m30s", 0: "0s", 30 * second: "30s"} {
		if d.String() != want {
			t.Errorf("String(%d) = %q, want %q", d, d.String(), want)
		}
	}
}

func TestTrustedProxyPrefixes(t *testing.T) {
	c := IDPConfig{TrustedProxies: []string{"10.0.0.0/8", "fd00::/8"}}
	got, err := c.TrustedProxyPrefixes()
	if err != nil || len(got) != 2 || !got[0].Contains(mustAddr(t, "10.1.2.3")) || got[1].Contains(mustAddr(t, "10.1.2.3")) {
		t.Fatalf("got %v, %v", got, err)
	}
	if _, err := (IDPConfig{TrustedProxies: []string{"nope"}}).TrustedProxyPrefixes(); err == nil {
		t.Fatal("want an error for a bad CIDR")
	}
}

// TestYAMLRejectsDuplicateKeys pins the yaml.v3 behaviour the strict decoder
// relies on, independent of Load's own duplicate check.
func TestYAMLRejectsDuplicateKeys(t *testing.T) {
	var c Config
	dec := yaml.NewDecoder(strings.NewReader("log:\n  level: info\n  level: debug\n"))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err == nil || !strings.Contains(err.Error(), `mapping key "level" already defined at line 2`) {
		t.Fatalf("yaml.v3 accepted a duplicate key: %v", err)
	}
}

func TestHelpers(t *testing.T) {
	for level, want := range map[string]slog.Level{"debug": slog.LevelDebug, "info": slog.LevelInfo, "warn": slog.LevelWarn, "error": slog.LevelError} {
		if got := (LogConfig{Level: level}).SlogLevel(); got != want {
			t.Errorf("SlogLevel(%s) = %v", level, got)
		}
	}
	if h, err := (AdminConfig{TokenSHA256: testToken}).TokenHash(); err != nil || len(h) != 32 {
		t.Errorf("TokenHash() = %x, %v", h, err)
	}
	if _, err := (AdminConfig{TokenSHA256: "abc"}).TokenHash(); err == nil {
		t.Error("TokenHash accepted a short hash")
	}
}

// TestMarshalRoundTrip checks that a marshalled configuration loads back
// unchanged (durations are written as strings with units).
func TestMarshalRoundTrip(t *testing.T) {
	c := valid()
	c.IDP.TrustedProxies = []string{"10.0.0.0/8"}
	c.IDP.Signing.RefreshInterval = 90 * second
	out, err := yaml.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "refresh_interval: 1m30s") {
		t.Errorf("durations not written as strings:\n%s", out)
	}
	got, _, err := Load(strings.NewReader(string(out)), nil)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if fmt.Sprintf("%#v", normalize(got)) != fmt.Sprintf("%#v", normalize(c)) || got.Secrets != c.Secrets || got.Storage != c.Storage {
		t.Errorf("round trip changed the configuration:\n%s", out)
	}
	if got.IDP.AccessTokenTTL.Std().Minutes() != 10 {
		t.Errorf("Std() = %v", got.IDP.AccessTokenTTL.Std())
	}
}
