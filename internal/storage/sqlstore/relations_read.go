package sqlstore

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/gatehouse/gatehouse/internal/storage"
)

// Reads run as one statement: the relation_head row LEFT JOINed with the
// page of tuples, so that the head (for the ErrRevisionAhead check) and the
// rows come from one snapshot in one round trip. The page itself is an
// ordered, limited subquery the index serves; the outer ORDER BY only sorts
// that page.

// Cursor kinds: a cursor of one method is refused by another.
const (
	cursorTuples    = "t"
	cursorBySubject = "s"
	cursorObjectIDs = "o"
)

// encodeCursor returns base64url (unpadded) of the JSON array [kind, key...].
func encodeCursor(kind string, key ...string) string {
	b, err := json.Marshal(append([]string{kind}, key...))
	if err != nil { // cannot happen for strings
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodeCursor parses a cursor of kind with n key fields; "" gives nil.
func decodeCursor(op, cursor, kind string, n int) ([]string, error) {
	if cursor == "" {
		return nil, nil
	}
	if len(cursor) > 8192 {
		return nil, invalid(op, "cursor too long")
	}
	b, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil {
		return nil, invalid(op, "malformed cursor")
	}
	var key []string
	if err := json.Unmarshal(b, &key); err != nil || len(key) != n+1 || key[0] != kind {
		return nil, invalid(op, "malformed cursor")
	}
	return key[1:], nil
}

// query accumulates the WHERE conditions and arguments of a read.
type query struct {
	conds []string
	args  []any
}

func (q *query) add(cond string, args ...any) {
	q.conds = append(q.conds, cond)
	q.args = append(q.args, args...)
}

// eq adds col = v unless v is empty (which matches anything).
func (q *query) eq(col, v string) {
	if v != "" {
		q.add(col+" = ?", v)
	}
}

// visible adds the snapshot condition of revision at (0: live rows).
func (q *query) visible(at storage.Revision) {
	if at == 0 {
		q.add("deleted_rev = 0")
		return
	}
	q.add("created_rev <= ? AND (deleted_rev = 0 OR deleted_rev > ?)", int64(at), int64(at))
}

// after adds the keyset condition (cols) > (key).
func (q *query) after(cols string, key []string) {
	if key == nil {
		return
	}
	marks := strings.TrimSuffix(strings.Repeat("?, ", len(key)), ", ")
	args := make([]any, len(key))
	for i, k := range key {
		args[i] = k
	}
	q.add("("+cols+") > ("+marks+")", args...)
}

// run executes SELECT h.revision, t.<cols> FROM the head LEFT JOIN the page
// of relation_tuples matching q in order, limit rows (through index on
// SQLite); scan gets each row's columns (NULL-able). It checks at against
// the head.
func (s *Store) run(ctx context.Context, op string, at storage.Revision, q *query, distinct bool, index, cols, order string, limit int, scan func([]sql.NullString)) error {
	sel := "SELECT "
	if distinct {
		sel = "SELECT DISTINCT "
	}
	from := "relation_tuples"
	if !s.pg {
		// Without statistics SQLite may prefer an index that yields the
		// order over the one that filters, and scan the table.
		from += " INDEXED BY " + index
	}
	n := len(strings.Split(cols, ","))
	tcols := "t." + strings.ReplaceAll(cols, ", ", ", t.")
	text := "SELECT h.revision, " + tcols + " FROM relation_head h LEFT JOIN (" + sel + cols +
		" FROM " + from + " WHERE " + strings.Join(q.conds, " AND ") + " ORDER BY " + order +
		" LIMIT ?) t ON 1 = 1 WHERE h.id = 1 ORDER BY " + "t." + strings.ReplaceAll(order, ", ", ", t.")
	rows, err := s.r.QueryContext(ctx, s.q(text), append(q.args, limit)...)
	if err != nil {
		return s.wrap(op, err)
	}
	defer func() { _ = rows.Close() }()
	vals := make([]sql.NullString, n)
	dst := make([]any, n+1)
	var head int64
	dst[0] = &head
	for i := range vals {
		dst[i+1] = &vals[i]
	}
	seen := false
	for rows.Next() {
		if err := rows.Scan(dst...); err != nil {
			return s.wrap(op, err)
		}
		seen = true
		if storage.Revision(head) < at {
			return fmt.Errorf("sqlstore: %s: %w", op, storage.ErrRevisionAhead)
		}
		if vals[0].Valid {
			scan(vals)
		}
	}
	if err := rows.Err(); err != nil {
		return s.wrap(op, err)
	}
	if !seen {
		return fmt.Errorf("sqlstore: %s: revision head missing", op)
	}
	return nil
}

func (s *Store) inIDs(q *query, col string, ids []string) {
	switch {
	case len(ids) == 0:
	case len(ids) == 1:
		q.add(col+" = ?", ids[0])
	case s.pg:
		q.add(col+" = ANY(?)", ids)
	default:
		args := make([]any, len(ids))
		for i, id := range ids {
			args[i] = id
		}
		q.add(col+" IN ("+strings.TrimSuffix(strings.Repeat("?, ", len(ids)), ", ")+")", args...)
	}
}

const tupleOrder = "object_id, relation, subject_type, subject_id, subject_relation"

// ReadTuples returns the tuples matching f visible at revision at (0: the
// live ones at the time of the query), ordered by tupleOrder.
func (s *Store) ReadTuples(ctx context.Context, at storage.Revision, f storage.TupleFilter, cursor string, limit int) ([]storage.RelationTuple, string, error) {
	const op = "read tuples"
	if f.ObjectType == "" {
		return nil, "", invalid(op, "empty object type")
	}
	if len(f.ObjectIDs) > maxFilterIDs {
		return nil, "", invalid(op, "%d object ids, at most %d", len(f.ObjectIDs), maxFilterIDs)
	}
	key, err := decodeCursor(op, cursor, cursorTuples, 5)
	if err != nil {
		return nil, "", err
	}
	limit = pageLimit(limit)
	q := &query{}
	q.add("object_type = ?", f.ObjectType)
	s.inIDs(q, "object_id", f.ObjectIDs)
	q.eq("relation", f.Relation)
	q.eq("subject_type", f.SubjectType)
	q.eq("subject_id", f.SubjectID)
	if f.SubjectRelation != nil {
		q.add("subject_relation = ?", *f.SubjectRelation)
	}
	q.visible(at)
	q.after(tupleOrder, key)
	var out []storage.RelationTuple
	err = s.run(ctx, op, at, q, false, "relation_tuples_object", tupleOrder, tupleOrder, limit+1, func(v []sql.NullString) {
		out = append(out, storage.RelationTuple{ObjectType: f.ObjectType, ObjectID: v[0].String, Relation: v[1].String,
			SubjectType: v[2].String, SubjectID: v[3].String, SubjectRelation: v[4].String})
	})
	if err != nil || len(out) <= limit {
		return out, "", err
	}
	out = out[:limit]
	l := out[limit-1]
	return out, encodeCursor(cursorTuples, l.ObjectID, l.Relation, l.SubjectType, l.SubjectID, l.SubjectRelation), nil
}

// bySubjectOrder is ReadBySubject's order; subject_relation breaks ties
// between tuples that differ only by it (nil SubjectRelation filter).
const bySubjectOrder = "object_type, object_id, relation, subject_relation"

// ReadBySubject returns the tuples of subject f visible at revision at,
// ordered by (object type, object id, relation, subject relation).
func (s *Store) ReadBySubject(ctx context.Context, at storage.Revision, f storage.SubjectFilter, cursor string, limit int) ([]storage.RelationTuple, string, error) {
	const op = "read by subject"
	if f.SubjectType == "" || f.SubjectID == "" {
		return nil, "", invalid(op, "empty subject type or subject id")
	}
	key, err := decodeCursor(op, cursor, cursorBySubject, 4)
	if err != nil {
		return nil, "", err
	}
	limit = pageLimit(limit)
	q := &query{}
	q.add("subject_type = ? AND subject_id = ?", f.SubjectType, f.SubjectID)
	if f.SubjectRelation != nil {
		q.add("subject_relation = ?", *f.SubjectRelation)
	}
	q.eq("object_type", f.ObjectType)
	q.eq("relation", f.Relation)
	q.visible(at)
	q.after(bySubjectOrder, key)
	var out []storage.RelationTuple
	err = s.run(ctx, op, at, q, false, "relation_tuples_subject", bySubjectOrder, bySubjectOrder, limit+1, func(v []sql.NullString) {
		out = append(out, storage.RelationTuple{ObjectType: v[0].String, ObjectID: v[1].String, Relation: v[2].String,
			SubjectType: f.SubjectType, SubjectID: f.SubjectID, SubjectRelation: v[3].String})
	})
	if err != nil || len(out) <= limit {
		return out, "", err
	}
	out = out[:limit]
	l := out[limit-1]
	return out, encodeCursor(cursorBySubject, l.ObjectType, l.ObjectID, l.Relation, l.SubjectRelation), nil
}

// ObjectIDs returns the distinct ids of objects of objectType with a tuple
// visible at revision at, in id order.
func (s *Store) ObjectIDs(ctx context.Context, at storage.Revision, objectType string, cursor string, limit int) ([]string, string, error) {
	const op = "object ids"
	if objectType == "" {
		return nil, "", invalid(op, "empty object type")
	}
	key, err := decodeCursor(op, cursor, cursorObjectIDs, 1)
	if err != nil {
		return nil, "", err
	}
	limit = pageLimit(limit)
	q := &query{}
	q.add("object_type = ?", objectType)
	q.visible(at)
	if key != nil {
		q.add("object_id > ?", key[0])
	}
	var out []string
	err = s.run(ctx, op, at, q, true, "relation_tuples_object", "object_id", "object_id", limit+1, func(v []sql.NullString) {
		out = append(out, v[0].String)
	})
	if err != nil || len(out) <= limit {
		return out, "", err
	}
	out = out[:limit]
	return out, encodeCursor(cursorObjectIDs, out[limit-1]), nil
}
