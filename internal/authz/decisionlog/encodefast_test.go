package decisionlog

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

// checkMarshalEntry asserts that marshalEntry answers as json.Marshal.
func checkMarshalEntry(t *testing.T, e *Entry) {
	t.Helper()
	got, gerr := marshalEntry(e)
	want, werr := json.Marshal(e)
	if (gerr == nil) != (werr == nil) || !bytes.Equal(got, want) {
		t.Fatalf("marshalEntry:\n%s (%v)\njson.Marshal:\n%s (%v)", got, gerr, want, werr)
	}
}

func sampleEntry() *Entry {
	return &Entry{
		ID: "dec_x", Time: time.Date(2026, 11, 27, 23, 0, 0, 123456000, time.UTC), Caller: "orders-svc",
		Principal: Principal{Type: "user", ID: "usr_alice", Issuer: "https://idp", TokenHash: "abcd",
			Attrs: map[string]any{"roles": []any{"admin", "<b>"}, "tenant": "acme", "n": json.Number("12.5e3")}},
		Action:   "read",
		Resource: Resource{Type: "order", ID: "o-1", Attrs: map[string]any{"status": "open", "meta": map[string]any{"z": nil, "a": true}}},
		Context:  map[string]any{"ip": "10.0.0.1", "list": []any{}, "nil_list": []any(nil), "nil_map": map[string]any(nil)},
		Allow:    true, Reason: "permitted by p & q", Policies: []string{"p", "q"},
		Relations: []RelationCheck{{Check: "order:o-1#view@user:usr_alice", Allowed: true, Path: []string{"a", "b"}}, {Check: "x"}},
		Errors:    []string{"e1"}, PolicyVersion: "v1", Revision: "7", LatencyMicros: 42,
		Shadow: &Shadow{Allow: false, Reason: "r", Policies: []string{"s"}, Version: "v2", Disagree: true},
	}
}

func TestMarshalEntryMatchesJSON(t *testing.T) {
	cases := map[string]func(e *Entry){
		"full":         func(*Entry) {},
		"zero":         func(e *Entry) { *e = Entry{} },
		"minimal":      func(e *Entry) { *e = Entry{ID: "d", Time: time.Unix(0, 0).UTC()} },
		"escapes":      func(e *Entry) { e.Reason = "a\"b\\c\n\r\t\b\f\x01\x1f<>&\u2028\u2029é\xff\xfe日本" },
		"escaped-keys": func(e *Entry) { e.Context = map[string]any{"<k>": 1.5, "\xff": "v"} },
		"float-falls-back": func(e *Entry) {
			e.Context = map[string]any{"f": 1.5, "i": 3}
		},
		"numbers": func(e *Entry) {
			e.Context = map[string]any{"a": json.Number("0"), "b": json.Number("-0.5E+7"), "c": json.Number("1e5")}
		},
		"bad-number":   func(e *Entry) { e.Context = map[string]any{"a": json.Number("01")} },
		"empty-number": func(e *Entry) { e.Context = map[string]any{"a": json.Number("")} },
		"non-utc":      func(e *Entry) { e.Time = e.Time.In(time.FixedZone("X", 3600)) },
		"year-10000":   func(e *Entry) { e.Time = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) },
		"no-shadow":    func(e *Entry) { e.Shadow = nil; e.Relations = nil; e.Policies = []string{} },
		"empty-maps":   func(e *Entry) { e.Context = map[string]any{}; e.Resource.Attrs = nil },
		"many-keys": func(e *Entry) {
			e.Context = map[string]any{}
			for i := range 40 {
				e.Context[string(rune('a'+i%26))+string(rune('0'+i/26))] = i % 2
			}
		},
	}
	for name, mutate := range cases {
		t.Run("AZ-log/"+name, func(t *testing.T) {
			e := sampleEntry()
			mutate(e)
			checkMarshalEntry(t, e)
		})
	}
	if _, ok := appendEntry(nil, sampleEntry()); !ok {
		t.Fatal("fast path refused the sample entry")
	}
}

// FuzzMarshalEntry is the differential check of the encoder against
// json.Marshal, with strings and attribute JSON from the fuzzer.
func FuzzMarshalEntry(f *testing.F) {
	f.Add("r\u2028<", []byte(`{"a":[1,{"b":null}],"c":"\u00e9"}`), int64(1e18), true)
	f.Add("\xff", []byte(`{"x":-0.5e-3}`), int64(0), false)
	f.Fuzz(func(t *testing.T, s string, attrs []byte, nanos int64, allow bool) {
		e := sampleEntry()
		e.Reason, e.Caller, e.Principal.ID, e.Allow = s, s, s, allow
		e.Time = time.Unix(0, nanos).UTC()
		dec := json.NewDecoder(bytes.NewReader(attrs))
		dec.UseNumber()
		var m map[string]any
		if dec.Decode(&m) == nil {
			e.Context = m
			e.Resource.Attrs = map[string]any{s: m}
		}
		checkMarshalEntry(t, e)
	})
}

func BenchmarkEncodeLine(b *testing.B) {
	e := sampleEntry()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := encodeLine(e); err != nil {
			b.Fatal(err)
		}
	}
}
