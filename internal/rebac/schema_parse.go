package rebac

import (
	"fmt"
	"strings"
)

// Limits of the schema language, so that a hostile or broken schema file
// cannot exhaust memory or stack.
const (
	maxSchemaBytes   = 1 << 20
	maxDefinitions   = 1000
	maxStatements    = 1000 // relations + permissions per definition
	maxSubjectTypes  = 100  // per relation
	maxExprTerms     = 1000 // per permission
	maxExprNesting   = 32   // parentheses
	maxErrorsPerFile = 100
)

type tokKind int

const (
	tokEOF tokKind = iota
	tokIdent
	tokPunct // one of { } : | # = + & - ( ) and "->"
	tokBad
)

type pos struct{ line, col int }

type token struct {
	kind tokKind
	text string
	pos  pos
}

func (t token) String() string {
	switch t.kind {
	case tokEOF:
		return "end of file"
	case tokIdent:
		return fmt.Sprintf("%q", clip(t.text))
	default:
		return fmt.Sprintf("%q", t.text)
	}
}

// lexer splits the schema into tokens, skipping whitespace and comments.
type lexer struct {
	src       []byte
	off       int
	line, col int
}

func (l *lexer) adv() {
	if l.src[l.off] == '\n' {
		l.line++
		l.col = 1
	} else {
		l.col++
	}
	l.off++
}

func (l *lexer) next() (token, string) {
	for l.off < len(l.src) {
		c := l.src[l.off]
		switch {
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
			l.adv()
		case c == '/' && l.off+1 < len(l.src) && l.src[l.off+1] == '/':
			for l.off < len(l.src) && l.src[l.off] != '\n' {
				l.adv()
			}
		case c == '/' && l.off+1 < len(l.src) && l.src[l.off+1] == '*':
			p := pos{l.line, l.col}
			l.adv()
			l.adv()
			for {
				if l.off >= len(l.src) {
					return token{kind: tokBad, pos: p}, "unterminated comment"
				}
				if l.src[l.off] == '*' && l.off+1 < len(l.src) && l.src[l.off+1] == '/' {
					l.adv()
					l.adv()
					break
				}
				l.adv()
			}
		default:
			return l.token()
		}
	}
	return token{kind: tokEOF, pos: pos{l.line, l.col}}, ""
}

func isIdentByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_'
}

func (l *lexer) token() (token, string) {
	p := pos{l.line, l.col}
	c := l.src[l.off]
	if isIdentByte(c) {
		start := l.off
		for l.off < len(l.src) && isIdentByte(l.src[l.off]) {
			l.adv()
		}
		return token{kind: tokIdent, text: string(l.src[start:l.off]), pos: p}, ""
	}
	if c == '-' && l.off+1 < len(l.src) && l.src[l.off+1] == '>' {
		l.adv()
		l.adv()
		return token{kind: tokPunct, text: "->", pos: p}, ""
	}
	if strings.IndexByte("{}:|#=+&-()*", c) >= 0 {
		l.adv()
		return token{kind: tokPunct, text: string(c), pos: p}, ""
	}
	l.adv()
	if c < ' ' || c > '~' {
		return token{kind: tokBad, pos: p}, fmt.Sprintf("unexpected byte 0x%02x", c)
	}
	return token{kind: tokBad, pos: p}, fmt.Sprintf("unexpected character %q", string(c))
}

// Parsed, not yet validated, schema.

type exprKind int

const (
	exprRef exprKind = iota + 1 // a relation or permission of the same definition
	exprArrow
	exprUnion
	exprIntersect
	exprExclude // children[0] minus children[1]
)

type expr struct {
	kind     exprKind
	name     string // exprRef: the name; exprArrow: the tupleset relation
	target   string // exprArrow: the permission evaluated on the subjects
	pos      pos
	children []*expr
}

type subjectType struct {
	typ, rel string
	pos      pos
}

type relationDef struct {
	name  string
	pos   pos
	types []subjectType
}

type permissionDef struct {
	name string
	pos  pos
	expr *expr
}

type definition struct {
	name  string
	pos   pos
	rels  map[string]*relationDef
	perms map[string]*permissionDef
	order []string // relation and permission names in declaration order
}

type parser struct {
	file string
	lx   lexer
	tok  token
	errs []posError
	defs []*definition
}

// posError is one schema error, "file:line:col: message".
type posError struct {
	pos pos
	msg string
}

func (p *parser) errorf(at pos, format string, args ...any) {
	p.errs = append(p.errs, posError{pos: at, msg: fmt.Sprintf(format, args...)})
}

// bail is panicked to abandon a statement after a syntax error; the
// statement loop recovers and resynchronises.
type bail struct{}

func (p *parser) next() {
	for {
		t, msg := p.lx.next()
		if t.kind == tokBad {
			p.errorf(t.pos, "%s", msg)
			if msg == "unterminated comment" {
				p.tok = token{kind: tokEOF, pos: t.pos}
				return
			}
			continue
		}
		p.tok = t
		return
	}
}

func (p *parser) is(text string) bool {
	return p.tok.kind == tokPunct && p.tok.text == text
}

func (p *parser) isKeyword(kw string) bool {
	return p.tok.kind == tokIdent && p.tok.text == kw
}

func (p *parser) expect(text string) {
	if !p.is(text) {
		p.errorf(p.tok.pos, "expected %q, found %s", text, p.tok)
		panic(bail{})
	}
	p.next()
}

// keywords cannot be used as names, so that recovery after an error can
// resynchronise on them.
func isKeyword(s string) bool { return s == "definition" || s == "relation" || s == "permission" }

// name reads an identifier and checks the name rule.
func (p *parser) name(what string) (string, pos) {
	t := p.tok
	if t.kind != tokIdent || isKeyword(t.text) {
		p.errorf(t.pos, "expected %s name, found %s", what, t)
		panic(bail{})
	}
	if !validName(t.text) {
		p.errorf(t.pos, "invalid %s name %q: must match [a-z][a-z0-9_]{0,63}", what, clip(t.text))
	}
	p.next()
	return t.text, t.pos
}

// parse parses the whole file, recovering after errors at statement and
// definition boundaries so that every error is reported.
func (p *parser) parse() {
	p.lx = lexer{src: p.lx.src, line: 1, col: 1}
	p.next()
	for p.tok.kind != tokEOF && len(p.errs) < maxErrorsPerFile {
		if !p.isKeyword("definition") {
			p.errorf(p.tok.pos, "expected \"definition\", found %s", p.tok)
			p.next()
			for p.tok.kind != tokEOF && !p.isKeyword("definition") {
				p.next()
			}
			continue
		}
		if len(p.defs) == maxDefinitions {
			p.errorf(p.tok.pos, "too many definitions (max %d)", maxDefinitions)
			return
		}
		p.definition()
	}
}

func (p *parser) definition() {
	d := &definition{pos: p.tok.pos, rels: map[string]*relationDef{}, perms: map[string]*permissionDef{}}
	ok := p.guard(func() {
		p.next()
		d.name, _ = p.name("definition")
		p.expect("{")
	})
	if !ok {
		p.syncTop()
		return
	}
	p.defs = append(p.defs, d)
	for len(p.errs) < maxErrorsPerFile {
		switch {
		case p.is("}"):
			p.next()
			return
		case p.tok.kind == tokEOF:
			p.errorf(p.tok.pos, "expected \"}\" to close definition %q, found end of file", d.name)
			return
		case p.isKeyword("definition"):
			p.errorf(p.tok.pos, "expected \"}\" to close definition %q, found \"definition\"", d.name)
			return
		case len(d.order) == maxStatements:
			p.errorf(p.tok.pos, "too many relations and permissions in definition %q (max %d)", d.name, maxStatements)
			p.syncTop()
			return
		case p.isKeyword("relation"):
			if !p.guard(func() { p.relation(d) }) {
				p.syncStatement()
			}
		case p.isKeyword("permission"):
			if !p.guard(func() { p.permission(d) }) {
				p.syncStatement()
			}
		default:
			p.errorf(p.tok.pos, "expected \"relation\", \"permission\" or \"}\", found %s", p.tok)
			p.next()
			p.syncStatement()
		}
	}
}

// guard runs f, turning a bail into false.
func (p *parser) guard(f func()) (ok bool) {
	defer func() {
		if r := recover(); r != nil {
			if _, isBail := r.(bail); !isBail {
				panic(r)
			}
			ok = false
		}
	}()
	f()
	return true
}

func (p *parser) syncStatement() {
	for p.tok.kind != tokEOF && !p.is("}") && !p.isKeyword("relation") &&
		!p.isKeyword("permission") && !p.isKeyword("definition") {
		p.next()
	}
}

func (p *parser) syncTop() {
	for p.tok.kind != tokEOF && !p.isKeyword("definition") {
		p.next()
	}
}

func (p *parser) declare(d *definition, name string, at pos, isRel bool) bool {
	kind := "permission"
	if isRel {
		kind = "relation"
	}
	if _, dup := d.rels[name]; dup {
		if isRel {
			p.errorf(at, "duplicate relation %q in definition %q", name, d.name)
		} else {
			p.errorf(at, "permission %q clashes with relation %q in definition %q", name, name, d.name)
		}
		return false
	}
	if _, dup := d.perms[name]; dup {
		if isRel {
			p.errorf(at, "relation %q clashes with permission %q in definition %q", name, name, d.name)
		} else {
			p.errorf(at, "duplicate %s %q in definition %q", kind, name, d.name)
		}
		return false
	}
	d.order = append(d.order, name)
	return true
}

func (p *parser) relation(d *definition) {
	p.next()
	name, at := p.name("relation")
	r := &relationDef{name: name, pos: at}
	if p.declare(d, name, at, true) {
		d.rels[name] = r
	}
	p.expect(":")
	for {
		st := subjectType{pos: p.tok.pos}
		st.typ, _ = p.name("type")
		if p.is("#") {
			p.next()
			st.rel, _ = p.name("relation")
		} else if p.is(":") {
			p.errorf(p.tok.pos, "wildcard subject types are not supported")
			panic(bail{})
		}
		if len(r.types) == maxSubjectTypes {
			p.errorf(st.pos, "too many subject types in relation %q (max %d)", name, maxSubjectTypes)
			panic(bail{})
		}
		r.types = append(r.types, st)
		if !p.is("|") {
			break
		}
		p.next()
	}
}

func (p *parser) permission(d *definition) {
	p.next()
	name, at := p.name("permission")
	pd := &permissionDef{name: name, pos: at}
	if p.declare(d, name, at, false) {
		d.perms[name] = pd
	}
	p.expect("=")
	terms := 0
	pd.expr = p.union(0, &terms) // stays nil after a syntax error
}

// binary parses one precedence level: sub { op sub }, flattening n-ary
// unions and intersections and nesting exclusions to the left.
func (p *parser) binary(op string, kind exprKind, sub func() *expr) *expr {
	left := sub()
	if !p.is(op) {
		return left
	}
	n := &expr{kind: kind, pos: left.pos, children: []*expr{left}}
	for p.is(op) {
		p.next()
		right := sub()
		if kind == exprExclude && len(n.children) == 2 {
			n = &expr{kind: kind, pos: n.pos, children: []*expr{n}}
		}
		n.children = append(n.children, right)
	}
	return n
}

func (p *parser) union(depth int, terms *int) *expr {
	return p.binary("+", exprUnion, func() *expr {
		return p.binary("&", exprIntersect, func() *expr {
			return p.binary("-", exprExclude, func() *expr { return p.term(depth, terms) })
		})
	})
}

func (p *parser) term(depth int, terms *int) *expr {
	at := p.tok.pos
	if p.is("(") {
		if depth >= maxExprNesting {
			p.errorf(at, "expression nested too deeply (max %d)", maxExprNesting)
			panic(bail{})
		}
		p.next()
		e := p.union(depth+1, terms)
		p.expect(")")
		return e
	}
	*terms++
	if *terms > maxExprTerms {
		p.errorf(at, "expression too long (max %d terms)", maxExprTerms)
		panic(bail{})
	}
	if p.tok.kind != tokIdent || isKeyword(p.tok.text) {
		p.errorf(at, "expected relation or permission name, found %s", p.tok)
		panic(bail{})
	}
	name, _ := p.name("relation or permission")
	if !p.is("->") {
		return &expr{kind: exprRef, name: name, pos: at}
	}
	p.next()
	target, _ := p.name("permission")
	return &expr{kind: exprArrow, name: name, target: target, pos: at}
}
