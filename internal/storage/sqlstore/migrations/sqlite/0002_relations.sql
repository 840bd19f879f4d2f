-- Relationship storage (storage.RelationStore). Text columns use SQLite's
-- default BINARY collation (bytewise), as the PostgreSQL schema's "C".
--
-- relation_head is the one-row revision counter: every write transaction
-- that changes something is serialised by BEGIN IMMEDIATE, takes revision+1
-- and records it in relation_revisions before committing, so revisions
-- become visible in order.
CREATE TABLE relation_head (
	id       INTEGER PRIMARY KEY CHECK (id = 1),
	revision INTEGER NOT NULL
);
INSERT INTO relation_head (id, revision) VALUES (1, 0);

CREATE TABLE relation_revisions (
	revision INTEGER PRIMARY KEY,
	at       INTEGER NOT NULL
);

-- A tuple is visible at revision r iff created_rev <= r AND
-- (deleted_rev = 0 OR deleted_rev > r); deleted_rev = 0 means live.
CREATE TABLE relation_tuples (
	object_type      TEXT NOT NULL,
	object_id        TEXT NOT NULL,
	relation         TEXT NOT NULL,
	subject_type     TEXT NOT NULL,
	subject_id       TEXT NOT NULL,
	subject_relation TEXT NOT NULL,
	created_rev      INTEGER NOT NULL,
	deleted_rev      INTEGER NOT NULL DEFAULT 0
);
-- At most one live row per tuple.
CREATE UNIQUE INDEX relation_tuples_live ON relation_tuples
	(object_type, object_id, relation, subject_type, subject_id, subject_relation) WHERE deleted_rev = 0;
-- Forward lookups (check, ReadTuples order, ObjectIDs distinct scan) at any
-- revision: the revision columns make the visibility test index-only.
CREATE INDEX relation_tuples_object ON relation_tuples
	(object_type, object_id, relation, subject_type, subject_id, subject_relation, created_rev, deleted_rev);
-- Reverse lookups (ReadBySubject).
CREATE INDEX relation_tuples_subject ON relation_tuples
	(subject_type, subject_id, subject_relation, object_type, relation, object_id, created_rev, deleted_rev);

CREATE TABLE relation_entities (
	entity_type TEXT NOT NULL,
	entity_id   TEXT NOT NULL,
	attrs       BLOB,
	version     INTEGER NOT NULL,
	revision    INTEGER NOT NULL,
	deleted     INTEGER NOT NULL,
	PRIMARY KEY (entity_type, entity_id)
);

-- The feed of effective changes, in (revision, seq) order. Tuple columns are
-- '' for entity changes and entity columns '' / 0 for tuple changes.
CREATE TABLE relation_changes (
	revision         INTEGER NOT NULL,
	seq              INTEGER NOT NULL,
	kind             INTEGER NOT NULL,
	object_type      TEXT NOT NULL,
	object_id        TEXT NOT NULL,
	relation         TEXT NOT NULL,
	subject_type     TEXT NOT NULL,
	subject_id       TEXT NOT NULL,
	subject_relation TEXT NOT NULL,
	entity_type      TEXT NOT NULL,
	entity_id        TEXT NOT NULL,
	entity_attrs     BLOB,
	entity_version   INTEGER NOT NULL,
	at               INTEGER NOT NULL,
	PRIMARY KEY (revision, seq)
);
