package edge

import (
	"errors"
	"strings"
	"testing"
)

func TestNormalizePathAttacks(t *testing.T) {
	long := "/" + strings.Repeat("a", MaxPathLen)
	tests := []struct {
		name, in, want string // want "" means ErrBadPath
	}{
		{"GW-03/dotdot", "/public/../admin", "/admin"},
		{"GW-03/encoded-dotdot-lower", "/public/%2e%2e/admin", "/admin"},
		{"GW-03/encoded-dotdot-mixed", "/public/%2E%2e/admin", "/admin"},
		{"GW-03/encoded-dotdot-half", "/public/.%2e/admin", "/admin"},
		{"GW-03/encoded-dotdot-other-half", "/public/%2E./admin", "/admin"},
		{"GW-03/encoded-dot", "/public/%2e/admin", "/public/admin"},
		{"GW-03/encoded-slash-lower", "/public/..%2fadmin", ""},
		{"GW-03/encoded-slash-upper", "/public%2F..%2Fadmin", ""},
		{"GW-03/double-encoded-slash", "/public/..%252fadmin", ""},
		{"GW-03/double-encoded-dot", "/public/%252e%252e/admin", ""},
		{"GW-03/encoded-percent", "/a%25", ""},
		{"GW-03/encoded-backslash", "/public/..%5cadmin", ""},
		{"GW-03/encoded-backslash-upper", "/public/..%5Cadmin", ""},
		{"GW-03/literal-backslash", "/public/..\\admin", ""},
		{"GW-03/encoded-nul", "/admin%00.png", ""},
		{"GW-03/raw-nul", "/admin\x00.png", ""},
		{"GW-03/encoded-cr", "/admin%0d%0aX-Injected:1", ""},
		{"GW-03/raw-tab", "/ad\tmin", ""},
		{"GW-03/encoded-del", "/admin%7f", ""},
		{"GW-03/raw-del", "/admin\x7f", ""},
		{"GW-03/double-slash", "//admin", "/admin"},
		{"GW-03/many-slashes", "/public///..//admin//x", "/admin/x"},
		{"GW-03/uppercase-kept", "/ADMIN", "/ADMIN"},
		{"GW-03/fragment", "/admin#x", ""},
		{"GW-03/fragment-after-dotdot", "/public/..#/admin", ""},
		{"GW-03/question-mark", "/admin?x=1", ""},
		{"GW-03/encoded-question-mark-kept", "/a%3fb", "/a%3Fb"},
		{"GW-03/encoded-hash-kept", "/a%23b", "/a%23b"},
		{"GW-03/dotdot-above-root", "/..", ""},
		{"GW-03/dotdot-above-root-later", "/a/../../admin", ""},
		{"GW-03/encoded-dotdot-above-root", "/%2e%2e/admin", ""},
		{"GW-03/invalid-escape", "/a%zz", ""},
		{"GW-03/truncated-escape", "/a%4", ""},
		{"GW-03/truncated-escape-end", "/a%", ""},
		{"GW-03/overlong", long, ""},
		{"GW-03/overlong-utf8-slash", "/a%c0%afadmin", ""},
		{"GW-03/invalid-utf8-raw", "/a\xffb", ""},
		{"GW-03/truncated-utf8", "/a%C3/b", ""},
		{"GW-03/utf8-split-by-ascii", "/%C3a%A9", ""},
		{"GW-03/empty", "", ""},
		{"GW-03/relative", "admin", ""},
		{"GW-03/asterisk", "*", ""},
		{"GW-03/absolute-uri", "http://x/admin", ""},
		{"GW-03/dot-segment", "/a/./b", "/a/b"},
		{"GW-03/trailing-dot", "/a/.", "/a/"},
		{"GW-03/trailing-dotdot", "/a/b/..", "/a/"},
		{"GW-03/trailing-slash-kept", "/a/b/", "/a/b/"},
		{"GW-03/root", "/", "/"},
		{"GW-03/root-dot", "/.", "/"},
		{"GW-03/unicode-encoded-kept", "/caf%c3%a9", "/caf%C3%A9"},
		{"GW-03/unicode-raw-encoded", "/caf\xc3\xa9", "/caf%C3%A9"},
		{"GW-03/tilde-decoded", "/%7Euser", "/~user"},
		{"GW-03/letter-decoded", "/%41dmin", "/Admin"},
		{"GW-03/encoded-admin-equals-admin", "/%61%64%6d%69%6e", "/admin"},
		{"GW-03/dots-in-name", "/a/..b/c.", "/a/..b/c."},
		{"GW-03/triple-dot", "/a/.../b", "/a/.../b"},
		{"GW-03/space-encoded", "/a b", "/a%20b"},
		{"GW-03/semicolon-kept", "/admin;x=1", "/admin;x=1"},
		{"GW-03/encoded-semicolon-kept", "/admin%3bx", "/admin%3Bx"},
		{"GW-03/brackets-encoded", "/a[1]", "/a%5B1%5D"},
		{"GW-03/sub-delims-raw", "/a!$&'()*+,;=:@b", "/a!$&'()*+,;=:@b"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := NormalizePath(tc.in)
			if tc.want == "" {
				if !errors.Is(err, ErrBadPath) {
					t.Fatalf("NormalizePath(%q) = %q, %v; want ErrBadPath", tc.in, got, err)
				}
				if got != "" {
					t.Fatalf("rejected path returned %q", got)
				}
				if strings.Contains(err.Error(), tc.in) && tc.in != "" {
					t.Fatalf("error echoes the path: %v", err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("NormalizePath(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
			again, err := NormalizePath(got)
			if err != nil || again != got {
				t.Fatalf("not idempotent: %q -> %q, %v", got, again, err)
			}
		})
	}
}

// TestNormalizePathOutputLimit checks that an input that grows when encoded
// is rejected rather than producing an output that would itself be rejected.
func TestNormalizePathOutputLimit(t *testing.T) {
	in := "/" + strings.Repeat("é", MaxPathLen/2-1) // 8189 bytes, 3x larger encoded
	if _, err := NormalizePath(in); !errors.Is(err, ErrBadPath) {
		t.Fatalf("err = %v, want ErrBadPath", err)
	}
}

func TestNormalizePathCleanNoAlloc(t *testing.T) {
	p := "/api/v1/orders/123/items"
	allocs := testing.AllocsPerRun(100, func() {
		if got, err := NormalizePath(p); err != nil || got != p {
			t.Fatalf("got %q, %v", got, err)
		}
	})
	if allocs != 0 {
		t.Fatalf("clean path allocated %v times", allocs)
	}
}

func TestHasPathPrefix(t *testing.T) {
	tests := []struct {
		name, path, prefix string
		want               bool
	}{
		{"GW-03/exact", "/orders", "/orders", true},
		{"GW-03/child", "/orders/1", "/orders", true},
		{"GW-03/sibling-name", "/orders-admin", "/orders", false},
		{"GW-03/case-differs", "/ADMIN", "/admin", false},
		{"GW-03/case-differs-child", "/Admin/x", "/admin", false},
		{"GW-03/slash-prefix-child", "/orders/1", "/orders/", true},
		{"GW-03/slash-prefix-self", "/orders/", "/orders/", true},
		{"GW-03/slash-prefix-no-slash", "/orders", "/orders/", false},
		{"GW-03/root-matches-all", "/anything", "/", true},
		{"GW-03/empty-prefix-matches-nothing", "/anything", "", false},
		{"GW-03/shorter-path", "/ord", "/orders", false},
		{"GW-03/semicolon-not-child", "/admin;x", "/admin", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := HasPathPrefix(tc.path, tc.prefix); got != tc.want {
				t.Fatalf("HasPathPrefix(%q, %q) = %v, want %v", tc.path, tc.prefix, got, tc.want)
			}
		})
	}
}

// TestNormalizeThenMatch is the end-to-end GW-03 property: no encoding trick
// reaches /admin without matching the /admin rule.
func TestNormalizeThenMatch(t *testing.T) {
	for _, in := range []string{
		"/admin", "//admin", "/public/../admin", "/public/%2e%2e/admin", "/./admin/",
		"/%61dmin", "/public/.%2E/admin/users", "/x/y/../../admin",
	} {
		t.Run("GW-03/"+in, func(t *testing.T) {
			p, err := NormalizePath(in)
			if err != nil {
				t.Fatalf("NormalizePath(%q): %v", in, err)
			}
			if !HasPathPrefix(p, "/admin") {
				t.Fatalf("%q normalized to %q which escapes the /admin rule", in, p)
			}
		})
	}
}
