package decisionlog

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
)

// Read parses a JSON-lines decision log and returns the entries matching
// f, newest first (by time; among equal times, the later line first), at
// most f.Limit of them when f.Limit > 0. Parsing is strict and fails on
// the first bad line, naming it: a line that is not exactly one JSON
// object, has a member Entry does not know (at any level outside context
// and attrs), or is longer than MaxLine bytes. Blank lines are skipped.
func Read(r io.Reader, f Filter) ([]Entry, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), MaxLine+1)
	var out []Entry
	line := 0
	for sc.Scan() {
		line++
		b := sc.Bytes()
		if len(b) > MaxLine {
			return nil, fmt.Errorf("decision log line %d: longer than %d bytes", line, MaxLine)
		}
		b = bytes.TrimSpace(b)
		if len(b) == 0 {
			continue
		}
		e, err := decodeLine(b)
		if err != nil {
			return nil, fmt.Errorf("decision log line %d: %w", line, err)
		}
		if f.Match(&e) {
			out = append(out, e)
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fmt.Errorf("decision log line %d: longer than %d bytes: %w", line+1, MaxLine, err)
		}
		return nil, fmt.Errorf("decision log: read after line %d: %w", line, err)
	}
	slices.Reverse(out)
	slices.SortStableFunc(out, func(a, b Entry) int { return b.Time.Compare(a.Time) })
	if f.Limit > 0 && len(out) > f.Limit {
		out = out[:f.Limit:f.Limit]
	}
	return out, nil
}

var errNotObject = errors.New("not a JSON object")

func decodeLine(b []byte) (Entry, error) {
	var e Entry
	if b[0] != '{' {
		return e, errNotObject
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	if err := dec.Decode(&e); err != nil {
		return Entry{}, fmt.Errorf("invalid entry: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Entry{}, errors.New("invalid entry: data after the JSON object")
	}
	return e, nil
}
