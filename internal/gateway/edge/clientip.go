package edge

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
)

const (
	// maxHops bounds the number of forwarding entries ClientIP examines.
	maxHops = 64
	// maxAddrEntryLen bounds a single X-Forwarded-For entry, whitespace
	// included ("[v6]:port" needs at most 53 bytes).
	maxAddrEntryLen = 96
)

// ClientIP returns the client address (GW-02). It is the TCP peer
// (remoteAddr, "ip:port") unless the peer is in trusted. For a trusted peer:
//   - X-Forwarded-For (all lines concatenated in order) is walked from the
//     right, skipping trusted addresses; the first untrusted one is returned;
//   - only if X-Forwarded-For is absent, Forwarded (RFC 7239) for= values are
//     walked the same way (quoted "[v6]:port" supported);
//   - only if both are absent, a single well-formed X-Real-IP is used.
//
// A malformed or unknown entry stops the walk and the last trusted hop's view
// (the peer-most valid address seen so far) is returned; if every examined
// entry is trusted the left-most examined one is returned. At most 64 hops
// are examined. IPv4-mapped IPv6 addresses are unmapped, zones dropped. The
// bool is false (and the Addr zero) only when remoteAddr cannot be parsed.
func ClientIP(remoteAddr string, h http.Header, trusted []netip.Prefix) (netip.Addr, bool) {
	peer, ok := parseAddrEntry(remoteAddr, true)
	if !ok {
		return netip.Addr{}, false
	}
	if !isTrusted(peer, trusted) {
		return peer, true
	}
	if xff := h.Values("X-Forwarded-For"); len(xff) > 0 {
		return walkXFF(peer, xff, trusted), true
	}
	if fwd := h.Values("Forwarded"); len(fwd) > 0 {
		return walkForwarded(peer, fwd, trusted), true
	}
	if xr := h.Values("X-Real-Ip"); len(xr) == 1 {
		if a, ok := parseAddrEntry(xr[0], false); ok {
			return a, true
		}
	}
	return peer, true
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// parseAddrEntry parses "ip", "ip:port", "[v6]" or "[v6]:port" (surrounding
// whitespace allowed). Zones are dropped for the peer (zoneOK) and rejected
// in headers; IPv4-mapped addresses are unmapped.
func parseAddrEntry(s string, zoneOK bool) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > maxAddrEntryLen {
		return netip.Addr{}, false
	}
	var a netip.Addr
	if ap, err := netip.ParseAddrPort(s); err == nil {
		a = ap.Addr()
	} else if s[0] == '[' && s[len(s)-1] == ']' {
		if a, err = netip.ParseAddr(s[1 : len(s)-1]); err != nil || !a.Is6() {
			return netip.Addr{}, false
		}
	} else if a, err = netip.ParseAddr(s); err != nil {
		return netip.Addr{}, false
	}
	if a.Zone() != "" {
		if !zoneOK {
			return netip.Addr{}, false
		}
		a = a.WithZone("")
	}
	return a.Unmap(), true
}

func walkXFF(peer netip.Addr, lines []string, trusted []netip.Prefix) netip.Addr {
	best, hops := peer, 0
	for li := len(lines) - 1; li >= 0; li-- {
		line := lines[li]
		end := len(line)
		for {
			if hops >= maxHops {
				return best
			}
			hops++
			start := end
			for start > 0 && line[start-1] != ',' {
				start--
				if end-start > maxAddrEntryLen {
					return best
				}
			}
			a, ok := parseAddrEntry(line[start:end], false)
			if !ok {
				return best
			}
			if !isTrusted(a, trusted) {
				return a
			}
			best = a
			if start == 0 {
				break
			}
			end = start - 1
		}
	}
	return best
}

// fwdHop is one Forwarded element's for= value; ok is false when the element
// or its line was malformed or had no (or a duplicate) for= parameter.
type fwdHop struct {
	val string
	ok  bool
}

// hopRing keeps the last maxHops elements so the right-to-left walk needs
// bounded memory however long the header is.
type hopRing struct {
	hops [maxHops]fwdHop
	n    int
}

func (r *hopRing) push(h fwdHop) { r.hops[r.n%maxHops] = h; r.n++ }

func walkForwarded(peer netip.Addr, lines []string, trusted []netip.Prefix) netip.Addr {
	var r hopRing
	for _, line := range lines {
		parseForwardedLine(line, &r)
	}
	best := peer
	for k := 0; k < min(r.n, maxHops); k++ {
		h := r.hops[(r.n-1-k)%maxHops]
		if !h.ok {
			return best
		}
		a, ok := parseAddrEntry(h.val, false)
		if !ok {
			return best
		}
		if !isTrusted(a, trusted) {
			return a
		}
		best = a
	}
	return best
}

// parseForwardedLine parses one Forwarded header line left to right,
// pushing one hop per element. A syntax error pushes a malformed hop and
// abandons the rest of the line (its structure is unknowable).
func parseForwardedLine(line string, r *hopRing) {
	i := 0
	skipOWS := func() {
		for i < len(line) && (line[i] == ' ' || line[i] == '\t') {
			i++
		}
	}
	for {
		var hop fwdHop
		dup, bad := false, false
		for {
			skipOWS()
			ks := i
			for i < len(line) && isTchar(line[i]) {
				i++
			}
			key := line[ks:i]
			if key == "" || i >= len(line) || line[i] != '=' {
				r.push(fwdHop{})
				return
			}
			i++
			var val string
			if i < len(line) && line[i] == '"' {
				i++
				vs := i
				for i < len(line) && line[i] != '"' {
					c := line[i]
					if c == '\\' {
						bad = true // addresses never need quoted-pairs
						i++
					} else if c < 0x20 && c != '\t' || c == 0x7f {
						r.push(fwdHop{})
						return
					}
					i++
				}
				if i >= len(line) {
					r.push(fwdHop{})
					return
				}
				val = line[vs:i]
				i++
			} else {
				vs := i
				for i < len(line) && isTchar(line[i]) {
					i++
				}
				if vs == i {
					r.push(fwdHop{})
					return
				}
				val = line[vs:i]
			}
			if strings.EqualFold(key, "for") {
				dup = dup || hop.ok
				hop = fwdHop{val: val, ok: true}
			}
			skipOWS()
			if i < len(line) && line[i] == ';' {
				i++
				continue
			}
			break
		}
		hop.ok = hop.ok && !dup && !bad
		r.push(hop)
		if i >= len(line) {
			return
		}
		if line[i] != ',' {
			r.push(fwdHop{})
			return
		}
		i++
	}
}

// ParsePrefixes parses trusted-proxy entries: CIDRs ("10.0.0.0/8") and bare
// IPs (as /32 or /128). Prefixes with host bits set ("10.0.0.1/8") and zones
// are rejected; IPv4-mapped prefixes are converted to IPv4. All errors are
// joined.
func ParsePrefixes(cidrs []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(cidrs))
	var errs []error
	for i, s := range cidrs {
		p, err := parsePrefix(strings.TrimSpace(s))
		if err != nil {
			errs = append(errs, fmt.Errorf("edge: trusted proxy entry %d %q: %w", i, s, err))
			continue
		}
		out = append(out, p)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

func parsePrefix(s string) (netip.Prefix, error) {
	if s == "" {
		return netip.Prefix{}, errors.New("empty")
	}
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("invalid CIDR: %w", err)
		}
		if p != p.Masked() {
			return netip.Prefix{}, errors.New("host bits set (did you mean " + p.Masked().String() + "?)")
		}
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		return p, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("invalid IP: %w", err)
	}
	if a.Zone() != "" {
		return netip.Prefix{}, errors.New("zones are not allowed")
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}
