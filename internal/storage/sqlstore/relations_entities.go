package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/gatehouse/gatehouse/internal/storage"
)

// storedVersion returns the stored version of an entity inside tx, or
// found = false.
func (s *Store) storedVersion(ctx context.Context, tx *sql.Tx, op, typ, id string) (version int64, found bool, err error) {
	err = tx.QueryRowContext(ctx, s.q("SELECT version FROM relation_entities WHERE entity_type = ? AND entity_id = ?"), typ, id).Scan(&version)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return 0, false, nil
	case err != nil:
		return 0, false, s.wrap(op, err)
	}
	return version, true, nil
}

// setEntity applies a put (deleted = false) or a tombstone (deleted = true,
// attrs nil) when version is above the stored one, and records the change.
func (s *Store) setEntity(ctx context.Context, op, typ, id string, attrs []byte, version int64, deleted bool) (storage.Revision, bool, error) {
	if typ == "" || id == "" {
		return 0, false, invalid(op, "empty entity type or id")
	}
	kind := storage.ChangeEntityPut
	if deleted {
		kind, attrs = storage.ChangeEntityDelete, nil
	}
	return s.revTx(ctx, op, func(tx *sql.Tx, rev storage.Revision, at int64) (bool, error) {
		stored, found, err := s.storedVersion(ctx, tx, op, typ, id)
		if err != nil || (found && version <= stored) {
			return false, err
		}
		if _, err := s.exec(ctx, tx, op, `INSERT INTO relation_entities (entity_type, entity_id, attrs, version, revision, deleted)
	VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (entity_type, entity_id) DO UPDATE SET attrs = excluded.attrs,
	version = excluded.version, revision = excluded.revision, deleted = excluded.deleted`,
			typ, id, attrs, version, int64(rev), deleted); err != nil {
			return false, err
		}
		_, err = s.exec(ctx, tx, op, "INSERT INTO relation_changes ("+changeCols+") VALUES (?, 1, ?, '', '', '', '', '', '', ?, ?, ?, ?, ?)",
			int64(rev), int(kind), typ, id, attrs, version, at)
		return err == nil, err
	})
}

// PutEntity stores e's attributes when e.Version is above the stored
// version, tombstones included. e.Revision and e.Deleted are ignored.
func (s *Store) PutEntity(ctx context.Context, e storage.Entity) (storage.Revision, bool, error) {
	return s.setEntity(ctx, "put entity", e.Type, e.ID, e.Attrs, e.Version, false)
}

// DeleteEntity tombstones the entity when version is above the stored one;
// an entity never stored gets a tombstone too (so that older puts arriving
// later stay ignored), which is an applied change.
func (s *Store) DeleteEntity(ctx context.Context, typ, id string, version int64) (storage.Revision, bool, error) {
	return s.setEntity(ctx, "delete entity", typ, id, nil, version, true)
}

// getEntityQuery reads a live entity (prepared as Store.getEntity).
const getEntityQuery = "SELECT attrs, version, revision FROM relation_entities WHERE entity_type = ? AND entity_id = ? AND deleted = ?"

// GetEntity returns the live entity; storage.ErrNotFound when it is missing
// or tombstoned.
func (s *Store) GetEntity(ctx context.Context, typ, id string) (storage.Entity, error) {
	e := storage.Entity{Type: typ, ID: id}
	var rev int64
	// Prepared once (Open): SQLite would otherwise parse the statement on
	// every call, and this is on every decision's path.
	err := s.getEntity.QueryRowContext(ctx, typ, id, false).Scan(&e.Attrs, &e.Version, &rev)
	if err != nil {
		return storage.Entity{}, s.wrap("get entity", err)
	}
	e.Revision = storage.Revision(rev)
	return e, nil
}

// Changes returns the effective changes after revision after, in (revision,
// write) order, ending at a revision boundary (see storage.RelationStore).
func (s *Store) Changes(ctx context.Context, after storage.Revision, limit int) ([]storage.Change, error) {
	const op = "changes"
	if after > math.MaxInt64 {
		// Above every revision the store can hold (int64 columns); as an
		// int64 it would be negative and replay the whole feed.
		return nil, nil
	}
	limit = pageLimit(limit)
	out, err := s.changes(ctx, op, "revision > ? ORDER BY revision, seq LIMIT ?", int64(after), limit+1)
	if err != nil || len(out) <= limit {
		return out, err
	}
	// The window cuts the revision of out[limit-1] unless out[limit]
	// starts a new one: drop that revision, or if it is the first one,
	// return it whole.
	cut := out[limit-1].Revision
	if out[limit].Revision != cut {
		return out[:limit], nil
	}
	end := limit - 1
	for end > 0 && out[end-1].Revision == cut {
		end--
	}
	if end > 0 {
		return out[:end], nil
	}
	return s.changes(ctx, op, "revision = ? ORDER BY seq", int64(cut))
}

func (s *Store) changes(ctx context.Context, op, where string, args ...any) ([]storage.Change, error) {
	rows, err := s.r.QueryContext(ctx, s.q("SELECT "+changeCols+" FROM relation_changes WHERE "+where), args...)
	if err != nil {
		return nil, s.wrap(op, err)
	}
	defer func() { _ = rows.Close() }()
	var out []storage.Change
	for rows.Next() {
		var (
			c        storage.Change
			rev, at  int64
			seq      int
			kind     int
			t        = &c.Tuple
			e        = &c.Entity
			attrs    []byte
			eVersion int64
		)
		if err := rows.Scan(&rev, &seq, &kind, &t.ObjectType, &t.ObjectID, &t.Relation, &t.SubjectType, &t.SubjectID,
			&t.SubjectRelation, &e.Type, &e.ID, &attrs, &eVersion, &at); err != nil {
			return nil, s.wrap(op, err)
		}
		c.Revision, c.Kind, c.At = storage.Revision(rev), storage.ChangeKind(kind), time.UnixMicro(at).UTC()
		switch c.Kind {
		case storage.ChangeEntityPut, storage.ChangeEntityDelete:
			e.Attrs, e.Version, e.Revision, e.Deleted = attrs, eVersion, c.Revision, c.Kind == storage.ChangeEntityDelete
		case storage.ChangeTupleTouch, storage.ChangeTupleDelete:
		default:
			return nil, fmt.Errorf("sqlstore: %s: unknown change kind %d", op, kind)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, s.wrap(op, err)
	}
	return out, nil
}
