// Package config loads Gatehouse's single YAML configuration document.
//
// The document is decoded strictly: unknown keys, duplicate keys, values of
// the wrong type and a second document in the same file are errors. Decoding
// starts from Default(), so an absent key keeps its default. Environment
// variables named GATEHOUSE_ + the key path upper-cased with '.' replaced by
// '_' (GATEHOUSE_IDP_SIGNING_ALGORITHM) override the file; an unknown
// GATEHOUSE_ variable is an error too.
//
// Each component owns one section (LogConfig, StorageConfig, ...) with
// SetDefaults and Validate methods. Load reports every problem at once,
// joined with errors.Join, each naming the key path:
//
//	idp.access_token_ttl: must be between 1m0s and 24h0m0s
//
// Insecure settings that are legal during development (dev_mode, an http
// issuer, listening without TLS on a public address) produce Warnings, which
// the caller must print loudly. Secret values never appear in errors or in
// the output of fmt and log/slog.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// MaxDocumentSize bounds the configuration document read by Load.
const MaxDocumentSize = 1 << 20

// Config is the whole configuration document.
type Config struct {
	Issuer  string        `yaml:"issuer"`
	Log     LogConfig     `yaml:"log"`
	Storage StorageConfig `yaml:"storage"`
	Secrets SecretsConfig `yaml:"secrets"`
	Admin   AdminConfig   `yaml:"admin"`
	IDP     IDPConfig     `yaml:"idp"`
	Gateway GatewayConfig `yaml:"gateway"`
	Authz   AuthzConfig   `yaml:"authz"`
	CA      CAConfig      `yaml:"ca"`
}

// Warning is an insecure but accepted setting. Callers print every warning
// loudly at startup.
type Warning struct {
	Key     string // key path, e.g. "idp.dev_mode"
	Message string
}

func (w Warning) String() string { return w.Key + ": " + w.Message }

// FieldError is one problem with one key. Load and Validate return several of
// them joined with errors.Join; use errors.As to get at one.
type FieldError struct {
	Key     string // key path, e.g. "idp.signing.algorithm"; empty for the document itself
	Message string // never contains a secret value
}

func (e *FieldError) Error() string {
	if e.Key == "" {
		return e.Message
	}
	return e.Key + ": " + e.Message
}

// report collects the errors and warnings of one validation pass.
type report struct {
	errs  []error
	warns []Warning
}

func (r *report) errorf(key, format string, args ...any) {
	r.errs = append(r.errs, &FieldError{Key: key, Message: fmt.Sprintf(format, args...)})
}

func (r *report) warnf(key, format string, args ...any) {
	r.warns = append(r.warns, Warning{Key: key, Message: fmt.Sprintf(format, args...)})
}

func (r *report) result() ([]Warning, error) { return r.warns, errors.Join(r.errs...) }

// Default returns the configuration with every default filled in. Issuer,
// storage.dsn, the secrets and admin.token_sha256 have no default and stay
// empty, so Default() alone does not validate.
func Default() Config {
	var c Config
	c.SetDefaults()
	return c
}

// SetDefaults sets every section to its defaults.
func (c *Config) SetDefaults() {
	c.Issuer = ""
	c.Log.SetDefaults()
	c.Storage.SetDefaults()
	c.Secrets.SetDefaults()
	c.Admin.SetDefaults()
	c.IDP.SetDefaults()
	c.Gateway.SetDefaults()
	c.Authz.SetDefaults()
	c.CA.SetDefaults()
}

// Validate checks every section and returns all problems at once, plus
// warnings about insecure settings.
func (c *Config) Validate() ([]Warning, error) {
	var r report
	c.validate(&r)
	return r.result()
}

func (c *Config) validate(r *report) {
	validateIssuer(r, c.Issuer, c.IDP.DevMode)
	c.Log.validate(r)
	if c.GatewayOnly() {
		// The gateway alone needs no storage, secrets or signing keys: it
		// verifies tokens with the issuer's published keys.
		if !c.Gateway.Enabled() {
			r.errorf("idp.listen", "nothing to run: set idp.listen, admin.listen or gateway.listen")
		}
		c.Gateway.validate(r)
		if c.Authz.Enabled() {
			r.errorf("authz.listen", "the authorization service runs beside the IdP (it shares its storage and issuer): set idp.listen too")
		}
		if c.CA.Enabled() {
			r.errorf("ca.listen", "%v", errCAWithoutIdP)
		}
		c.validateWorkload(r)
		return
	}
	c.Storage.validate(r)
	c.Secrets.validate(r)
	c.Admin.validate(r)
	c.IDP.validate(r)
	c.Gateway.validate(r)
	c.Authz.validate(r)
	c.CA.validate(r)
	c.validateWorkload(r)
}

// GatewayOnly reports whether this process runs the gateway without the
// IdP and admin API (idp.listen and admin.listen both empty).
func (c *Config) GatewayOnly() bool { return c.IDP.Listen == "" && c.Admin.Listen == "" }

// LoadFile opens path and calls Load.
func LoadFile(path string, env []string) (Config, []Warning, error) {
	f, err := os.Open(path)
	if err != nil {
		return Config{}, nil, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	return Load(f, env)
}

// Load decodes one YAML document from r onto Default(), applies the
// GATEHOUSE_* variables in env (os.Environ() form, "KEY=value"), and
// validates the result. An empty document is allowed (everything from
// defaults and env). On error the returned Config is the zero value.
func Load(r io.Reader, env []string) (Config, []Warning, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxDocumentSize+1))
	if err != nil {
		return Config{}, nil, fmt.Errorf("config: read: %w", err)
	}
	if len(data) > MaxDocumentSize {
		return Config{}, nil, &FieldError{Message: fmt.Sprintf("document larger than %d bytes", MaxDocumentSize)}
	}
	cfg := Default()
	if err := decode(data, &cfg); err != nil {
		return Config{}, nil, err
	}
	var rep report
	applyEnv(&rep, &cfg, env)
	cfg.validate(&rep)
	warns, err := rep.result()
	if err != nil {
		return Config{}, nil, err
	}
	return cfg, warns, nil
}

// decode strictly decodes exactly one YAML document from data into cfg.
func decode(data []byte, cfg *Config) error {
	// First pass: syntax, document count, and a line -> key path index used
	// to name the key in every decoding error.
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return nil // empty document: defaults only
		}
		return &FieldError{Message: "invalid YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	var next yaml.Node
	if err := dec.Decode(&next); !errors.Is(err, io.EOF) {
		return &FieldError{Message: "the file must hold exactly one YAML document"}
	}
	if errs := duplicateKeys(&root, ""); len(errs) > 0 {
		return errors.Join(errs...)
	}
	paths := map[int][]string{}
	indexPaths(&root, "", paths)

	// Second pass: strict decoding into the typed configuration.
	strict := yaml.NewDecoder(bytes.NewReader(data))
	strict.KnownFields(true)
	err := strict.Decode(cfg)
	if err == nil || errors.Is(err, io.EOF) {
		return nil
	}
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return &FieldError{Message: "invalid YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	errs := make([]error, 0, len(te.Errors))
	for _, msg := range te.Errors {
		errs = append(errs, decodeError(msg, paths))
	}
	return errors.Join(errs...)
}

// indexPaths records, for every line, the dotted paths of the keys on it in
// document order (several with flow mappings like {a: 1, b: 2}).
func indexPaths(n *yaml.Node, prefix string, paths map[int][]string) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			indexPaths(c, prefix, paths)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := k.Value
			if prefix != "" {
				p = prefix + "." + k.Value
			}
			paths[k.Line] = append(paths[k.Line], p)
			if v.Line != k.Line && v.Kind != yaml.MappingNode && v.Kind != yaml.SequenceNode {
				paths[v.Line] = append(paths[v.Line], p)
			}
			indexPaths(v, p, paths)
		}
	case yaml.SequenceNode:
		if prefix == "" {
			return // not a configuration document; the decoder says so
		}
		for i, c := range n.Content {
			p := prefix + "[" + strconv.Itoa(i) + "]"
			paths[c.Line] = append(paths[c.Line], p)
			indexPaths(c, p, paths)
		}
	}
}

// duplicateKeys reports every repeated key at every level. yaml.v3 rejects
// duplicates too, but stops descending at the first mapping that has one.
func duplicateKeys(n *yaml.Node, prefix string) []error {
	var errs []error
	switch n.Kind {
	case yaml.DocumentNode, yaml.SequenceNode:
		for i, c := range n.Content {
			p := prefix
			if n.Kind == yaml.SequenceNode {
				p = prefix + "[" + strconv.Itoa(i) + "]"
			}
			errs = append(errs, duplicateKeys(c, p)...)
		}
	case yaml.MappingNode:
		first := map[string]int{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			p := k.Value
			if prefix != "" {
				p = prefix + "." + k.Value
			}
			if k.Kind == yaml.ScalarNode {
				if line, dup := first[k.Value]; dup {
					errs = append(errs, &FieldError{Key: p, Message: fmt.Sprintf("duplicate key (first defined at line %d) (line %d)", line, k.Line)})
					continue
				}
				first[k.Value] = k.Line
			}
			errs = append(errs, duplicateKeys(n.Content[i+1], p)...)
		}
	}
	return errs
}

// pathOn returns the key path for an error on line: the key named name if
// given, else the first key on the line.
func pathOn(paths map[int][]string, line int, name string) string {
	ps := paths[line]
	if name != "" {
		for i := len(ps) - 1; i >= 0; i-- {
			if ps[i] == name || strings.HasSuffix(ps[i], "."+name) {
				return ps[i]
			}
		}
	}
	if len(ps) == 0 {
		return ""
	}
	return ps[0]
}

var (
	reLine      = regexp.MustCompile(`^line (\d+): (.*)$`)
	reUnknown   = regexp.MustCompile(`^field (.+) not found in type `)
	reDuplicate = regexp.MustCompile(`^mapping key (".*") already defined at line (\d+)$`)
	reCannot    = regexp.MustCompile(`^cannot unmarshal (!!\w+)(?: .*)? into (.+)$`)
)

// decodeError turns one yaml.v3 message into a FieldError naming the key path.
// Values from the document are not repeated: they may be secrets.
func decodeError(msg string, paths map[int][]string) error {
	m := reLine.FindStringSubmatch(msg)
	if m == nil {
		return &FieldError{Message: msg}
	}
	text, name := m[2], ""
	switch {
	case reUnknown.MatchString(text):
		name = reUnknown.FindStringSubmatch(text)[1]
		text = "unknown key"
	case reDuplicate.MatchString(text):
		d := reDuplicate.FindStringSubmatch(text)
		name, _ = strconv.Unquote(d[1])
		text = "duplicate key (first defined at line " + d[2] + ")"
	case reCannot.MatchString(text):
		c := reCannot.FindStringSubmatch(text)
		text = "cannot use a " + strings.TrimPrefix(c[1], "!!") + " value here, want " + goTypeName(c[2])
	case strings.HasPrefix(text, "cannot unmarshal"):
		text = "value has the wrong type"
	}
	line, _ := strconv.Atoi(m[1])
	return &FieldError{Key: pathOn(paths, line, name), Message: text + " (line " + m[1] + ")"}
}

// goTypeName describes a Go type from a yaml.v3 message in configuration terms.
func goTypeName(t string) string {
	switch {
	case t == "string":
		return "a string"
	case t == "bool":
		return "true or false"
	case strings.HasPrefix(t, "int"):
		return "an integer"
	case strings.HasPrefix(t, "[]"):
		return "a list"
	case strings.HasPrefix(t, "config."), strings.HasPrefix(t, "workload."):
		return "a mapping"
	}
	return t
}

// keyOf returns the YAML key of a struct field ("" if it has none).
func keyOf(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	if name == "-" {
		return ""
	}
	return name
}
