package config

import (
	"fmt"
	"net/netip"
	"time"
)

// IDPConfig is the "idp" section: the OAuth 2.0 / OpenID Connect provider.
type IDPConfig struct {
	Listen              string         `yaml:"listen"`
	TLS                 TLSConfig      `yaml:"tls"`
	TrustedProxies      []string       `yaml:"trusted_proxies"` // CIDRs whose X-Forwarded-For is believed
	AccessTokenTTL      Duration       `yaml:"access_token_ttl"`
	IDTokenTTL          Duration       `yaml:"id_token_ttl"`
	AuthCodeTTL         Duration       `yaml:"auth_code_ttl"`
	AuthRequestTTL      Duration       `yaml:"auth_request_ttl"`
	RefreshTokenIdleTTL Duration       `yaml:"refresh_token_idle_ttl"`
	RefreshTokenMaxTTL  Duration       `yaml:"refresh_token_max_ttl"`
	Session             SessionConfig  `yaml:"session"`
	Signing             SigningConfig  `yaml:"signing"`
	Claims              ClaimsConfig   `yaml:"claims"`
	Throttle            ThrottleConfig `yaml:"throttle"`
	DevMode             bool           `yaml:"dev_mode"` // set by `gatehouse dev`; relaxes the issuer rule, warns loudly
}

// TLSConfig is "idp.tls". Both files or neither.
type TLSConfig struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// Enabled reports whether TLS is configured.
func (t TLSConfig) Enabled() bool { return t.CertFile != "" && t.KeyFile != "" }

// SessionConfig is "idp.session" (checklist SE-03).
type SessionConfig struct {
	IdleTimeout     Duration `yaml:"idle_timeout"`
	AbsoluteTimeout Duration `yaml:"absolute_timeout"`
}

// SigningConfig is "idp.signing": token signing keys and their rotation.
type SigningConfig struct {
	Algorithm       string   `yaml:"algorithm"`        // RS256|ES256|EdDSA
	RotationPeriod  Duration `yaml:"rotation_period"`  // 0 disables scheduled rotation
	PublishAhead    Duration `yaml:"publish_ahead"`    // a new key is in the JWKS this long before use
	RetainAfter     Duration `yaml:"retain_after"`     // a retired key stays in the JWKS this long
	RefreshInterval Duration `yaml:"refresh_interval"` // how often replicas reload the key set
	JWKSMaxAge      Duration `yaml:"jwks_max_age"`     // Cache-Control max-age of the JWKS
}

// ClaimsConfig is "idp.claims": user attributes copied into access tokens.
type ClaimsConfig struct {
	Roles  bool `yaml:"roles"`
	Groups bool `yaml:"groups"`
	Tenant bool `yaml:"tenant"`
}

// ThrottleConfig is "idp.throttle" (checklist BF-01).
type ThrottleConfig struct {
	AccountMaxFailures int      `yaml:"account_max_failures"`
	AccountWindow      Duration `yaml:"account_window"`
	IPMaxFailures      int      `yaml:"ip_max_failures"`
	IPWindow           Duration `yaml:"ip_window"`
}

const (
	hour   = Duration(time.Hour)
	minute = Duration(time.Minute)
	second = Duration(time.Second)
)

// SetDefaults sets the documented defaults of the section.
func (c *IDPConfig) SetDefaults() {
	*c = IDPConfig{
		Listen:              ":8080",
		AccessTokenTTL:      10 * minute,
		IDTokenTTL:          hour,
		AuthCodeTTL:         minute,
		AuthRequestTTL:      15 * minute,
		RefreshTokenIdleTTL: 720 * hour,
		RefreshTokenMaxTTL:  2160 * hour,
	}
	c.TLS.SetDefaults()
	c.Session.SetDefaults()
	c.Signing.SetDefaults()
	c.Claims.SetDefaults()
	c.Throttle.SetDefaults()
}

// SetDefaults clears both files (TLS off).
func (t *TLSConfig) SetDefaults() { *t = TLSConfig{} }

// SetDefaults sets 30m idle and 12h absolute timeouts.
func (s *SessionConfig) SetDefaults() {
	*s = SessionConfig{IdleTimeout: 30 * minute, AbsoluteTimeout: 12 * hour}
}

// SetDefaults sets RS256 with monthly rotation.
func (s *SigningConfig) SetDefaults() {
	*s = SigningConfig{
		Algorithm:       "RS256",
		RotationPeriod:  720 * hour,
		PublishAhead:    hour,
		RetainAfter:     24 * hour,
		RefreshInterval: 30 * second,
		JWKSMaxAge:      15 * minute,
	}
}

// SetDefaults puts roles and tenant, not groups, into access tokens.
func (c *ClaimsConfig) SetDefaults() { *c = ClaimsConfig{Roles: true, Tenant: true} }

// SetDefaults sets 5 failures per account and 50 per address in 15 minutes.
func (t *ThrottleConfig) SetDefaults() {
	*t = ThrottleConfig{AccountMaxFailures: 5, AccountWindow: 15 * minute, IPMaxFailures: 50, IPWindow: 15 * minute}
}

// Validate checks the section.
func (c *IDPConfig) Validate() ([]Warning, error) { var r report; c.validate(&r); return r.result() }

func (c *IDPConfig) validate(r *report) {
	if c.DevMode {
		r.warnf("idp.dev_mode", "DEVELOPMENT MODE IS ON: insecure settings are allowed; never run this in production")
	}
	if c.Listen == "" {
		r.errorf("idp.listen", "required")
	} else if loopback, ok := validateListen(r, "idp.listen", c.Listen); ok && !loopback && !c.TLS.Enabled() {
		r.warnf("idp.listen", "no TLS on a non-loopback address; a TLS-terminating proxy must be in front")
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		r.errorf("idp.tls", "set both cert_file and key_file, or neither")
	}
	for i, p := range c.TrustedProxies {
		key := fmt.Sprintf("idp.trusted_proxies[%d]", i)
		pfx, err := netip.ParsePrefix(p)
		switch {
		case err != nil:
			r.errorf(key, "must be a CIDR such as 10.0.0.0/8 or fd00::/8")
		case pfx != pfx.Masked():
			r.errorf(key, "has host bits set; did you mean %s?", pfx.Masked())
		}
	}
	between(r, "idp.access_token_ttl", c.AccessTokenTTL, minute, 24*hour)
	between(r, "idp.id_token_ttl", c.IDTokenTTL, minute, 24*hour)
	between(r, "idp.auth_code_ttl", c.AuthCodeTTL, minute, 10*minute) // OA-C
	between(r, "idp.auth_request_ttl", c.AuthRequestTTL, minute, hour)
	between(r, "idp.refresh_token_idle_ttl", c.RefreshTokenIdleTTL, hour, 8760*hour)
	between(r, "idp.refresh_token_max_ttl", c.RefreshTokenMaxTTL, c.RefreshTokenIdleTTL, 8760*hour, "idp.refresh_token_idle_ttl")
	between(r, "idp.session.idle_timeout", c.Session.IdleTimeout, minute, 24*hour)
	between(r, "idp.session.absolute_timeout", c.Session.AbsoluteTimeout, c.Session.IdleTimeout, 720*hour, "idp.session.idle_timeout")
	c.Signing.validate(r, maxDuration(c.AccessTokenTTL, c.IDTokenTTL))
	between(r, "idp.throttle.account_window", c.Throttle.AccountWindow, minute, 24*hour)
	between(r, "idp.throttle.ip_window", c.Throttle.IPWindow, minute, 24*hour)
	if n := c.Throttle.AccountMaxFailures; n < 1 || n > 1000 {
		r.errorf("idp.throttle.account_max_failures", "must be between 1 and 1000")
	}
	if n := c.Throttle.IPMaxFailures; n < 1 || n > 100000 {
		r.errorf("idp.throttle.ip_max_failures", "must be between 1 and 100000")
	}
}

func (s *SigningConfig) validate(r *report, maxTokenTTL Duration) {
	oneOf(r, "idp.signing.algorithm", s.Algorithm, "RS256", "ES256", "EdDSA")
	if s.RotationPeriod != 0 {
		between(r, "idp.signing.rotation_period", s.RotationPeriod, hour, 8760*hour)
	}
	between(r, "idp.signing.jwks_max_age", s.JWKSMaxAge, 0, 24*hour)
	between(r, "idp.signing.refresh_interval", s.RefreshInterval, second, 10*minute)
	if s.PublishAhead <= s.JWKSMaxAge+s.RefreshInterval {
		r.errorf("idp.signing.publish_ahead", "must be greater than idp.signing.jwks_max_age + idp.signing.refresh_interval (%s), or caches miss the new key", s.JWKSMaxAge+s.RefreshInterval)
	} else {
		between(r, "idp.signing.publish_ahead", s.PublishAhead, 0, 720*hour)
	}
	if s.RotationPeriod != 0 && s.PublishAhead >= s.RotationPeriod {
		r.errorf("idp.signing.publish_ahead", "must be less than idp.signing.rotation_period (%s)", s.RotationPeriod)
	}
	if s.RetainAfter < maxTokenTTL {
		r.errorf("idp.signing.retain_after", "must be at least the longest token lifetime (%s), or live tokens stop verifying", maxTokenTTL)
	} else {
		between(r, "idp.signing.retain_after", s.RetainAfter, 0, 8760*hour)
	}
}

// between reports key unless lo <= d <= hi. If loKey is given, the lower bound
// is that key's value and the message names it.
func between(r *report, key string, d, lo, hi Duration, loKey ...string) {
	if d >= lo && d <= hi {
		return
	}
	if len(loKey) > 0 {
		if d < lo {
			r.errorf(key, "must be at least %s (%s)", loKey[0], lo)
		} else {
			r.errorf(key, "must be at most %s", hi)
		}
		return
	}
	r.errorf(key, "must be between %s and %s", lo, hi)
}

func maxDuration(a, b Duration) Duration {
	if a > b {
		return a
	}
	return b
}

// TrustedProxyPrefixes returns idp.trusted_proxies parsed. Call it on a
// validated configuration.
func (c IDPConfig) TrustedProxyPrefixes() ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(c.TrustedProxies))
	for i, p := range c.TrustedProxies {
		pfx, err := netip.ParsePrefix(p)
		if err != nil {
			return nil, fmt.Errorf("config: idp.trusted_proxies[%d]: %w", i, err)
		}
		out = append(out, pfx.Masked())
	}
	return out, nil
}
