package auth

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/sdk/jwtx"
)

// Defaults applied by NewVerifier.
const (
	DefaultLeeway          = 30 * time.Second
	DefaultMinRefresh      = time.Minute
	DefaultMaxRefresh      = time.Hour
	DefaultRefetchInterval = 10 * time.Second
	DefaultCacheSize       = 10000
	DefaultHTTPTimeout     = 10 * time.Second
)

// asymmetricAlgs are the algorithms an asymmetric issuer may allow.
var asymmetricAlgs = []string{jwtx.RS256, jwtx.PS256, jwtx.ES256, jwtx.ES384, jwtx.EdDSA}

// IssuerConfig describes one trusted issuer and the rules its tokens must
// pass. An issuer is either asymmetric (keys from its JWKS) or symmetric
// (HMACKey set, HS256 only), never both.
type IssuerConfig struct {
	// Issuer is compared byte for byte with the token's "iss". For an
	// asymmetric issuer discovery is at Issuer + "/.well-known/openid-configuration".
	Issuer string
	// Audience identifies this API; the token's "aud" must contain it
	// exactly. Required.
	Audience string
	// Algorithms is the allow-list, never taken from the token. Default for
	// asymmetric issuers: RS256, ES256, EdDSA. A symmetric issuer allows HS256
	// only.
	Algorithms []string
	// JWKSURL skips discovery when set.
	JWKSURL string
	// HMACKey turns on symmetric mode: HS256 with this shared key (at least
	// 32 bytes), no discovery, no JWKS. For standalone internal APIs only.
	HMACKey []byte
	// Leeway is the allowed clock skew for exp, nbf and iat (default 30 s,
	// at most 60 s). Set NoLeeway for none.
	Leeway   time.Duration
	NoLeeway bool
	// Types lists the accepted "typ" header values (default "at+jwt",
	// RFC 9068). A token without typ is refused.
	Types []string
	// CacheFile, when set, keeps the last good JWKS on disk so that a
	// restarted service validates tokens while the issuer is down.
	CacheFile string
	// MinRefresh and MaxRefresh bound the refresh period that the JWKS
	// response's Cache-Control max-age asks for (defaults 1 min and 1 h).
	MinRefresh, MaxRefresh time.Duration
	// RefetchInterval is the minimum gap between JWKS fetches caused by
	// tokens with an unknown kid (default 10 s).
	RefetchInterval time.Duration
	// HTTPClient fetches discovery and JWKS (default: 10 s timeout).
	HTTPClient *http.Client
	// InsecureAllowHTTP permits an http:// issuer on a non-loopback host
	// (loopback http is always allowed, for development).
	InsecureAllowHTTP bool
}

// VerifierConfig configures a Verifier.
type VerifierConfig struct {
	// Issuers lists every trusted issuer; at least one, with distinct Issuer
	// values. Each has its own keys and rules.
	Issuers []IssuerConfig
	// CacheSize bounds the verified-token cache (default 10000 entries;
	// negative disables it). Entries never outlive the token's exp.
	CacheSize int
	// MaxTokenLen caps the token length before any decoding (default 8192).
	MaxTokenLen int
	// Logger receives key-loading events (never tokens). Default: discard.
	Logger *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Verifier validates access tokens locally: signature with cached keys,
// issuer, audience, lifetime and type. It is safe for concurrent use.
// Create it with NewVerifier and stop it with Close.
type Verifier struct {
	byIssuer map[string]*issuer
	single   *issuer // set when there is exactly one issuer
	cache    *tokenCache
	maxLen   int
	now      func() time.Time
}

// issuer is one trusted issuer's keys and rules.
type issuer struct {
	cfg      IssuerConfig
	keys     *keySet // nil in symmetric mode
	keyFunc  jwtx.KeyFunc
	opts     jwtx.Options
	leeway   time.Duration
	audience string
}

// NewVerifier checks cfg (all problems reported at once) and starts loading
// every asymmetric issuer's keys in the background. It returns at once;
// until keys are loaded, Ready reports an error and Authenticate fails with
// ErrUnavailable.
func NewVerifier(cfg VerifierConfig) (*Verifier, error) {
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	maxLen := cfg.MaxTokenLen
	if maxLen <= 0 {
		maxLen = jwtx.DefaultMaxLen
	}
	var errs []error
	if len(cfg.Issuers) == 0 {
		errs = append(errs, errors.New("auth: at least one issuer is required"))
	}
	v := &Verifier{byIssuer: make(map[string]*issuer), maxLen: maxLen, now: now}
	for i, ic := range cfg.Issuers {
		iss, err := newIssuer(ic, maxLen, logger, now)
		if err != nil {
			errs = append(errs, fmt.Errorf("auth: issuers[%d]: %w", i, err))
			continue
		}
		if _, dup := v.byIssuer[ic.Issuer]; dup {
			errs = append(errs, fmt.Errorf("auth: issuers[%d]: issuer %q listed twice", i, ic.Issuer))
			continue
		}
		v.byIssuer[ic.Issuer] = iss
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if len(v.byIssuer) == 1 {
		for _, iss := range v.byIssuer {
			v.single = iss
		}
	}
	size := cfg.CacheSize
	if size == 0 {
		size = DefaultCacheSize
	}
	if size > 0 {
		v.cache = newTokenCache(size)
	}
	for _, iss := range v.byIssuer {
		if iss.keys != nil {
			iss.keys.start()
		}
	}
	return v, nil
}

func newIssuer(ic IssuerConfig, maxLen int, logger *slog.Logger, now func() time.Time) (*issuer, error) {
	var errs []error
	u, err := url.Parse(ic.Issuer)
	switch {
	case ic.Issuer == "" || err != nil || u.Host == "" || u.RawQuery != "" || u.Fragment != "":
		errs = append(errs, errors.New("issuer must be an absolute URL without query or fragment"))
	case u.Scheme == "https":
	case u.Scheme == "http" && (isLoopback(u.Hostname()) || ic.InsecureAllowHTTP):
	default:
		errs = append(errs, errors.New("issuer must use https (http only on loopback or with InsecureAllowHTTP)"))
	}
	if ic.Audience == "" {
		errs = append(errs, errors.New("audience is required"))
	}
	leeway := ic.Leeway
	if ic.NoLeeway {
		if leeway != 0 {
			errs = append(errs, errors.New("leeway and NoLeeway are exclusive"))
		}
	} else if leeway == 0 {
		leeway = DefaultLeeway
	}
	if leeway < 0 || leeway > jwtx.MaxLeeway {
		errs = append(errs, fmt.Errorf("leeway must be within [0, %v]", jwtx.MaxLeeway))
	}
	types := ic.Types
	if len(types) == 0 {
		types = []string{"at+jwt"}
	}
	iss := &issuer{cfg: ic, leeway: leeway, audience: ic.Audience,
		opts: jwtx.Options{MaxLen: maxLen, Typ: slices.Clone(types)}}

	if ic.HMACKey != nil {
		// Symmetric mode: HS256 with the configured key, nothing fetched.
		if len(ic.HMACKey) < jwtx.MinHMACKeyLen {
			errs = append(errs, fmt.Errorf("HMAC key must be at least %d bytes", jwtx.MinHMACKeyLen))
		}
		for _, a := range ic.Algorithms {
			if a != jwtx.HS256 {
				errs = append(errs, fmt.Errorf("a symmetric issuer allows HS256 only, not %q", a))
			}
		}
		if ic.JWKSURL != "" || ic.CacheFile != "" {
			errs = append(errs, errors.New("a symmetric issuer has no JWKS: JWKSURL and CacheFile must be empty"))
		}
		key := jwtx.HMACKey(slices.Clone(ic.HMACKey))
		iss.keyFunc = func(string) (crypto.PublicKey, string, bool) { return key, jwtx.HS256, true }
		iss.opts.KidOptional = true
		return iss, errors.Join(errs...)
	}

	algs := ic.Algorithms
	if len(algs) == 0 {
		algs = []string{jwtx.RS256, jwtx.ES256, jwtx.EdDSA}
	}
	for _, a := range algs {
		if !slices.Contains(asymmetricAlgs, a) {
			errs = append(errs, fmt.Errorf("algorithm %q is not allowed for an asymmetric issuer", a))
		}
	}
	if ic.JWKSURL != "" {
		if ju, err := url.Parse(ic.JWKSURL); err != nil || ju.Host == "" || (ju.Scheme != "https" && ju.Scheme != u.Scheme) {
			errs = append(errs, errors.New("JWKS URL must be absolute and https (or the issuer's scheme)"))
		}
	}
	minR, maxR, refetch := orDefault(ic.MinRefresh, DefaultMinRefresh), orDefault(ic.MaxRefresh, DefaultMaxRefresh),
		orDefault(ic.RefetchInterval, DefaultRefetchInterval)
	if minR > maxR {
		errs = append(errs, errors.New("MinRefresh must not exceed MaxRefresh"))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	client := ic.HTTPClient
	if client == nil {
		// Redirects are not followed: keys come from the configured URLs only.
		client = &http.Client{Timeout: DefaultHTTPTimeout, CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		}}
	}
	iss.keys = newKeySet(keySetConfig{Issuer: ic.Issuer, JWKSURL: ic.JWKSURL, Algorithms: slices.Clone(algs),
		HTTPClient: client, CacheFile: ic.CacheFile, MinRefresh: minR, MaxRefresh: maxR, RefetchInterval: refetch,
		Logger: logger.With("issuer", ic.Issuer), Now: now})
	iss.keyFunc = iss.keys.lookup
	return iss, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// isLoopback reports whether host is localhost or a loopback IP: the only
// hosts where plain http is accepted by default.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Authenticate verifies token and returns its claims. Errors wrap
// ErrInvalidToken (the token is unacceptable) or ErrUnavailable (no keys
// loaded yet for its issuer).
func (v *Verifier) Authenticate(ctx context.Context, token string) (*Claims, error) {
	if len(token) > v.maxLen {
		return nil, fmt.Errorf("%w: %w", ErrInvalidToken, jwtx.ErrMalformed)
	}
	now := v.now()
	if v.cache != nil {
		if c := v.cache.get(token, now); c != nil {
			return c, nil
		}
	}
	iss := v.single
	if iss == nil {
		var err error
		if iss, err = v.selectIssuer(token); err != nil {
			return nil, err
		}
	}
	if iss.keys != nil && !iss.keys.ready() {
		return nil, fmt.Errorf("%w: signing keys for the issuer are not loaded", ErrUnavailable)
	}
	var gen uint64
	if iss.keys != nil {
		gen = iss.keys.generation()
	}
	_, payload, err := jwtx.Verify(token, iss.keyFunc, iss.opts)
	if errors.Is(err, jwtx.ErrUnknownKey) && iss.keys != nil {
		// A new key may have been published: one rate-limited, single-flight
		// refetch per issuer (JWT-B05), then one retry.
		iss.keys.refetch(ctx)
		gen = iss.keys.generation()
		_, payload, err = jwtx.Verify(token, iss.keyFunc, iss.opts)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	c, err := iss.claims(payload, token, now)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	if v.cache != nil {
		v.cache.put(token, c, iss.keys, gen, now)
	}
	return c, nil
}

// selectIssuer reads the unverified "iss" only to choose whose keys verify
// the token; the verified iss is checked again afterwards (JWT-B06).
func (v *Verifier) selectIssuer(token string) (*issuer, error) {
	i := strings.IndexByte(token, '.')
	if i < 0 {
		return nil, fmt.Errorf("%w: %w", ErrInvalidToken, jwtx.ErrMalformed)
	}
	rest := token[i+1:]
	j := strings.IndexByte(rest, '.')
	if j < 0 {
		return nil, fmt.Errorf("%w: %w", ErrInvalidToken, jwtx.ErrMalformed)
	}
	payload, err := jwtx.DecodeSegment(rest[:j])
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	c, err := jwtx.ParseClaims(payload)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	iss, ok := v.byIssuer[c.Issuer]
	if !ok {
		return nil, fmt.Errorf("%w: untrusted issuer", ErrInvalidToken)
	}
	return iss, nil
}

// Errors for claim checks; wrapped in ErrInvalidToken.
var (
	errIssuer   = errors.New("issuer mismatch")
	errAudience = errors.New("audience mismatch")
	errScope    = errors.New("scope claim ambiguous")
	errClaimTyp = errors.New("claim has the wrong type")
)

// claims checks the verified payload against the issuer's rules and maps it.
func (iss *issuer) claims(payload []byte, token string, now time.Time) (*Claims, error) {
	pc, err := jwtx.ParseClaims(payload)
	if err != nil {
		return nil, err
	}
	if pc.Issuer != iss.cfg.Issuer {
		return nil, errIssuer
	}
	if !slices.Contains(pc.Audience, iss.audience) {
		return nil, errAudience
	}
	if err := jwtx.ValidateTime(pc, now, iss.leeway); err != nil {
		return nil, err
	}
	// JWT-C04: one canonical form. "scope" is a string (ParseClaims); a
	// token that also carries "scp" is ambiguous and refused.
	if _, ok := pc.Extra["scp"]; ok {
		return nil, errScope
	}
	c := &Claims{Issuer: pc.Issuer, Subject: pc.Subject, ClientID: pc.ClientID, Audience: pc.Audience,
		Scopes: strings.Fields(pc.Scope), Expiry: time.Unix(*pc.Expiry, 0), ID: pc.JTI, Token: token}
	if pc.IssuedAt != nil {
		c.IssuedAt = time.Unix(*pc.IssuedAt, 0)
	}
	extra := pc.Extra
	if c.Roles, c.Groups, c.Tenant, err = identityClaims(extra); err != nil {
		return nil, err
	}
	if len(extra) > 0 {
		c.Extra = extra
	}
	return c, nil
}

// Ready reports nil once every asymmetric issuer has a usable key set, and
// otherwise an error naming the issuers still without keys. Wire it to the
// service's readiness probe: a service without keys cannot authenticate
// anyone (RL-02).
func (v *Verifier) Ready() error {
	var errs []error
	for name, iss := range v.byIssuer {
		if iss.keys == nil || iss.keys.ready() {
			continue
		}
		if err := iss.keys.lastError(); err != nil {
			errs = append(errs, fmt.Errorf("%w: no keys for issuer %s: %w", ErrUnavailable, name, err))
		} else {
			errs = append(errs, fmt.Errorf("%w: no keys for issuer %s yet", ErrUnavailable, name))
		}
	}
	return errors.Join(errs...)
}

// WaitReady blocks until Ready reports nil or ctx ends.
func (v *Verifier) WaitReady(ctx context.Context) error {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		err := v.Ready()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (%w)", err, ctx.Err())
		case <-t.C:
		}
	}
}

// Close stops background key refreshes. Authenticate keeps working with the
// keys already loaded.
func (v *Verifier) Close() {
	for _, iss := range v.byIssuer {
		if iss.keys != nil {
			iss.keys.close()
		}
	}
}
