package config

import (
	"bytes"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

const docPath = "../../docs/configuration.md"

// docExample returns the single ```yaml block of docs/configuration.md.
func docExample(t *testing.T) (doc string, example []byte) {
	t.Helper()
	b, err := os.ReadFile(docPath)
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllSubmatch(b, -1)
	if len(blocks) != 1 {
		t.Fatalf("%s: want exactly one ```yaml block, found %d", docPath, len(blocks))
	}
	return string(b), blocks[0][1]
}

// TestDocDefaultsMatchCode decodes the documented example onto a zero Config
// and compares it with Default(): the doc and the code cannot drift apart.
func TestDocDefaultsMatchCode(t *testing.T) {
	_, example := docExample(t)
	var fromDoc Config
	dec := yaml.NewDecoder(bytes.NewReader(example))
	dec.KnownFields(true)
	if err := dec.Decode(&fromDoc); err != nil {
		t.Fatalf("doc example does not decode strictly: %v", err)
	}
	// Keys without a default carry example values in the doc.
	if fromDoc.Issuer == "" || fromDoc.Storage.DSN == "" {
		t.Errorf("doc example should show an issuer and a dsn")
	}
	fromDoc.Issuer, fromDoc.Storage.DSN = "", ""
	if !reflect.DeepEqual(normalize(fromDoc), normalize(Default())) {
		t.Errorf("documented defaults differ from Default():\n doc  %#v\n code %#v", fromDoc, Default())
		for _, line := range diffFields(reflect.ValueOf(fromDoc), reflect.ValueOf(Default()), "") {
			t.Error(line)
		}
	}
}

// normalize treats a nil and an empty list as equal.
func normalize(c Config) Config {
	if len(c.IDP.TrustedProxies) == 0 {
		c.IDP.TrustedProxies = nil
	}
	if len(c.Gateway.TrustedProxies) == 0 {
		c.Gateway.TrustedProxies = nil
	}
	if len(c.Gateway.Issuers) == 0 {
		c.Gateway.Issuers = nil
	}
	if len(c.Gateway.Routes) == 0 {
		c.Gateway.Routes = nil
	}
	if len(c.Authz.PrincipalAudiences) == 0 {
		c.Authz.PrincipalAudiences = nil
	}
	if len(c.Authz.Fetch) == 0 {
		c.Authz.Fetch = nil
	}
	if len(c.CA.Policy) == 0 {
		c.CA.Policy = nil
	}
	return c
}

func diffFields(a, b reflect.Value, prefix string) []string {
	var out []string
	for i := range a.NumField() {
		f := a.Type().Field(i)
		p := prefix + keyOf(f)
		if f.Type.Kind() == reflect.Struct && f.Type != durationType {
			out = append(out, diffFields(a.Field(i), b.Field(i), p+".")...)
			continue
		}
		if fmt.Sprint(a.Field(i).Interface()) != fmt.Sprint(b.Field(i).Interface()) {
			out = append(out, fmt.Sprintf("%s: doc %v, code %v", p, a.Field(i).Interface(), b.Field(i).Interface()))
		}
	}
	return out
}

// TestDocExampleIsComplete checks that the example spells out every key, and
// that the reference names every key and its environment variable.
func TestDocExampleIsComplete(t *testing.T) {
	doc, example := docExample(t)
	var root yaml.Node
	if err := yaml.Unmarshal(example, &root); err != nil {
		t.Fatal(err)
	}
	paths := map[int][]string{}
	indexPaths(&root, "", paths)
	present := map[string]bool{}
	for _, ps := range paths {
		for _, p := range ps {
			present[p] = true
		}
	}
	keys, err := Keys()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if !present[k.Path] {
			t.Errorf("doc example lacks key %s", k.Path)
		}
		row := regexp.MustCompile("(?m)^\\| `" + regexp.QuoteMeta(k.Path) + "` \\|.*`" + k.Env + "`")
		if !row.MatchString(doc) {
			t.Errorf("doc reference lacks a row for %s with %s", k.Path, k.Env)
		}
	}
	for _, env := range NonConfigEnv() {
		if !strings.Contains(doc, "`"+env+"`") {
			t.Errorf("doc does not mention the ignored variable %s", env)
		}
	}
}

// TestDocExampleLoads loads the example as a user would, with the secrets
// from the environment.
func TestDocExampleLoads(t *testing.T) {
	_, example := docExample(t)
	env := []string{
		"GATEHOUSE_SECRETS_KEY_ENCRYPTION_KEY=" + testKEK,
		"GATEHOUSE_SECRETS_PEPPER=" + testPepper,
		"GATEHOUSE_ADMIN_TOKEN_SHA256=" + testToken,
	}
	_, warns, err := Load(bytes.NewReader(example), env)
	if err != nil {
		t.Fatalf("doc example does not load: %v", err)
	}
	if got := warnKeys(warns); len(got) != 1 || got[0] != "idp.listen" {
		t.Errorf("warnings %v, want only the idp.listen TLS warning", got)
	}
}
