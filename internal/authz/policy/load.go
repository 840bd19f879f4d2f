package policy

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/cedar-policy/cedar-go"
	xast "github.com/cedar-policy/cedar-go/x/exp/ast"
	"github.com/cedar-policy/cedar-go/x/exp/schema"
	"github.com/cedar-policy/cedar-go/x/exp/schema/resolved"
	"github.com/cedar-policy/cedar-go/x/exp/schema/validate"
)

const (
	// SchemaFile is the required schema file of a policy directory.
	SchemaFile = "schema.cedarschema"
	// PolicyExt is the extension of policy files.
	PolicyExt = ".cedar"
	// MaxFileSize bounds every file Load reads.
	MaxFileSize = 4 << 20
)

// posRE finds the position Cedar puts in parse errors: "<input>:L:C" for
// policies, "schema.cedarschema:L:C:" for the schema.
var posRE = regexp.MustCompile(`(?:<input>|schema\.cedarschema):(\d+):(\d+):?\s*`)

// Load reads a policy directory: DIR/schema.cedarschema and DIR/*.cedar (not
// recursive; other files are ignored). Symbolic links are followed (Kubernetes
// ConfigMap volumes are made of them) but must lead to regular files of at
// most MaxFileSize bytes. Every problem is reported at once in a *LoadError.
func Load(dir string) (*Set, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("policy: %s is not a directory", dir)
	}
	return LoadFS(os.DirFS(dir))
}

// LoadFS is Load over an fs.FS (tests, embedded sets).
func LoadFS(fsys fs.FS) (set *Set, err error) {
	defer func() {
		// Fail closed if the Cedar library panics on some input: a reload
		// must never take the server down.
		if r := recover(); r != nil {
			set, err = nil, &LoadError{Problems: []Problem{{File: ".", Message: fmt.Sprintf("internal error in the Cedar library: %v", r)}}}
		}
	}()
	files, probs, err := readFiles(fsys)
	if err != nil {
		return nil, err
	}
	l := loader{files: files, problems: probs}
	return l.load()
}

type srcFile struct {
	name string
	data []byte
}

// readFiles reads the schema and policy files in name order.
func readFiles(fsys fs.FS) ([]srcFile, []Problem, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, nil, fmt.Errorf("policy: read directory: %w", err)
	}
	var files []srcFile
	var probs []Problem
	for _, e := range entries { // fs.ReadDir sorts by name
		name := e.Name()
		if name != SchemaFile && (!strings.HasSuffix(name, PolicyExt) || strings.HasPrefix(name, ".")) {
			continue
		}
		data, err := readFile(fsys, name)
		if err != nil {
			probs = append(probs, Problem{File: name, Message: err.Error()})
			continue
		}
		files = append(files, srcFile{name: name, data: data})
	}
	return files, probs, nil
}

func readFile(fsys fs.FS, name string) ([]byte, error) {
	info, err := fs.Stat(fsys, name) // follows symbolic links
	if err != nil {
		return nil, fmt.Errorf("cannot read: %w", err)
	}
	if !info.Mode().IsRegular() {
		return nil, errors.New("not a regular file")
	}
	if info.Size() > MaxFileSize {
		return nil, fmt.Errorf("file is larger than %d bytes", MaxFileSize)
	}
	f, err := fsys.Open(name)
	if err != nil {
		return nil, fmt.Errorf("cannot read: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("cannot read: %w", err)
	}
	if len(data) > MaxFileSize { // grew after Stat
		return nil, fmt.Errorf("file is larger than %d bytes", MaxFileSize)
	}
	return data, nil
}

// version is the first 16 hex digits of SHA-256 over the sorted file names
// and contents (each length-prefixed, so no two inputs collide).
func version(files []srcFile) string {
	sorted := slices.Clone(files)
	slices.SortFunc(sorted, func(a, b srcFile) int { return cmp.Compare(a.name, b.name) })
	h := sha256.New()
	for _, f := range sorted {
		fmt.Fprintf(h, "%d:%s%d:", len(f.name), f.name, len(f.data))
		h.Write(f.data)
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

type loader struct {
	files    []srcFile
	problems []Problem
}

type loadedPolicy struct {
	id   cedar.PolicyID
	file string
	p    *cedar.Policy
}

func (l *loader) add(file string, line, col int, msg string) {
	l.problems = append(l.problems, Problem{File: file, Line: line, Column: col, Message: msg})
}

// addErr records a Cedar error, lifting the position Cedar embeds in the message.
func (l *loader) addErr(file string, err error) {
	msg := err.Error()
	m := posRE.FindStringSubmatchIndex(msg)
	if m == nil {
		l.add(file, 0, 0, msg)
		return
	}
	line, _ := strconv.Atoi(msg[m[2]:m[3]])
	col, _ := strconv.Atoi(msg[m[4]:m[5]])
	head, rest := msg[:m[0]], strings.TrimSpace(msg[m[1]:])
	head = strings.TrimPrefix(head, "parser error: ")
	if strings.Contains(head, "parse error at") {
		if r, ok := strings.CutPrefix(rest, `"": `); ok {
			rest = "syntax error: " + r
		} else {
			rest = "syntax error at " + rest
		}
	} else if head = strings.TrimSpace(head); head != "" {
		rest = head + " " + rest
	}
	l.add(file, line, col, rest)
}

func (l *loader) load() (*Set, error) {
	var schemaSrc []byte
	haveSchema := false
	var policies []loadedPolicy
	seen := map[cedar.PolicyID]cedar.Position{}
	for _, f := range l.files {
		if f.name == SchemaFile {
			schemaSrc, haveSchema = f.data, true
			continue
		}
		list, err := cedar.NewPolicyListFromBytes(f.name, f.data)
		if err != nil {
			l.addErr(f.name, err)
			continue
		}
		for i, p := range list {
			pos := p.Position()
			id := cedar.PolicyID(fmt.Sprintf("%s:%d", f.name, i))
			if v, ok := p.Annotations()["id"]; ok {
				if v == "" || strings.ContainsFunc(string(v), unicode.IsControl) {
					l.add(f.name, pos.Line, pos.Column, "@id must be non-empty and free of control characters")
					continue
				}
				id = cedar.PolicyID(v)
			}
			if first, dup := seen[id]; dup {
				l.add(f.name, pos.Line, pos.Column, fmt.Sprintf("duplicate policy id %q (first at %s:%d:%d)", id, first.Filename, first.Line, first.Column))
				continue
			}
			seen[id] = pos
			policies = append(policies, loadedPolicy{id: id, file: f.name, p: p})
		}
	}
	var rs *resolved.Schema
	if !haveSchema {
		if !slices.ContainsFunc(l.problems, func(p Problem) bool { return p.File == SchemaFile }) {
			l.add(SchemaFile, 0, 0, "missing: a policy directory needs a Cedar schema")
		}
	} else {
		rs = l.schema(schemaSrc)
	}
	if rs != nil {
		v := validate.New(rs, validate.WithStrict())
		for _, lp := range policies {
			err := v.Policy("", (*xast.Policy)(lp.p.AST()))
			if err == nil {
				continue
			}
			pos := lp.p.Position()
			for _, e := range flatten(err) {
				l.add(lp.file, pos.Line, pos.Column, fmt.Sprintf("policy %s: %s", lp.id, e.Error()))
			}
		}
	}
	if len(l.problems) > 0 {
		slices.SortStableFunc(l.problems, func(a, b Problem) int {
			return cmp.Or(cmp.Compare(a.File, b.File), cmp.Compare(a.Line, b.Line), cmp.Compare(a.Column, b.Column))
		})
		return nil, &LoadError{Problems: l.problems}
	}
	return newSet(rs, policies, version(l.files)), nil
}

// schema parses and resolves the schema and checks the relations records.
func (l *loader) schema(src []byte) *resolved.Schema {
	var s schema.Schema
	s.SetFilename(SchemaFile)
	if err := s.UnmarshalCedar(src); err != nil {
		l.addErr(SchemaFile, err)
		return nil
	}
	rs, err := s.Resolve()
	if err != nil {
		l.addErr(SchemaFile, err)
		return nil
	}
	bad := false
	for uid, a := range rs.Actions {
		if a.AppliesTo == nil {
			continue
		}
		attr, ok := a.AppliesTo.Context[relationsAttr]
		if !ok {
			continue
		}
		rec, isRec := attr.Type.(resolved.RecordType)
		okRec := isRec
		for _, m := range rec {
			if _, isBool := m.Type.(resolved.BoolType); !isBool {
				okRec = false
			}
		}
		if !okRec {
			l.add(SchemaFile, 0, 0, fmt.Sprintf("action %s: context.%s must be a record of Bool", uid, relationsAttr))
			bad = true
		}
	}
	if bad {
		return nil
	}
	return rs
}

func flatten(err error) []error {
	if u, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range u.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}

// Version identifies the set's content: the first 16 hex digits of SHA-256
// over the sorted file names and contents.
func (s *Set) Version() string {
	if s == nil {
		return ""
	}
	return s.version
}

// Len is the number of policies in the set.
func (s *Set) Len() int {
	if s == nil {
		return 0
	}
	return len(s.policies)
}

// Relations returns the sorted names of the Bool attributes of the
// "relations" record in the action's declared context, nil if the action is
// unknown or declares none. The service runs one ReBAC check per name.
func (s *Set) Relations(action string) []string {
	if s == nil {
		return nil
	}
	a, ok := s.actions[action]
	if !ok || len(a.relations) == 0 {
		return nil
	}
	return slices.Clone(a.relations)
}
