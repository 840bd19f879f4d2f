package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/storage"
)

// Relationship storage (storage.RelationStore).
//
// Every write transaction that changes something locks the one-row
// relation_head counter (FOR UPDATE on PostgreSQL; SQLite write transactions
// are already serialised by BEGIN IMMEDIATE), takes head+1 as its revision,
// records it in relation_revisions and advances the head before it commits.
// The lock is held until commit, so revisions commit in order and a reader
// that sees head r sees every write ≤ r. A transaction that changes nothing
// rolls back and consumes no revision.

const (
	maxTupleWrites = 1000 // writes per WriteTuples call
	maxFilterIDs   = 1000 // TupleFilter.ObjectIDs
	maxPageLimit   = 1000
	defPageLimit   = 100
	// bulkBatch is the number of rows per multi-row INSERT.
	bulkBatch = 500
)

var _ storage.RelationStore = (*Store)(nil)

// invalid returns an error wrapping storage.ErrInvalid.
func invalid(op, format string, args ...any) error {
	return fmt.Errorf("sqlstore: %s: %w: %s", op, storage.ErrInvalid, fmt.Sprintf(format, args...))
}

// pageLimit applies the contract's limit rules: ≤ 0 means 100, capped at 1000.
func pageLimit(limit int) int {
	switch {
	case limit <= 0:
		return defPageLimit
	case limit > maxPageLimit:
		return maxPageLimit
	}
	return limit
}

// revTx runs fn in a write transaction that holds the revision lock. fn gets
// the revision the transaction commits as and its time (unix microseconds),
// and reports whether it changed anything. When it did, the revision is
// recorded and returned with changed = true; otherwise the transaction rolls
// back and the current head is returned.
func (s *Store) revTx(ctx context.Context, op string, fn func(tx *sql.Tx, rev storage.Revision, at int64) (bool, error)) (storage.Revision, bool, error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return 0, false, s.wrap(op, err)
	}
	defer func() { _ = tx.Rollback() }() // no-op after Commit
	var head int64
	if err := tx.QueryRowContext(ctx, "SELECT revision FROM relation_head WHERE id = 1"+s.forUpdate()).Scan(&head); err != nil {
		return 0, false, s.wrap(op, err)
	}
	rev, at := storage.Revision(head+1), time.Now().UnixMicro()
	changed, err := fn(tx, rev, at)
	if err != nil {
		return 0, false, err
	}
	if !changed {
		return storage.Revision(head), false, nil
	}
	if _, err := s.exec(ctx, tx, op, "UPDATE relation_head SET revision = ? WHERE id = 1", int64(rev)); err != nil {
		return 0, false, err
	}
	if _, err := s.exec(ctx, tx, op, "INSERT INTO relation_revisions (revision, at) VALUES (?, ?)", int64(rev), at); err != nil {
		return 0, false, err
	}
	if err := tx.Commit(); err != nil {
		return 0, false, s.wrap(op, err)
	}
	return rev, true, nil
}

// HeadRevision returns the newest committed revision (0 before any write).
func (s *Store) HeadRevision(ctx context.Context) (storage.Revision, error) {
	var head int64
	if err := s.r.QueryRowContext(ctx, "SELECT revision FROM relation_head WHERE id = 1").Scan(&head); err != nil {
		return 0, s.wrap("head revision", err)
	}
	return storage.Revision(head), nil
}

// checkTuple refuses a tuple with an empty required field.
func checkTuple(op string, t storage.RelationTuple) error {
	switch {
	case t.ObjectType == "", t.ObjectID == "", t.Relation == "", t.SubjectType == "", t.SubjectID == "":
		return invalid(op, "tuple with an empty object type, object id, relation, subject type or subject id")
	}
	return nil
}

// checkWrites validates a WriteTuples batch before anything is written:
// known ops, required fields, at most maxTupleWrites, no tuple twice.
func checkWrites(op string, writes []storage.TupleWrite) error {
	if len(writes) > maxTupleWrites {
		return invalid(op, "%d writes, at most %d per call", len(writes), maxTupleWrites)
	}
	seen := make(map[storage.RelationTuple]struct{}, len(writes))
	for i, w := range writes {
		if w.Op != storage.TupleTouch && w.Op != storage.TupleDelete {
			return invalid(op, "write %d: unknown operation %d", i, w.Op)
		}
		if err := checkTuple(op, w.Tuple); err != nil {
			return fmt.Errorf("%w (write %d)", err, i)
		}
		if _, dup := seen[w.Tuple]; dup {
			return invalid(op, "write %d: the same tuple twice in one call", i)
		}
		seen[w.Tuple] = struct{}{}
	}
	return nil
}

func tupleArgs(t storage.RelationTuple) []any {
	return []any{t.ObjectType, t.ObjectID, t.Relation, t.SubjectType, t.SubjectID, t.SubjectRelation}
}

const tupleCols = "object_type, object_id, relation, subject_type, subject_id, subject_relation"

// WriteTuples applies writes atomically under one revision. A batch that
// fails validation (see storage.ErrInvalid) writes nothing.
func (s *Store) WriteTuples(ctx context.Context, writes []storage.TupleWrite) (storage.Revision, error) {
	const op = "write tuples"
	if err := checkWrites(op, writes); err != nil {
		return 0, err
	}
	if len(writes) == 0 {
		return s.HeadRevision(ctx)
	}
	rev, _, err := s.revTx(ctx, op, func(tx *sql.Tx, rev storage.Revision, at int64) (bool, error) {
		return s.applyWrites(ctx, tx, op, writes, rev, at)
	})
	return rev, err
}

// applyWrites runs a validated batch in tx: the touches as multi-row INSERTs
// that return the rows they inserted, the deletes one UPDATE each (an index
// lookup on the live row). The effective ones are recorded in the changes
// feed in write order; it reports whether there was any.
func (s *Store) applyWrites(ctx context.Context, tx *sql.Tx, op string, writes []storage.TupleWrite, rev storage.Revision, at int64) (bool, error) {
	effective := make(map[storage.RelationTuple]bool, len(writes))
	var touches [][]any
	for _, w := range writes {
		if w.Op == storage.TupleTouch {
			touches = append(touches, append(tupleArgs(w.Tuple), int64(rev), int64(0)))
			continue
		}
		n, err := s.exec(ctx, tx, op, "UPDATE relation_tuples SET deleted_rev = ? WHERE object_type = ? AND object_id = ? AND relation = ?"+
			" AND subject_type = ? AND subject_id = ? AND subject_relation = ? AND deleted_rev = 0",
			append([]any{int64(rev)}, tupleArgs(w.Tuple)...)...)
		if err != nil {
			return false, err
		}
		effective[w.Tuple] = n > 0
	}
	for batch := range slices.Chunk(touches, bulkBatch) {
		values, args := multiValues(batch)
		rows, err := tx.QueryContext(ctx, s.q("INSERT INTO relation_tuples ("+tupleCols+", created_rev, deleted_rev) VALUES "+values+
			" ON CONFLICT DO NOTHING RETURNING "+tupleCols), args...)
		if err != nil {
			return false, s.wrap(op, err)
		}
		for rows.Next() {
			var t storage.RelationTuple
			if err := rows.Scan(&t.ObjectType, &t.ObjectID, &t.Relation, &t.SubjectType, &t.SubjectID, &t.SubjectRelation); err != nil {
				_ = rows.Close()
				return false, s.wrap(op, err)
			}
			effective[t] = true
		}
		if err := rows.Close(); err != nil {
			return false, s.wrap(op, err)
		}
		if err := rows.Err(); err != nil {
			return false, s.wrap(op, err)
		}
	}
	var changes [][]any
	for _, w := range writes {
		if !effective[w.Tuple] {
			continue
		}
		kind := storage.ChangeTupleTouch
		if w.Op == storage.TupleDelete {
			kind = storage.ChangeTupleDelete
		}
		changes = append(changes, append([]any{int64(rev), len(changes) + 1, int(kind)},
			append(tupleArgs(w.Tuple), "", "", nil, int64(0), at)...))
	}
	if len(changes) == 0 {
		return false, nil
	}
	return true, s.insertRows(ctx, tx, op, "INSERT INTO relation_changes ("+changeCols+") VALUES ", "", changes)
}

const changeCols = "revision, seq, kind, " + tupleCols + ", entity_type, entity_id, entity_attrs, entity_version, at"

// insertRows inserts rows with multi-row INSERT statements of at most
// bulkBatch rows: prefix is "INSERT INTO t (cols) VALUES ", suffix follows
// the values (e.g. an ON CONFLICT clause).
func (s *Store) insertRows(ctx context.Context, tx *sql.Tx, op, prefix, suffix string, rows [][]any) error {
	_, err := s.insertRowsCount(ctx, tx, op, prefix, suffix, rows)
	return err
}

func (s *Store) insertRowsCount(ctx context.Context, tx *sql.Tx, op, prefix, suffix string, rows [][]any) (int64, error) {
	var total int64
	for batch := range slices.Chunk(rows, bulkBatch) {
		values, args := multiValues(batch)
		n, err := s.exec(ctx, tx, op, prefix+values+suffix, args...)
		if err != nil {
			return 0, err
		}
		total += n
	}
	return total, nil
}

// multiValues returns "(?, ?), (?, ?)" for rows of equal length and their
// arguments in order.
func multiValues(rows [][]any) (string, []any) {
	one := "(" + strings.TrimSuffix(strings.Repeat("?, ", len(rows[0])), ", ") + ")"
	var b strings.Builder
	b.Grow(len(rows) * (len(one) + 2))
	args := make([]any, 0, len(rows)*len(rows[0]))
	for i, r := range rows {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(one)
		args = append(args, r...)
	}
	return b.String(), args
}

// BulkLoadTuples inserts tuples as live under one new revision, with
// multi-row INSERTs in one transaction. It is meant for seeding stores in
// benchmarks and tests: tuples already live (or repeated) are skipped
// silently and no entries are added to the changes feed. Tuples with an
// empty required field are refused (storage.ErrInvalid) before anything is
// written. When nothing was inserted the head is returned. On PostgreSQL a
// load that inserted rows ends with VACUUM (ANALYZE) relation_tuples.
func (s *Store) BulkLoadTuples(ctx context.Context, tuples []storage.RelationTuple) (storage.Revision, error) {
	const op = "bulk load tuples"
	for _, t := range tuples {
		if err := checkTuple(op, t); err != nil {
			return 0, err
		}
	}
	if len(tuples) == 0 {
		return s.HeadRevision(ctx)
	}
	rev, changed, err := s.revTx(ctx, op, func(tx *sql.Tx, rev storage.Revision, _ int64) (bool, error) {
		rows := make([][]any, len(tuples))
		for i, t := range tuples {
			rows[i] = append(tupleArgs(t), int64(rev), int64(0))
		}
		n, err := s.insertRowsCount(ctx, tx, op, "INSERT INTO relation_tuples ("+tupleCols+", created_rev, deleted_rev) VALUES ",
			" ON CONFLICT DO NOTHING", rows)
		return n > 0, err
	})
	if err != nil || !changed || !s.pg {
		return rev, err
	}
	// Fresh statistics, so that the planner does not guess on a table that
	// autovacuum has not analysed yet, and a visibility map that makes the
	// covering indexes' scans index-only.
	if _, err := s.w.ExecContext(ctx, "VACUUM (ANALYZE) relation_tuples"); err != nil {
		return rev, s.wrap(op, err)
	}
	return rev, nil
}
