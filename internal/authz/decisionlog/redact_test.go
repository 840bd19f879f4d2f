package decisionlog

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/testutil/syncbuf"
)

func TestRedact(t *testing.T) {
	type creds struct {
		User     string `json:"user"`
		Password string `json:"password"`
	}
	cases := []struct {
		name string
		in   map[string]any
		want map[string]any
	}{
		{"secret-in-log/token", map[string]any{"token": "abc", "ip": "1.2.3.4"}, map[string]any{"token": Redacted, "ip": "1.2.3.4"}},
		{"secret-in-log/access_token-substring", map[string]any{"access_token": "abc", "refresh_token": "r"}, map[string]any{"access_token": Redacted, "refresh_token": Redacted}},
		{"secret-in-log/case-variants", map[string]any{"PASSWORD": 1, "Passwd": true, "SeCrEt": "x", "Cookie": "c", "AUTHORIZATION": "Bearer x"}, map[string]any{"PASSWORD": Redacted, "Passwd": Redacted, "SeCrEt": Redacted, "Cookie": Redacted, "AUTHORIZATION": Redacted}},
		{"secret-in-log/api-key-spellings", map[string]any{"api_key": "1", "apikey": "2", "api-key": "3", "X-Api-Key": "4", "APIKEY": "5"}, map[string]any{"api_key": Redacted, "apikey": Redacted, "api-key": Redacted, "X-Api-Key": Redacted, "APIKEY": Redacted}},
		{"secret-in-log/client_secret-and-camel", map[string]any{"client_secret": "s", "clientSecret": "s"}, map[string]any{"client_secret": Redacted, "clientSecret": Redacted}},
		{"secret-in-log/private", map[string]any{"private_key": "-----BEGIN", "privateKey": "k"}, map[string]any{"private_key": Redacted, "privateKey": Redacted}},
		{"secret-in-log/set-cookie", map[string]any{"Set-Cookie": []any{"a=b"}}, map[string]any{"Set-Cookie": Redacted}},
		{"secret-in-log/nested", map[string]any{"headers": map[string]any{"Authorization": "Bearer x", "accept": "json"}}, map[string]any{"headers": map[string]any{"Authorization": Redacted, "accept": "json"}}},
		{"secret-in-log/object-under-sensitive-key", map[string]any{"secrets": map[string]any{"a": "b"}}, map[string]any{"secrets": Redacted}},
		{"secret-in-log/array-of-objects", map[string]any{"list": []any{map[string]any{"token": "t"}, "plain", []any{map[string]any{"password": "p"}}}}, map[string]any{"list": []any{map[string]any{"token": Redacted}, "plain", []any{map[string]any{"password": Redacted}}}}},
		{"secret-in-log/typed-struct", map[string]any{"creds": creds{User: "u", Password: "p"}}, map[string]any{"creds": map[string]any{"user": "u", "password": Redacted}}},
		{"secret-in-log/typed-map", map[string]any{"h": map[string]string{"Cookie": "c", "x": "y"}}, map[string]any{"h": map[string]any{"Cookie": Redacted, "x": "y"}}},
		{"secret-in-log/typed-slice", map[string]any{"roles": []string{"a"}}, map[string]any{"roles": []any{"a"}}},
		{"not-sensitive", map[string]any{"tenant": "acme", "n": 3, "f": 1.5, "b": false, "nil": nil, "num": json.Number("7")}, map[string]any{"tenant": "acme", "n": 3, "f": 1.5, "b": false, "nil": nil, "num": json.Number("7")}},
		{"time becomes string", map[string]any{"at": time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}, map[string]any{"at": "2026-01-02T03:04:05Z"}},
		{"unencodable", map[string]any{"ch": make(chan int)}, map[string]any{"ch": "[unencodable]"}},
		{"nil map", nil, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before, _ := json.Marshal(c.in)
			got := Redact(c.in)
			if !reflect.DeepEqual(got, c.want) {
				t.Fatalf("Redact = %#v\nwant %#v", got, c.want)
			}
			if after, _ := json.Marshal(c.in); string(after) != string(before) {
				t.Fatalf("input modified: %s -> %s", before, after)
			}
		})
	}
}

func TestRedactSelfReference(t *testing.T) {
	m := map[string]any{"a": 1}
	m["self"] = m
	got := Redact(m)
	depth := 0
	for cur := got; ; depth++ {
		next, ok := cur["self"].(map[string]any)
		if !ok {
			if cur["self"] != "[too deep]" {
				t.Fatalf("cycle ended with %#v", cur["self"])
			}
			break
		}
		cur = next
	}
	if depth > maxRedactDepth {
		t.Fatalf("depth %d > %d", depth, maxRedactDepth)
	}
}

// TestRedactedEntryLine checks the written line itself: nothing under a
// sensitive key reaches the file (secret-in-log/written-line).
func TestRedactedEntryLine(t *testing.T) {
	var out syncbuf.Buffer
	l := newLogger(t, Config{Writer: &out, Sample: 1})
	e := entry(1, false)
	e.Principal.TokenHash = "9f86d081884c7d65"
	e.Principal.Attrs = map[string]any{"id_token": "eyJhbGciOi.tok.sig"}
	e.Resource.Attrs = map[string]any{"owner": map[string]any{"api_key": "AKIA-SECRET"}}
	e.Context = map[string]any{"headers": []any{map[string]any{"Cookie": "session=SESSIONSECRET"}}}
	l.Log(e)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	for _, secret := range []string{"eyJhbGciOi", "AKIA-SECRET", "SESSIONSECRET"} {
		if strings.Contains(s, secret) {
			t.Errorf("secret-in-log/written-line: %q in %s", secret, s)
		}
	}
	if !strings.Contains(s, `"token_hash":"9f86d081884c7d65"`) {
		t.Errorf("token hash missing: %s", s)
	}
}
