package rebac

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/gatehouse/gatehouse/internal/storage"
)

// MemReader is an in-memory, versioned tuple store implementing Reader (and
// the tuple part of storage.RelationStore) for tests and the development
// server. Like the storage contract, every write gets the next revision,
// tuples are created and deleted at revisions, and reads at a revision are
// stable snapshots. It is safe for concurrent use.
type MemReader struct {
	mu    sync.RWMutex
	head  storage.Revision
	rows  []*memRow
	live  map[storage.RelationTuple]*memRow
	byObj map[memObjKey][]*memRow
	bySub map[memObjKey][]*memRow
	types map[string][]*memRow
}

type memRow struct {
	t                storage.RelationTuple
	created, deleted storage.Revision // deleted 0: live
}

type memObjKey struct{ typ, id string }

// NewMemReader returns an empty store at revision 0.
func NewMemReader() *MemReader {
	return &MemReader{
		live:  map[storage.RelationTuple]*memRow{},
		byObj: map[memObjKey][]*memRow{},
		bySub: map[memObjKey][]*memRow{},
		types: map[string][]*memRow{},
	}
}

// WriteTuples applies writes atomically at the next revision, like
// storage.RelationStore.WriteTuples (no schema validation). When nothing
// changes, the head is returned and no revision is consumed.
func (m *MemReader) WriteTuples(_ context.Context, writes []storage.TupleWrite) (storage.Revision, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	seen := map[storage.RelationTuple]bool{}
	for _, w := range writes {
		if seen[w.Tuple] {
			return 0, fmt.Errorf("%w: tuple %s twice in one write", ErrInvalid, FormatTuple(w.Tuple))
		}
		if w.Op != storage.TupleTouch && w.Op != storage.TupleDelete {
			return 0, fmt.Errorf("%w: unknown op %d", ErrInvalid, w.Op)
		}
		seen[w.Tuple] = true
	}
	rev := m.head + 1
	changed := false
	touched := map[memObjKey]bool{}
	for _, w := range writes {
		row := m.live[w.Tuple]
		switch {
		case w.Op == storage.TupleTouch && row == nil:
			row = &memRow{t: w.Tuple, created: rev}
			m.rows = append(m.rows, row)
			m.live[w.Tuple] = row
			ok := memObjKey{w.Tuple.ObjectType, w.Tuple.ObjectID}
			sk := memObjKey{w.Tuple.SubjectType, w.Tuple.SubjectID}
			m.byObj[ok] = append(m.byObj[ok], row)
			touched[ok] = true
			m.bySub[sk] = append(m.bySub[sk], row)
			m.types[w.Tuple.ObjectType] = append(m.types[w.Tuple.ObjectType], row)
			changed = true
		case w.Op == storage.TupleDelete && row != nil:
			row.deleted = rev
			delete(m.live, w.Tuple)
			changed = true
		}
	}
	if !changed {
		return m.head, nil
	}
	for k := range touched {
		slices.SortStableFunc(m.byObj[k], func(a, b *memRow) int { return tupleCmp(a.t, b.t) })
	}
	m.head = rev
	return rev, nil
}

// MustWrite is WriteTuples with touches of tuples in the "order:o-1#owner@user:x"
// syntax; it panics on a malformed tuple (test helper).
func (m *MemReader) MustWrite(tuples ...string) storage.Revision {
	ws := make([]storage.TupleWrite, len(tuples))
	for i, s := range tuples {
		t, err := ParseTuple(s)
		if err != nil {
			panic(err)
		}
		ws[i] = storage.TupleWrite{Op: storage.TupleTouch, Tuple: t}
	}
	rev, err := m.WriteTuples(context.Background(), ws)
	if err != nil {
		panic(err)
	}
	return rev
}

// HeadRevision returns the newest revision.
func (m *MemReader) HeadRevision(context.Context) (storage.Revision, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.head, nil
}

func (m *MemReader) snapshot(at storage.Revision) (storage.Revision, error) {
	if at == 0 {
		return m.head, nil
	}
	if at > m.head {
		return 0, storage.ErrRevisionAhead
	}
	return at, nil
}

func (r *memRow) liveAt(at storage.Revision) bool {
	return r.created <= at && (r.deleted == 0 || r.deleted > at)
}

func tupleCmp(a, b storage.RelationTuple) int {
	return cmp.Or(cmp.Compare(a.ObjectID, b.ObjectID), cmp.Compare(a.Relation, b.Relation),
		cmp.Compare(a.SubjectType, b.SubjectType), cmp.Compare(a.SubjectID, b.SubjectID),
		cmp.Compare(a.SubjectRelation, b.SubjectRelation))
}

func clampLimit(limit int) int {
	if limit <= 0 {
		return 100
	}
	return min(limit, 1000)
}

// page sorts matches, skips those not after cursor (a formatted tuple) and
// returns one page and the next cursor.
func page(ts []storage.RelationTuple, cursor string, limit int, less func(a, b storage.RelationTuple) int) ([]storage.RelationTuple, string, error) {
	slices.SortFunc(ts, less)
	if cursor != "" {
		ct, err := ParseTuple(cursor)
		if err != nil {
			return nil, "", fmt.Errorf("%w: bad cursor", ErrInvalid)
		}
		i, _ := slices.BinarySearchFunc(ts, ct, less)
		for i < len(ts) && less(ts[i], ct) <= 0 {
			i++
		}
		ts = ts[i:]
	}
	limit = clampLimit(limit)
	if len(ts) <= limit {
		return ts, "", nil
	}
	return ts[:limit], FormatTuple(ts[limit-1]), nil
}

// ReadTuples implements Reader.
func (m *MemReader) ReadTuples(ctx context.Context, at storage.Revision, f storage.TupleFilter, cursor string, limit int) ([]storage.RelationTuple, string, error) {
	if err := ctx.Err(); err != nil {
		return nil, "", err
	}
	if len(f.ObjectIDs) > 1000 {
		return nil, "", fmt.Errorf("%w: more than 1000 object ids", ErrInvalid)
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	at, err := m.snapshot(at)
	if err != nil {
		return nil, "", err
	}
	match := func(r *memRow) bool {
		t := r.t
		return r.liveAt(at) && t.ObjectType == f.ObjectType &&
			(f.Relation == "" || t.Relation == f.Relation) &&
			(f.SubjectType == "" || t.SubjectType == f.SubjectType) &&
			(f.SubjectID == "" || t.SubjectID == f.SubjectID) &&
			(f.SubjectRelation == nil || t.SubjectRelation == *f.SubjectRelation)
	}
	if len(f.ObjectIDs) == 0 {
		var out []storage.RelationTuple
		for _, r := range m.types[f.ObjectType] {
			if match(r) {
				out = append(out, r.t)
			}
		}
		return page(out, cursor, limit, tupleCmp)
	}
	// Per-object row lists are kept sorted, so walking the sorted ids yields
	// the tuples in order without sorting them.
	var after *storage.RelationTuple
	if cursor != "" {
		ct, err := ParseTuple(cursor)
		if err != nil {
			return nil, "", fmt.Errorf("%w: bad cursor", ErrInvalid)
		}
		after = &ct
	}
	ids := slices.Clone(f.ObjectIDs)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	limit = clampLimit(limit)
	var out []storage.RelationTuple
	for _, id := range ids {
		if after != nil && id < after.ObjectID {
			continue
		}
		for _, r := range m.byObj[memObjKey{f.ObjectType, id}] {
			if !match(r) || after != nil && tupleCmp(r.t, *after) <= 0 {
				continue
			}
			if len(out) == limit {
				return out, FormatTuple(out[limit-1]), nil
			}
			out = append(out, r.t)
		}
	}
	return out, "", nil
}

// ReadBySubject implements Reader.
func (m *MemReader) ReadBySubject(ctx context.Context, at storage.Revision, f storage.SubjectFilter, cursor string, limit int) ([]storage.RelationTuple, string, error) {
	if err := ctx.Err(); err != nil {
		return nil, "", err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	at, err := m.snapshot(at)
	if err != nil {
		return nil, "", err
	}
	var out []storage.RelationTuple
	for _, r := range m.bySub[memObjKey{f.SubjectType, f.SubjectID}] {
		t := r.t
		if r.liveAt(at) && (f.SubjectRelation == nil || t.SubjectRelation == *f.SubjectRelation) &&
			(f.ObjectType == "" || t.ObjectType == f.ObjectType) && (f.Relation == "" || t.Relation == f.Relation) {
			out = append(out, t)
		}
	}
	return page(out, cursor, limit, func(a, b storage.RelationTuple) int {
		return cmp.Or(cmp.Compare(a.ObjectType, b.ObjectType), tupleCmp(a, b))
	})
}

// ObjectIDs implements Reader.
func (m *MemReader) ObjectIDs(ctx context.Context, at storage.Revision, objectType string, cursor string, limit int) ([]string, string, error) {
	if err := ctx.Err(); err != nil {
		return nil, "", err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	at, err := m.snapshot(at)
	if err != nil {
		return nil, "", err
	}
	seen := map[string]bool{}
	var ids []string
	for _, r := range m.types[objectType] {
		if r.liveAt(at) && !seen[r.t.ObjectID] {
			seen[r.t.ObjectID] = true
			ids = append(ids, r.t.ObjectID)
		}
	}
	slices.Sort(ids)
	if cursor != "" {
		i, found := slices.BinarySearch(ids, cursor)
		if found {
			i++
		}
		ids = ids[i:]
	}
	limit = clampLimit(limit)
	if len(ids) <= limit {
		return ids, "", nil
	}
	return ids[:limit], ids[limit-1], nil
}
