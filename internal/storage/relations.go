package storage

import (
	"context"
	"errors"
	"time"
)

// Relationship storage (ReBAC, Zanzibar-style) for the authorization service.
//
// Every write transaction (tuples or entity attributes) gets the next
// Revision, a strictly increasing integer assigned under a lock so that
// revisions become visible in order: once HeadRevision returns r, every write
// with a revision ≤ r is committed and visible. Tuples are versioned rather
// than updated in place (created at one revision, deleted at a later one), so
// a read "at revision r" is a stable snapshot and a result computed at r stays
// true forever; caches keyed by revision never need a TTL to be correct.

// Revision identifies a committed state of the relationship store. 0 means
// "nothing written yet".
type Revision uint64

// ErrRevisionAhead is returned when a read asks for a revision newer than
// the store's head revision (a revision token from the future or from
// another store).
var ErrRevisionAhead = errors.New("storage: revision is ahead of the store")

// ErrInvalid is returned by the RelationStore methods for a request the
// store refuses before touching any data: an empty required field, an
// unknown TupleOp, the same tuple twice in one WriteTuples call, more than
// 1000 writes per call or ObjectIDs per filter, or a malformed cursor.
// Nothing is written when a WriteTuples call fails with it.
var ErrInvalid = errors.New("storage: invalid argument")

// RelationTuple is one relationship: object#relation@subject, e.g.
// order:o-1#owner@user:usr_alice, or with a subject set
// order:o-1#viewer@team:eng#member. SubjectRelation is empty for a direct
// subject. Every field is case-sensitive; type and relation names match
// [a-z][a-z0-9_]{0,63}, ids are 1–256 bytes of printable ASCII without
// whitespace, '#', '@' or ':' — validated by the caller (internal/rebac),
// stored as given.
type RelationTuple struct {
	ObjectType      string
	ObjectID        string
	Relation        string
	SubjectType     string
	SubjectID       string
	SubjectRelation string
}

// TupleOp is the operation of one tuple write.
type TupleOp int

const (
	// TupleTouch creates the tuple; touching a live tuple is a no-op.
	TupleTouch TupleOp = iota + 1
	// TupleDelete deletes the tuple; deleting a missing tuple is a no-op.
	TupleDelete
)

// TupleWrite is one operation of an atomic WriteTuples call.
type TupleWrite struct {
	Op    TupleOp
	Tuple RelationTuple
}

// TupleFilter selects live tuples. ObjectType is required; empty strings
// (and an empty ObjectIDs) match anything. SubjectRelation: nil matches any,
// a pointer to "" matches direct subjects only.
type TupleFilter struct {
	ObjectType      string
	ObjectIDs       []string // any of these ids (at most 1000)
	Relation        string
	SubjectType     string
	SubjectID       string
	SubjectRelation *string
}

// SubjectFilter selects live tuples by subject (reverse lookups):
// SubjectType and SubjectID required; the rest optional.
type SubjectFilter struct {
	SubjectType     string
	SubjectID       string
	SubjectRelation *string // nil any, "" direct only
	ObjectType      string
	Relation        string
}

// Entity is a resource's attributes pushed by the service that owns it
// ("replicate" strategy). Version is the owner's own monotonically increasing
// version of the entity: a put or delete with a version not above the stored
// one is ignored (idempotent, ordered).
type Entity struct {
	Type     string
	ID       string
	Attrs    []byte // a JSON object, stored as given
	Version  int64
	Revision Revision // the store revision of the last applied change (set by the store)
	Deleted  bool     // tombstone: kept so that older versions stay ignored
}

// ChangeKind says what a Change is about.
type ChangeKind int

const (
	ChangeTupleTouch ChangeKind = iota + 1
	ChangeTupleDelete
	ChangeEntityPut
	ChangeEntityDelete
)

// Change is one entry of the changes feed, in revision order. Tuple is set
// for tuple changes, Entity (with Attrs nil for deletes) for entity changes.
// Only effective changes appear (a no-op touch or delete does not).
type Change struct {
	Revision Revision
	Kind     ChangeKind
	Tuple    RelationTuple
	Entity   Entity
	At       time.Time
}

// RelationStore stores relationship tuples and replicated entity attributes.
// Cursors are opaque strings returned by the store; "" starts from the
// beginning; a returned "" means there is no more (a non-empty one is only
// returned when more rows follow). A cursor encodes the last row's sort key,
// not the revision: page at an explicit revision for a stable listing (at 0
// each page reads the head of its own time). A malformed cursor, or one of
// another method, gives ErrInvalid. limit ≤ 0 means 100; backends cap it at
// 1000.
type RelationStore interface {
	// WriteTuples applies every write atomically (all or none) and returns
	// the revision of the transaction. Writes that change nothing (touch of
	// a live tuple, delete of a missing one) still succeed; when nothing at
	// all changed, the current head revision is returned and no revision is
	// consumed. The same tuple twice in one call (whatever the ops), an
	// empty required field (all but SubjectRelation), an unknown op or more
	// than 1000 writes is an error wrapping ErrInvalid, and nothing is
	// written.
	WriteTuples(ctx context.Context, writes []TupleWrite) (Revision, error)
	// ReadTuples returns live tuples matching f at revision at (0 = head),
	// ordered by (object id, relation, subject type, subject id, subject
	// relation), starting after cursor.
	ReadTuples(ctx context.Context, at Revision, f TupleFilter, cursor string, limit int) ([]RelationTuple, string, error)
	// ReadBySubject returns live tuples matching f at revision at, ordered
	// by (object type, object id, relation, subject relation), starting
	// after cursor.
	ReadBySubject(ctx context.Context, at Revision, f SubjectFilter, cursor string, limit int) ([]RelationTuple, string, error)
	// ObjectIDs returns the distinct ids of objects of type objectType that
	// have at least one live tuple at revision at, in id order, after cursor.
	ObjectIDs(ctx context.Context, at Revision, objectType string, cursor string, limit int) ([]string, string, error)
	// HeadRevision returns the newest committed revision.
	HeadRevision(ctx context.Context) (Revision, error)

	// PutEntity stores e's attributes if e.Version is above the stored
	// version (or none is stored); applied reports whether it did. The
	// returned revision is the new one when applied, else the head.
	PutEntity(ctx context.Context, e Entity) (rev Revision, applied bool, err error)
	// DeleteEntity tombstones the entity at version if above the stored one.
	// An entity never stored gets a tombstone too (applied, with a Change),
	// so that an older put arriving later is still ignored.
	DeleteEntity(ctx context.Context, typ, id string, version int64) (rev Revision, applied bool, err error)
	// GetEntity returns the live entity (ErrNotFound when missing or deleted).
	GetEntity(ctx context.Context, typ, id string) (Entity, error)

	// Changes returns effective changes with a revision above after, in
	// revision order (then write order), at most limit. A revision is never
	// split across calls, so that the caller can resume with after = the
	// last returned revision: the result ends at a revision boundary, and
	// when the first revision alone has more than limit changes it is
	// returned whole (at most 1000 for WriteTuples).
	Changes(ctx context.Context, after Revision, limit int) ([]Change, error)
}
