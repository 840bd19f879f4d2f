package authz

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
)

// referenceStrict is checkStrict as it was before the fast path: the
// json.Decoder token walker alone (kept as the differential oracle).
func referenceStrict(body []byte) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return errNotObject
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return errNotObject
	}
	if err := walkObject(dec, 1); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errTrailing
	}
	return nil
}

func errText(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

// manyMembers is an object of n members "k0".."k{n-1}" plus extra.
func manyMembers(n int, extra string) string {
	var b strings.Builder
	b.WriteString("{")
	for i := range n {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(`"k` + strings.Repeat("x", i%3) + string(rune('a'+i%26)) + strings.Repeat("y", i/26) + `":1`)
	}
	b.WriteString(extra + "}")
	return b.String()
}

var strictSeeds = []string{
	`{}`, ` { } `, `{"a":1,"a":2}`, `{"a":{"b":1,"b":2}}`, `{"a":[{"b":1},{"b":1,"b":1}]}`,
	`{"a":1,"\u0061":2}`, `{"a\"":1,"a\\":2,"a\"":3}`, `{"\ud800":1,"\udc00":2}`, `{"A":1,"a":2}`,
	`{"a":[[[[[[[1]]]]]]]}`, `{"a":[[[[[[[[1]]]]]]]]}`, `{"a":{"b":{"c":{"d":{"e":{"f":{"g":{}}}}}}}}`,
	`{"a":{"b":{"c":{"d":{"e":{"f":{"g":{"h":{}}}}}}}}}`, `{"a":{"b":{"c":{"d":{"e":{"f":{"g":[]}}}}}}}`,
	`{"a":{"b":{"c":{"d":{"e":{"f":{"g":[1]}}}}}},"a":1}`, `{"a":"}","b":"]","c":"\\","d":-1.5e+3,"e":true,"f":null}`,
	`[]`, `"x"`, `1`, `null`, `{} {}`, `{"a":1} x`, `{"a" 1}`, `{"a":}`, ``, "{\"a\":\"\xff\"}",
	`{"a":[1,2,{"x":1,"y":[true,false,null]}],"b":{"c":"d"}}`,
	`{"a":01}`, `{"a":-}`, `{"a":1.}`, `{"a":1e}`, `{"a":1e+}`, `{"a":-0.5E-7}`, `{"a":"\u12"}`, `{"a":"\u12G4"}`,
	`{"a":tru}`, `{"a":nul}`, `{"a":falsey}`, "{\"a\":\"\t\"}", "{\"a\":\"\x01\"}", `{"a":"\x"}`, `{"a":[1,]}`,
	`{"a":1,}`, `{,"a":1}`, `{"a":[,1]}`, `{"a" : [ 1 , 2 ] , "b" : { } }`, `{"a":1}}`, `{"a":[}`, `{"a":1`, `{"a`,
	`{"a":"\"","b":"\\"}`, `{"a":1e5,"b":-0,"c":0.0}`,
	manyMembers(40, ""), manyMembers(40, `,"ka":2`), manyMembers(17, `,"kxxq":2`), manyMembers(16, `,"ka":2`),
	`{"principal":{"id":"usr_alice","tenant":"acme","roles":["admin"]},"action":"read","resource":{"type":"order","id":"o-1","attrs":{"status":"open"}}}`,
}

// checkStrictAgainstReference asserts that checkStrict answers body
// exactly as the token walker does.
func checkStrictAgainstReference(t *testing.T, body []byte) {
	t.Helper()
	got := checkStrict(body)
	want := errNotUTF8
	if bytesValidUTF8(body) {
		want = referenceStrict(body)
	}
	if errText(got) != errText(want) {
		t.Fatalf("%q: checkStrict %v, token walker %v", body, got, want)
	}
	// The scanner is never more permissive than encoding/json.
	s := strictScan{b: body}
	if s.next() == '{' && s.object(1) == nil && !json.Valid(body[:s.i]) {
		t.Fatalf("%q: scanner accepted %q, json.Valid refuses it", body, body[:s.i])
	}
}

func bytesValidUTF8(b []byte) bool { return strings.ToValidUTF8(string(b), "\uFFFD") == string(b) }

func TestStrictFastMatchesWalker(t *testing.T) {
	for _, s := range strictSeeds {
		name := s
		if len(name) > 40 {
			name = name[:40]
		}
		t.Run("AZ-decode/"+name, func(t *testing.T) { checkStrictAgainstReference(t, []byte(s)) })
	}
}

// FuzzCheckStrict is the differential check of the fast path against the
// json.Decoder token walker: same acceptance, same message.
func FuzzCheckStrict(f *testing.F) {
	for _, s := range append(strictSeeds, fuzzSeeds...) {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) { checkStrictAgainstReference(t, body) })
}

func BenchmarkCheckStrict(b *testing.B) {
	body := []byte(strictSeeds[len(strictSeeds)-1])
	b.ReportAllocs()
	for b.Loop() {
		if err := checkStrict(body); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzSplitObject checks the fast member split and plain-string decoding
// against json.Unmarshal: whenever the fast path answers, it answers the
// same.
func FuzzSplitObject(f *testing.F) {
	for _, s := range append(strictSeeds, fuzzSeeds...) {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		if m, ok := splitObject(raw); ok {
			var want map[string]json.RawMessage
			if err := json.Unmarshal(raw, &want); err != nil {
				t.Fatalf("%q: split, but json.Unmarshal: %v", raw, err)
			}
			if len(m) != len(want) {
				t.Fatalf("%q: %d members, want %d", raw, len(m), len(want))
			}
			for k, v := range want {
				if !bytes.Equal(m[k], v) {
					t.Fatalf("%q: member %q = %q, want %q", raw, k, m[k], v)
				}
			}
		}
		if s, ok := plainString(raw); ok {
			var want string
			if err := json.Unmarshal(raw, &want); err != nil || s != want {
				t.Fatalf("%q: plain %q, json.Unmarshal %q (%v)", raw, s, want, err)
			}
		}
	})
}

func TestSplitObjectMatchesUnmarshal(t *testing.T) {
	if _, ok := splitObject([]byte(`{"a":{"b":[1]},"c":"d"}`)); !ok {
		t.Fatal("fast path refused a plain object")
	}
	for _, s := range append(strictSeeds, `{"a":"x\u0041","b":"\u00e9"}`, `{"a":{"b":[1,{"c":2}]},"a":3}`) {
		name := s
		if len(name) > 40 {
			name = name[:40]
		}
		t.Run("AZ-decode/"+name, func(t *testing.T) {
			m, ok := splitObject([]byte(s))
			var want map[string]json.RawMessage
			werr := json.Unmarshal([]byte(s), &want)
			if !ok {
				return // json.Unmarshal decides
			}
			if werr != nil || len(m) != len(want) {
				t.Fatalf("split %v, json.Unmarshal %v %v", m, want, werr)
			}
			for k, v := range want {
				if !bytes.Equal(m[k], v) {
					t.Fatalf("member %q = %q, want %q", k, m[k], v)
				}
			}
		})
	}
}

// decodeObjectReference is object's decoder path (the oracle).
func decodeObjectReference(raw []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var m map[string]any
	err := dec.Decode(&m)
	return m, err
}

// FuzzDecodeObject checks the fast attribute decoder against json.Decoder
// with UseNumber: whenever the fast path answers, it answers the same.
func FuzzDecodeObject(f *testing.F) {
	for _, s := range append(strictSeeds, fuzzSeeds...) {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		m, ok := decodeObject(raw)
		if !ok {
			return
		}
		want, err := decodeObjectReference(raw)
		if err != nil || !json.Valid(raw) {
			t.Fatalf("%q: decoded %v, reference %v", raw, m, err)
		}
		if !reflect.DeepEqual(m, want) {
			t.Fatalf("%q: decoded %#v, reference %#v", raw, m, want)
		}
	})
}

func TestDecodeObjectMatchesDecoder(t *testing.T) {
	if _, ok := decodeObject([]byte(`{"a":{"b":[1,{"c":"\u00e9"}]},"d":"x"}`)); !ok {
		t.Fatal("fast path refused a plain object")
	}
	for _, s := range append(strictSeeds, `{"a":{"b":[1,{"c":"\u00e9\n"}],"d":[],"e":{}},"f":null,"g":-1.5e3,"h":true}`) {
		name := s
		if len(name) > 40 {
			name = name[:40]
		}
		t.Run("AZ-decode/"+name, func(t *testing.T) {
			m, ok := decodeObject([]byte(s))
			if !ok {
				return
			}
			want, err := decodeObjectReference([]byte(s))
			if err != nil || !reflect.DeepEqual(m, want) {
				t.Fatalf("decoded %#v, reference %#v (%v)", m, want, err)
			}
		})
	}
}
