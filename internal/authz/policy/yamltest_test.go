package policy

import (
	"strings"
	"testing"
)

func TestRunTests(t *testing.T) {
	s := testSet(t)
	src := `
cases:
  - name: admin views
    principal: {type: user, id: u1, roles: [admin], tenant: acme}
    action: view
    resource: {type: document, id: d1, tenant: acme, attrs: {status: open, amount: 12}}
    expect: {allow: true, policies: [admins-view], reason_contains: "permitted by"}
  - name: wrong expectation
    principal: {type: user, id: u1, roles: []}
    action: view
    resource: {type: document, id: d1, attrs: {status: open}}
    expect: {allow: true}
  - name: wrong policies
    principal: {type: user, id: u1, roles: [admin]}
    action: view
    resource: {type: document, id: d1, attrs: {status: open}}
    relations: {owner: true}
    expect: {allow: true, policies: [admins-view]}
  - name: expected error
    principal: {type: user, id: u1, roles: []}
    action: fly
    resource: {type: document, id: d1, attrs: {status: open}}
    expect: {allow: false, error_contains: "does not exist"}
  - name: unexpected error
    principal: {type: user, id: u1, roles: []}
    action: view
    resource: {type: document, id: d1, attrs: {status: 3}}
    expect: {allow: false}
  - name: error expected but none
    principal: {type: user, id: u1, roles: []}
    action: view
    resource: {type: document, id: d1, attrs: {status: open}}
    expect: {allow: false, error_contains: "boom"}
  - name: tenant guard
    principal: {type: user, id: u1, roles: [admin], tenant: acme}
    action: view
    resource: {type: document, id: d1, tenant: globex, attrs: {status: open}}
    expect: {allow: false, reason_contains: "principal tenant acme does not match resource tenant globex"}
  - name: step-up with context
    principal: {type: user, id: u1, roles: [], attrs: {acr: mfa, auth_time: 990}}
    action: approve
    resource: {type: document, id: d1, attrs: {status: open, amount: 5}}
    context: {now: 1000}
    expect: {allow: true, policies: [approve-small-with-step-up]}
  - name: reason mismatch
    principal: {type: user, id: u1, roles: []}
    action: view
    resource: {type: document, id: d1, attrs: {status: open}}
    expect: {allow: false, reason_contains: "forbidden"}
`
	res, err := RunTests(s, "t.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"admin views":             "",
		"wrong expectation":       "expected allow=true, got allow=false",
		"wrong policies":          "expected policies [admins-view], got [admins-view owner-views]",
		"expected error":          "",
		"unexpected error":        "unexpected error: policy: invalid request",
		"error expected but none": `expected an error containing "boom"`,
		"tenant guard":            "",
		"step-up with context":    "",
		"reason mismatch":         `does not contain "forbidden"`,
	}
	if len(res) != len(want) {
		t.Fatalf("%d results", len(res))
	}
	for _, r := range res {
		w, ok := want[r.Name]
		if !ok {
			t.Fatalf("unknown case %q", r.Name)
		}
		if r.Pass != (w == "") || !strings.Contains(r.Message, w) {
			t.Errorf("%s: pass=%t message=%q, want failure containing %q", r.Name, r.Pass, r.Message, w)
		}
	}
}

func TestRunTestsBadFiles(t *testing.T) {
	s := testSet(t)
	cases := []struct{ name, src, want string }{
		{"empty", "", "no test cases"},
		{"no-cases", "cases: []", "no test cases"},
		{"unknown-field", "cases:\n  - name: x\n    expect: {allow: true}\n    principle: {type: user}\n", "principle"},
		{"unknown-expect-field", "cases:\n  - name: x\n    expect: {allow: true, allowed: true}\n", "allowed"},
		{"no-name", "cases:\n  - expect: {allow: true}\n", "case 1 has no name"},
		{"no-allow", "cases:\n  - name: x\n    principal: {type: user, id: u}\n    resource: {type: document, id: d}\n    expect: {}\n", "expect.allow is required"},
		{"no-type", "cases:\n  - name: x\n    principal: {id: u}\n    expect: {allow: true}\n", "principal: type is required"},
		{"null-attr", "cases:\n  - name: x\n    principal: {type: user, id: u}\n    resource: {type: document, id: d, attrs: {status: null}}\n    expect: {allow: true}\n", "null is not a Cedar value"},
		{"roles-on-resource", "cases:\n  - name: x\n    principal: {type: user, id: u}\n    resource: {type: document, id: d, roles: [a]}\n    expect: {allow: true}\n", "roles apply to principals only"},
		{"two-documents", "cases:\n  - name: x\n    principal: {type: user, id: u}\n    resource: {type: document, id: d}\n    expect: {allow: true}\n---\ncases: []\n", "exactly one YAML document"},
		{"not-yaml", "cases: [", "t.yaml"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := RunTests(s, "t.yaml", []byte(tc.src))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
	if _, err := RunTests(nil, "t.yaml", []byte("cases: []")); err == nil {
		t.Fatal("nil set accepted")
	}
}

func TestNormalize(t *testing.T) {
	cases := []struct {
		in   any
		want string
	}{
		{1, "1"}, {int64(-5), "-5"}, {uint64(7), "7"}, {2.5, "2.5"}, {"s", "s"}, {true, "true"},
	}
	for _, tc := range cases {
		got, err := normalize(tc.in, 0)
		if err != nil {
			t.Fatal(err)
		}
		if s := strings.TrimSpace(strings.Trim(strings.ReplaceAll(toString(got), "\"", ""), " ")); s != tc.want {
			t.Errorf("normalize(%v) = %v, want %s", tc.in, got, tc.want)
		}
	}
	if _, err := normalize(uint64(1<<63), 0); err == nil {
		t.Error("uint64 overflow accepted")
	}
	if _, err := normalize(struct{}{}, 0); err == nil {
		t.Error("struct accepted")
	}
}

func toString(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case bool:
		if v {
			return "true"
		}
		return "false"
	}
	return strings.TrimSpace(v.(interface{ String() string }).String())
}
