package jwtx

import (
	"slices"
	"testing"
)

func TestStringList(t *testing.T) {
	ok := map[string][]string{
		`[]`:                 {},
		`["a"]`:              {"a"},
		` [ "a" , "b\"c" ] `: {"a", `b"c`},
		`["\u00e9",""]`:      {"é", ""},
	}
	for in, want := range ok {
		got, err := StringList([]byte(in))
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("StringList(%s) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{`null`, `"a"`, `[1]`, `["a",null]`, `["a",["b"]]`, `[`, `["a"]x`, `{}`, ``, "[\"\xff\"]"} {
		if got, err := StringList([]byte(in)); err == nil {
			t.Errorf("StringList(%s) = %q, want an error", in, got)
		}
	}
}

func TestCheckObjectExported(t *testing.T) {
	if err := CheckObject([]byte(`{"keys":[{"kid":"a"}]}`)); err != nil {
		t.Fatal(err)
	}
	for _, in := range []string{`{"kid":"a","KID":"b"}`, `[]`, `{"a":1}{}`} {
		if CheckObject([]byte(in)) == nil {
			t.Errorf("CheckObject(%s) accepted", in)
		}
	}
}
