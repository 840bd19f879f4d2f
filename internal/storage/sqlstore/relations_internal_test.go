package sqlstore

import (
	"errors"
	"slices"
	"testing"

	"github.com/gatehouse/gatehouse/internal/storage"
)

func TestCursorRoundTrip(t *testing.T) {
	for _, key := range [][]string{
		{"o1", "owner", "user", "alice", ""},
		{"", "", "", "", ""},
		{"\"]}", "\x00", "é", "a b", "#@:"},
	} {
		c := encodeCursor(cursorTuples, key...)
		got, err := decodeCursor("test", c, cursorTuples, len(key))
		if err != nil || !slices.Equal(got, key) {
			t.Fatalf("round trip of %q: %q, %v", key, got, err)
		}
		if _, err := decodeCursor("test", c, cursorBySubject, len(key)); !errors.Is(err, storage.ErrInvalid) {
			t.Fatalf("cursor of another kind accepted: %v", err)
		}
	}
}

// FuzzDecodeCursor: decoding never panics, refuses with ErrInvalid, and what
// it accepts re-encodes to an equivalent cursor.
func FuzzDecodeCursor(f *testing.F) {
	f.Add(encodeCursor(cursorTuples, "o1", "owner", "user", "alice", ""))
	f.Add(encodeCursor(cursorObjectIDs, "o1"))
	f.Add("!!!")
	f.Add("")
	f.Add("WyJ0Il0")
	f.Fuzz(func(t *testing.T, c string) {
		for _, k := range []struct {
			kind string
			n    int
		}{{cursorTuples, 5}, {cursorBySubject, 4}, {cursorObjectIDs, 1}} {
			key, err := decodeCursor("fuzz", c, k.kind, k.n)
			if err != nil {
				if !errors.Is(err, storage.ErrInvalid) {
					t.Fatalf("error %v does not wrap ErrInvalid", err)
				}
				continue
			}
			if c == "" {
				if key != nil {
					t.Fatalf("empty cursor gave %q", key)
				}
				continue
			}
			if len(key) != k.n {
				t.Fatalf("accepted %q with %d fields, want %d", c, len(key), k.n)
			}
			again, err := decodeCursor("fuzz", encodeCursor(k.kind, key...), k.kind, k.n)
			if err != nil || !slices.Equal(again, key) {
				t.Fatalf("re-encoding %q: %q, %v", key, again, err)
			}
		}
	})
}
