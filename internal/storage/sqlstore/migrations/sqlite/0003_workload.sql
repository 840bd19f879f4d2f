-- Workload identity (storage.CAStore): the workload CA's authorities with
-- their sealed private keys, single-use join tokens (keyed hashes only) and
-- the SPIFFE ID a client may obtain with its client credentials.
--
-- Rotation is a compare-and-swap on the unique (kind, generation): of the
-- replicas inserting generation max+1 of a kind exactly one succeeds.
CREATE TABLE ca_authorities (
	id           TEXT PRIMARY KEY,
	kind         TEXT NOT NULL CHECK (kind IN ('root', 'intermediate')),
	generation   INTEGER NOT NULL CHECK (generation >= 1),
	cert_der     BLOB NOT NULL,
	sealed       BLOB NOT NULL,
	state        TEXT NOT NULL CHECK (state IN ('prepared', 'active', 'retired')),
	not_before   INTEGER NOT NULL,
	not_after    INTEGER NOT NULL,
	created_at   INTEGER NOT NULL,
	activated_at INTEGER NOT NULL,
	retired_at   INTEGER NOT NULL,
	UNIQUE (kind, generation)
);

-- used_at = 0 while unused; GC deletes used and expired tokens.
CREATE TABLE join_tokens (
	hash       TEXT PRIMARY KEY,
	spiffe_id  TEXT NOT NULL,
	created_at INTEGER NOT NULL,
	expires_at INTEGER NOT NULL,
	used_at    INTEGER NOT NULL
);

ALTER TABLE clients ADD COLUMN spiffe_id TEXT NOT NULL DEFAULT '';
-- One client per SPIFFE ID (the empty string means none).
CREATE UNIQUE INDEX clients_spiffe_id ON clients (spiffe_id) WHERE spiffe_id <> '';

-- Revoked SPIFFE IDs: the CA API refuses to renew an SVID of such an ID
-- issued before revoked_at (unix microseconds, the latest revocation).
CREATE TABLE spiffe_revocations (
	spiffe_id  TEXT PRIMARY KEY,
	revoked_at INTEGER NOT NULL
);
