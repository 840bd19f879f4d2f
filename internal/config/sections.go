package config

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"path"
	"strconv"
	"strings"
)

// validateIssuer checks the issuer URL. It must be exactly the form that
// appears in tokens: https, lower-case, no user info, query, fragment or
// trailing slash. http is accepted for loopback hosts, and for any host in
// dev mode, with a warning.
func validateIssuer(r *report, issuer string, devMode bool) {
	const key = "issuer"
	if issuer == "" {
		r.errorf(key, "required")
		return
	}
	u, err := url.Parse(issuer)
	if err != nil || u.Opaque != "" || u.Host == "" {
		r.errorf(key, "must be an absolute https URL such as https://auth.example.com")
		return
	}
	switch {
	case u.User != nil:
		r.errorf(key, "must not contain user info")
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(issuer, "#"):
		r.errorf(key, "must not have a query or fragment")
	case strings.HasSuffix(issuer, "/"):
		r.errorf(key, "must not end with a slash")
	case issuer != strings.ToLower(u.Scheme)+"://"+strings.ToLower(u.Host)+u.EscapedPath():
		r.errorf(key, "must be in canonical form (lower-case scheme and host)")
	case u.Path != "" && (path.Clean(u.Path) != u.Path || u.RawPath != "" || strings.Contains(issuer, "%")):
		r.errorf(key, "path must be clean and unescaped")
	case u.Scheme == "https":
	case u.Scheme == "http" && isLoopbackHost(u.Hostname()):
		r.warnf(key, "plain http issuer: tokens and cookies travel unencrypted; use https outside local testing")
	case u.Scheme == "http" && devMode:
		r.warnf(key, "plain http issuer on a non-loopback host, allowed only because dev_mode is on")
	default:
		r.errorf(key, "must use https (http only for localhost, 127.0.0.1 or [::1])")
	}
	if p := u.Port(); p != "" || strings.HasSuffix(u.Host, ":") {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			r.errorf(key, "port must be between 1 and 65535")
		}
	}
}

// isLoopbackHost reports whether host (without port or brackets) is a loopback
// name or address.
func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

// validateListen checks a host:port listen address and reports whether its
// host is loopback. An empty host means every interface.
func validateListen(r *report, key, addr string) (loopback, ok bool) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		r.errorf(key, "must be host:port, e.g. 127.0.0.1:8080 or :8080")
		return false, false
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		r.errorf(key, "port must be a number between 0 and 65535")
		return false, false
	}
	if host != "" && host != "localhost" {
		if _, err := netip.ParseAddr(host); err != nil {
			r.errorf(key, "host must be an IP address or localhost")
			return false, false
		}
	}
	return isLoopbackHost(host), true
}

func oneOf(r *report, key, v string, allowed ...string) {
	for _, a := range allowed {
		if v == a {
			return
		}
	}
	r.errorf(key, "must be one of %s", strings.Join(allowed, ", "))
}

// LogConfig is the "log" section.
type LogConfig struct {
	Level  string `yaml:"level"`  // debug|info|warn|error
	Format string `yaml:"format"` // json|text
}

// SetDefaults sets level info, format json.
func (l *LogConfig) SetDefaults() { *l = LogConfig{Level: "info", Format: "json"} }

// Validate checks the section.
func (l *LogConfig) Validate() ([]Warning, error) { var r report; l.validate(&r); return r.result() }

func (l *LogConfig) validate(r *report) {
	oneOf(r, "log.level", l.Level, "debug", "info", "warn", "error")
	oneOf(r, "log.format", l.Format, "json", "text")
}

// SlogLevel returns the configured level as a slog.Level.
func (l LogConfig) SlogLevel() slog.Level {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(l.Level)); err != nil {
		return slog.LevelInfo
	}
	return lv
}

// StorageConfig is the "storage" section. The DSN may hold a password: it is
// never printed.
type StorageConfig struct {
	Driver string `yaml:"driver"` // sqlite|postgres
	DSN    string `yaml:"dsn"`
}

// SetDefaults sets driver sqlite; the DSN has no default.
func (s *StorageConfig) SetDefaults() { *s = StorageConfig{Driver: "sqlite"} }

// Validate checks the section.
func (s *StorageConfig) Validate() ([]Warning, error) {
	var r report
	s.validate(&r)
	return r.result()
}

func (s *StorageConfig) validate(r *report) {
	oneOf(r, "storage.driver", s.Driver, "sqlite", "postgres")
	if s.DSN == "" {
		r.errorf("storage.dsn", "required")
	}
}

// String hides the DSN.
func (s StorageConfig) String() string { return fmt.Sprintf("{Driver:%s DSN:REDACTED}", s.Driver) }

// GoString hides the DSN.
func (s StorageConfig) GoString() string { return s.String() }

// LogValue hides the DSN.
func (s StorageConfig) LogValue() slog.Value {
	return slog.GroupValue(slog.String("driver", s.Driver), slog.String("dsn", "REDACTED"))
}

// SecretsConfig is the "secrets" section: base64 key material. Values are
// never printed; use KEK and PepperBytes to get the decoded bytes.
type SecretsConfig struct {
	KeyEncryptionKey string `yaml:"key_encryption_key"` // 32 bytes; seals signing keys
	Pepper           string `yaml:"pepper"`             // >= 32 bytes; keyed hashes of client secrets, CSRF
}

// Key sizes.
const (
	KEKSize       = 32
	MinPepperSize = 32
)

// SetDefaults clears the secrets: they have no default.
func (s *SecretsConfig) SetDefaults() { *s = SecretsConfig{} }

// Validate checks the section.
func (s *SecretsConfig) Validate() ([]Warning, error) {
	var r report
	s.validate(&r)
	return r.result()
}

func (s *SecretsConfig) validate(r *report) {
	kek, kerr := s.KEK()
	if s.KeyEncryptionKey == "" {
		r.errorf("secrets.key_encryption_key", "required (base64 of %d random bytes, e.g. openssl rand -base64 32)", KEKSize)
	} else if kerr != nil {
		r.errorf("secrets.key_encryption_key", "must be base64 of exactly %d bytes", KEKSize)
	}
	pep, perr := s.PepperBytes()
	if s.Pepper == "" {
		r.errorf("secrets.pepper", "required (base64 of at least %d random bytes, e.g. openssl rand -base64 32)", MinPepperSize)
	} else if perr != nil {
		r.errorf("secrets.pepper", "must be base64 of at least %d bytes", MinPepperSize)
	}
	if kerr == nil && perr == nil && bytes.Equal(kek, pep) {
		r.errorf("secrets.pepper", "must differ from secrets.key_encryption_key")
	}
}

// KEK returns the decoded key-encryption key (exactly 32 bytes).
func (s SecretsConfig) KEK() ([]byte, error) {
	b, err := decodeBase64(s.KeyEncryptionKey)
	if err != nil || len(b) != KEKSize {
		return nil, fmt.Errorf("config: secrets.key_encryption_key: must be base64 of exactly %d bytes", KEKSize)
	}
	return b, nil
}

// PepperBytes returns the decoded pepper (at least 32 bytes).
func (s SecretsConfig) PepperBytes() ([]byte, error) {
	b, err := decodeBase64(s.Pepper)
	if err != nil || len(b) < MinPepperSize {
		return nil, fmt.Errorf("config: secrets.pepper: must be base64 of at least %d bytes", MinPepperSize)
	}
	return b, nil
}

// decodeBase64 accepts standard or URL-safe base64, padded or not. The error
// never contains the input.
func decodeBase64(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		if b, err := enc.Strict().DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, fmt.Errorf("not base64")
}

// String hides the secrets.
func (s SecretsConfig) String() string { return "{REDACTED}" }

// GoString hides the secrets.
func (s SecretsConfig) GoString() string { return "{REDACTED}" }

// LogValue hides the secrets.
func (s SecretsConfig) LogValue() slog.Value { return slog.StringValue("REDACTED") }

// AdminConfig is the "admin" section: the admin API and /metrics listener.
type AdminConfig struct {
	Listen      string `yaml:"listen"`       // empty disables the admin listener
	TokenSHA256 string `yaml:"token_sha256"` // hex SHA-256 of the admin bearer token
}

// SetDefaults listens on 127.0.0.1:8081; the token hash has no default.
func (a *AdminConfig) SetDefaults() { *a = AdminConfig{Listen: "127.0.0.1:8081"} }

// Validate checks the section.
func (a *AdminConfig) Validate() ([]Warning, error) { var r report; a.validate(&r); return r.result() }

func (a *AdminConfig) validate(r *report) {
	if a.Listen == "" {
		return // disabled
	}
	if loopback, ok := validateListen(r, "admin.listen", a.Listen); ok && !loopback {
		r.warnf("admin.listen", "admin API and /metrics listen on a non-loopback address; restrict access with a firewall")
	}
	if a.TokenSHA256 == "" {
		r.errorf("admin.token_sha256", "required when admin.listen is set (hex SHA-256 of the admin token)")
	} else if b, err := hex.DecodeString(a.TokenSHA256); err != nil || len(b) != 32 {
		r.errorf("admin.token_sha256", "must be 64 hex digits (SHA-256)")
	}
}

// TokenHash returns the decoded admin token hash.
func (a AdminConfig) TokenHash() ([]byte, error) {
	b, err := hex.DecodeString(a.TokenSHA256)
	if err != nil || len(b) != 32 {
		return nil, fmt.Errorf("config: admin.token_sha256: must be 64 hex digits")
	}
	return b, nil
}
