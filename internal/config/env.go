package config

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
)

// EnvPrefix starts every environment variable the configuration reads.
const EnvPrefix = "GATEHOUSE_"

// NonConfigEnv lists the GATEHOUSE_* variables that other parts of Gatehouse
// read; Load ignores them instead of rejecting them as unknown keys.
func NonConfigEnv() []string {
	return []string{"GATEHOUSE_CONFIG", "GATEHOUSE_ADMIN_TOKEN", "GATEHOUSE_ADMIN_URL", "GATEHOUSE_TEST_POSTGRES_DSN"}
}

func isNonConfigEnv(name string) bool {
	for _, n := range NonConfigEnv() {
		if n == name {
			return true
		}
	}
	return false
}

// Key is one settable leaf key of Config and its environment variable.
type Key struct {
	Path  string // "idp.signing.algorithm"
	Env   string // "GATEHOUSE_IDP_SIGNING_ALGORITHM"
	index []int  // reflect field index path from Config
}

var durationType = reflect.TypeFor[Duration]()

// Keys lists every leaf key of Config in document order, derived from the
// yaml tags. It fails if two keys would map to the same variable name.
func Keys() ([]Key, error) {
	var out []Key
	walkLeaves(reflect.TypeFor[Config](), "", nil, &out)
	seen := map[string]string{}
	for _, l := range out {
		if other, dup := seen[l.Env]; dup {
			return nil, fmt.Errorf("config: keys %s and %s both map to %s", other, l.Path, l.Env)
		}
		if isNonConfigEnv(l.Env) {
			return nil, fmt.Errorf("config: key %s maps to reserved variable %s", l.Path, l.Env)
		}
		seen[l.Env] = l.Path
	}
	return out, nil
}

func walkLeaves(t reflect.Type, prefix string, index []int, out *[]Key) {
	for i := range t.NumField() {
		f := t.Field(i)
		name := keyOf(f)
		if name == "" || !f.IsExported() {
			continue
		}
		p := name
		if prefix != "" {
			p = prefix + "." + name
		}
		if f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.Struct {
			continue // lists of mappings (gateway.routes) are set in the file only
		}
		idx := append(append([]int(nil), index...), i)
		if f.Type.Kind() == reflect.Struct && f.Type != durationType {
			walkLeaves(f.Type, p, idx, out)
			continue
		}
		env := EnvPrefix + strings.ToUpper(strings.ReplaceAll(p, ".", "_"))
		*out = append(*out, Key{Path: p, Env: env, index: idx})
	}
}

// applyEnv sets the keys named by GATEHOUSE_* variables in env. Values are
// never echoed in errors: several keys hold secrets.
func applyEnv(r *report, cfg *Config, env []string) {
	leaves, err := Keys()
	if err != nil {
		r.errs = append(r.errs, err)
		return
	}
	byEnv := make(map[string]Key, len(leaves))
	for _, l := range leaves {
		byEnv[l.Env] = l
	}
	root := reflect.ValueOf(cfg).Elem()
	for _, kv := range env {
		name, value, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, EnvPrefix) || isNonConfigEnv(name) {
			continue
		}
		l, ok := byEnv[name]
		if !ok {
			r.errorf(name, "unknown environment variable (no such configuration key)")
			continue
		}
		if msg := setFromString(root.FieldByIndex(l.index), value); msg != "" {
			r.errorf(l.Path, "%s (from %s)", msg, name)
		}
	}
}

// setFromString parses s into v with the same types as the YAML document and
// returns a problem description, or "".
func setFromString(v reflect.Value, s string) string {
	if v.Type() == durationType {
		d, err := parseDuration(s)
		if err != nil {
			return err.Error()
		}
		v.SetInt(int64(d))
		return ""
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return "must be true or false"
		}
		v.SetBool(b)
	case reflect.Int:
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			return "must be an integer"
		}
		v.SetInt(int64(n))
	case reflect.Float64:
		f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil {
			return "must be a number"
		}
		v.SetFloat(f)
	case reflect.Slice:
		if v.Type().Elem().Kind() != reflect.String {
			return "unsupported type"
		}
		var items []string
		for item := range strings.SplitSeq(s, ",") {
			if item = strings.TrimSpace(item); item != "" {
				items = append(items, item)
			}
		}
		v.Set(reflect.ValueOf(items))
	default:
		return "unsupported type"
	}
	return ""
}
