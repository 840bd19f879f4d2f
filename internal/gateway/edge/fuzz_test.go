package edge

import (
	"errors"
	"net/http"
	"net/netip"
	"strings"
	"testing"
)

func FuzzNormalizePath(f *testing.F) {
	for _, s := range []string{
		"/", "/a/b/", "/public/../admin", "/public/%2e%2e/admin", "/.%2E/x", "//a//b", "/a%2fb",
		"/a%252f", "/%c0%af", "/caf%C3%A9", "/caf\xc3\xa9", "/%7E", "/a;b=c", "/a b", "/a/./b/../c",
		"/%", "/%zz", "/a#b", "/a?b", "/..", "/a\\b", "/\x00",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, err := NormalizePath(in)
		if err != nil {
			if !errors.Is(err, ErrBadPath) || out != "" {
				t.Fatalf("NormalizePath(%q) = %q, %v", in, out, err)
			}
			return
		}
		if !strings.HasPrefix(out, "/") || len(out) > MaxPathLen {
			t.Fatalf("bad output %q", out)
		}
		for _, bad := range []string{"/../", "/./", "//", "%2F", "%2f", "%25", "%5C", "\\", "\x00", "#", "?"} {
			if strings.Contains(out, bad) {
				t.Fatalf("NormalizePath(%q) = %q contains %q", in, out, bad)
			}
		}
		if strings.HasSuffix(out, "/..") || strings.HasSuffix(out, "/.") {
			t.Fatalf("NormalizePath(%q) = %q ends with a dot segment", in, out)
		}
		again, err := NormalizePath(out)
		if err != nil || again != out {
			t.Fatalf("not idempotent: %q -> %q -> %q, %v", in, out, again, err)
		}
	})
}

func FuzzClientIP(f *testing.F) {
	f.Add("10.0.0.1:80", "1.1.1.1, 10.0.0.2", `for="[2001:db8::1]:80"`, "2.2.2.2")
	f.Add("203.0.113.1:1", "1.1.1.1", "", "")
	f.Add("[::ffff:10.0.0.1]:80", "", "for=1.2.3.4;proto=http, for=10.0.0.3", "")
	f.Add("10.0.0.1:80", ",,,", `for="unterminated`, "x")
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8::/32")}
	f.Fuzz(func(t *testing.T, remote, xff, fwd, realIP string) {
		h := http.Header{}
		if xff != "" {
			h["X-Forwarded-For"] = strings.Split(xff, "\n")
		}
		if fwd != "" {
			h["Forwarded"] = strings.Split(fwd, "\n")
		}
		if realIP != "" {
			h["X-Real-Ip"] = []string{realIP}
		}
		got, ok := ClientIP(remote, h, trusted)
		peer, peerOK := parseAddrEntry(remote, true)
		if ok != peerOK || ok != got.IsValid() {
			t.Fatalf("ClientIP(%q) ok=%v valid=%v, peer ok=%v", remote, ok, got.IsValid(), peerOK)
		}
		if !ok {
			return
		}
		if got.Is4In6() || got.Zone() != "" {
			t.Fatalf("address not normalized: %v", got)
		}
		if !isTrusted(peer, trusted) && got != peer {
			t.Fatalf("GW-02: untrusted peer %v but got %v", peer, got)
		}
	})
}

func FuzzBearerToken(f *testing.F) {
	f.Add("Bearer abc", "", "")
	f.Add("bearer a.b.c==", "x=1", "")
	f.Add("Bearer  x", "access_token=1", "Bearer y")
	f.Add("Basic x", "%41ccess_token", "")
	f.Fuzz(func(t *testing.T, auth, query, second string) {
		h := http.Header{}
		if auth != "" {
			h["Authorization"] = []string{auth}
		}
		if auth != "" && second != "" {
			h["Authorization"] = append(h["Authorization"], second)
		}
		tok, err := BearerToken(h, query, 64)
		if err != nil {
			if tok != "" {
				t.Fatal("token returned with error")
			}
			for _, e := range []error{ErrNoToken, ErrMultipleAuthorization, ErrTokenInQuery, ErrMalformedAuthorization} {
				if errors.Is(err, e) {
					return
				}
			}
			t.Fatalf("unexpected error %v", err)
		}
		if len(tok) == 0 || len(tok) > 64 || !isToken68(tok) || !strings.EqualFold(auth, "Bearer "+tok) || len(h["Authorization"]) != 1 {
			t.Fatalf("BearerToken(%q, %q) accepted %q", auth, query, tok)
		}
		if hasParam(query, queryTokenNames) {
			t.Fatal("token accepted with token-like query parameter")
		}
		_ = BodyHasToken([]byte(query))
	})
}

func FuzzHostName(f *testing.F) {
	for _, s := range []string{"example.com", "EXAMPLE.com.:443", "[::1]:80", "[fe80::1%25x]", "a..b", "a:b:c", "xn--x.example", "1.2.3.4"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, ok := HostName(in)
		if !ok {
			if out != "" {
				t.Fatalf("rejected host returned %q", out)
			}
			return
		}
		if out == "" || len(out) > maxHostNameLen+2 || out != strings.ToLower(out) {
			t.Fatalf("HostName(%q) = %q", in, out)
		}
		if strings.ContainsAny(out, "/\\@?#% \t\r\n") || strings.HasSuffix(out, ".") {
			t.Fatalf("HostName(%q) = %q has forbidden bytes", in, out)
		}
		if again, ok := HostName(out); !ok || again != out {
			t.Fatalf("not idempotent: %q -> %q -> %q", in, out, again)
		}
	})
}
