package password

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
)

// b64 is the PHC encoding: standard alphabet, no padding, canonical bits only.
var b64 = base64.RawStdEncoding.Strict()

// decoded is a parsed PHC string.
type decoded struct {
	p    Params
	salt []byte
	key  []byte
}

// encode returns $argon2id$v=19$m=<m>,t=<t>,p=<p>$<salt>$<key>.
func encode(p Params, salt, key []byte) string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		19, p.Memory, p.Time, p.Threads, b64.EncodeToString(salt), b64.EncodeToString(key))
}

// decode parses a PHC Argon2id string strictly: exact field order, version
// 19, canonical decimal numbers and base64, and parameters within the bounds
// of checkBounds, so a tampered hash cannot make Verify allocate gigabytes or
// spin for minutes. Anything else is ErrInvalidHash.
func decode(s string) (decoded, error) {
	var d decoded
	if len(s) > 512 {
		return d, fmt.Errorf("%w: too long", ErrInvalidHash)
	}
	parts := strings.Split(s, "$")
	// "", "argon2id", "v=19", "m=..,t=..,p=..", salt, key
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" || parts[2] != "v=19" {
		return d, fmt.Errorf("%w: not an argon2id v=19 PHC string", ErrInvalidHash)
	}
	kv := strings.Split(parts[3], ",")
	if len(kv) != 3 {
		return d, fmt.Errorf("%w: want m,t,p", ErrInvalidHash)
	}
	m, err := field(kv[0], "m=")
	if err != nil {
		return d, err
	}
	t, err := field(kv[1], "t=")
	if err != nil {
		return d, err
	}
	p, err := field(kv[2], "p=")
	if err != nil {
		return d, err
	}
	if p > maxThreads {
		return d, fmt.Errorf("%w: p=%d", ErrInvalidHash, p)
	}
	if d.salt, err = b64.DecodeString(parts[4]); err != nil {
		return d, fmt.Errorf("%w: salt: %w", ErrInvalidHash, err)
	}
	if d.key, err = b64.DecodeString(parts[5]); err != nil {
		return d, fmt.Errorf("%w: key: %w", ErrInvalidHash, err)
	}
	d.p = Params{
		Memory: m, Time: t, Threads: uint8(p),
		SaltLen: uint32(len(d.salt)), KeyLen: uint32(len(d.key)),
	}
	if err := checkBounds(d.p); err != nil {
		return d, fmt.Errorf("%w: %w", ErrInvalidHash, err)
	}
	return d, nil
}

// field parses "<prefix><canonical decimal uint32>".
func field(s, prefix string) (uint32, error) {
	v, ok := strings.CutPrefix(s, prefix)
	if !ok || v == "" || len(v) > 10 || (len(v) > 1 && v[0] == '0') {
		return 0, fmt.Errorf("%w: want %s<number>", ErrInvalidHash, prefix)
	}
	n, err := strconv.ParseUint(v, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("%w: %s: %w", ErrInvalidHash, prefix, err)
	}
	return uint32(n), nil
}
