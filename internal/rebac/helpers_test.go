package rebac

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/gatehouse/gatehouse/internal/storage"
)

const docSchema = `definition user {}
definition team {
  relation member: user | team#member
  relation manager: user
}
definition order {
  relation owner: user
  relation team: team
  relation blocked: user
  permission view = owner + team->manager
  permission delete = owner - blocked
  permission pay = owner & team->member
}
`

func mustSchema(t testing.TB, src string) *Schema {
	t.Helper()
	s, err := ParseSchema("test.zed", []byte(src))
	if err != nil {
		t.Fatalf("ParseSchema: %v", err)
	}
	return s
}

func mustObj(t testing.TB, s string) Object {
	t.Helper()
	o, err := ParseObject(s)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func mustSubj(t testing.TB, s string) Subject {
	t.Helper()
	o, err := ParseSubject(s)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// countingReader counts the calls that reach the underlying reader.
type countingReader struct {
	Reader
	calls atomic.Int64
	fail  error
}

func (c *countingReader) ReadTuples(ctx context.Context, at storage.Revision, f storage.TupleFilter, cursor string, limit int) ([]storage.RelationTuple, string, error) {
	c.calls.Add(1)
	if c.fail != nil {
		return nil, "", c.fail
	}
	return c.Reader.ReadTuples(ctx, at, f, cursor, limit)
}

func (c *countingReader) ObjectIDs(ctx context.Context, at storage.Revision, typ, cursor string, limit int) ([]string, string, error) {
	c.calls.Add(1)
	if c.fail != nil {
		return nil, "", c.fail
	}
	return c.Reader.ObjectIDs(ctx, at, typ, cursor, limit)
}
