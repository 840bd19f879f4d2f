package jwtx

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// MaxLeeway is the largest clock-skew allowance ValidateTime accepts.
const MaxLeeway = 60 * time.Second

// maxNumericDate is 9999-12-31T23:59:59Z: later dates are rejected so that
// time arithmetic can never overflow (JWT-C01).
const maxNumericDate = 253402300799

// Claims are the registered and Gatehouse-specific claims of a token.
type Claims struct {
	Issuer    string
	Subject   string
	Audience  []string // from a string or an array of strings
	Expiry    *int64   // NumericDate seconds; nil when absent
	NotBefore *int64
	IssuedAt  *int64
	JTI       string
	ClientID  string
	Scope     string // space-separated, RFC 9068 / RFC 8693 form
	// Extra holds every other member, undecoded.
	Extra map[string]json.RawMessage
}

// ParseClaims decodes a payload strictly: one JSON object, valid UTF-8, no
// duplicate or case-variant duplicate members (JWT-E02), and registered
// claims of exactly the right type: iss, sub, jti, client_id and scope
// strings; aud a non-empty string or a non-empty array of non-empty strings
// (JWT-C03); exp, nbf and iat non-negative integers no later than year 9999
// (JWT-C01). null is never accepted for a registered claim.
func ParseClaims(payload []byte) (Claims, error) {
	if err := checkStrictObject(payload); err != nil {
		return Claims{}, fmt.Errorf("payload: %w", err)
	}
	var c Claims
	err := members(payload, func(name, raw []byte) error {
		var dst *string
		switch string(name) {
		case "iss":
			dst = &c.Issuer
		case "sub":
			dst = &c.Subject
		case "jti":
			dst = &c.JTI
		case "client_id":
			dst = &c.ClientID
		case "scope":
			dst = &c.Scope
		case "exp", "nbf", "iat":
			v, err := numericDate(raw)
			if err != nil {
				return fmt.Errorf("%w: %s: %w", ErrClaims, name, err)
			}
			switch string(name) {
			case "exp":
				c.Expiry = &v
			case "nbf":
				c.NotBefore = &v
			default:
				c.IssuedAt = &v
			}
			return nil
		case "aud":
			aud, err := audience(raw)
			if err != nil {
				return fmt.Errorf("%w: aud: %w", ErrClaims, err)
			}
			c.Audience = aud
			return nil
		default:
			if c.Extra == nil {
				c.Extra = make(map[string]json.RawMessage, 8)
			}
			c.Extra[string(name)] = raw
			return nil
		}
		if err := jsonString(raw, dst); err != nil {
			return fmt.Errorf("%w: %s is not a string", ErrClaims, name)
		}
		return nil
	})
	if err != nil {
		return Claims{}, err
	}
	return c, nil
}

// numericDate accepts only a plain non-negative JSON integer: no sign,
// fraction, exponent, string or null.
func numericDate(raw json.RawMessage) (int64, error) {
	if len(raw) == 0 || len(raw) > 19 {
		return 0, errors.New("not a NumericDate")
	}
	for _, c := range raw {
		if c < '0' || c > '9' {
			return 0, errors.New("not an integer")
		}
	}
	if len(raw) > 1 && raw[0] == '0' {
		return 0, errors.New("not an integer")
	}
	v, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil || v > maxNumericDate {
		return 0, errors.New("out of range")
	}
	return v, nil
}

// audience accepts "x" or ["x", ...] with non-empty strings only.
func audience(raw json.RawMessage) ([]string, error) {
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil || s == "" {
			return nil, errors.New("empty or invalid string")
		}
		return []string{s}, nil
	}
	if len(raw) == 0 || raw[0] != '[' {
		return nil, errors.New("not a string or array")
	}
	out, err := StringList(raw)
	if err != nil || len(out) == 0 {
		return nil, errors.New("empty or invalid array")
	}
	for _, s := range out {
		if s == "" {
			return nil, errors.New("array member is not a non-empty string")
		}
	}
	return out, nil
}

// ValidateTime checks exp (required), nbf and iat against now, allowing
// leeway (0..MaxLeeway) of clock skew. A token is expired from exp+leeway on.
func ValidateTime(c Claims, now time.Time, leeway time.Duration) error {
	if leeway < 0 || leeway > MaxLeeway {
		return fmt.Errorf("jwtx: leeway %v outside [0, %v]", leeway, MaxLeeway)
	}
	if c.Expiry == nil {
		return fmt.Errorf("%w: exp missing", ErrClaims)
	}
	for _, d := range []*int64{c.Expiry, c.NotBefore, c.IssuedAt} {
		if d != nil && (*d < 0 || *d > maxNumericDate) {
			return fmt.Errorf("%w: date out of range", ErrClaims)
		}
	}
	if !now.Before(time.Unix(*c.Expiry, 0).Add(leeway)) {
		return ErrExpired
	}
	late := now.Add(leeway)
	if c.NotBefore != nil && late.Before(time.Unix(*c.NotBefore, 0)) {
		return fmt.Errorf("%w: nbf in the future", ErrNotYetValid)
	}
	if c.IssuedAt != nil && late.Before(time.Unix(*c.IssuedAt, 0)) {
		return fmt.Errorf("%w: iat in the future", ErrNotYetValid)
	}
	return nil
}
