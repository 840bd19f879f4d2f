-- Times are unix microseconds (0 = unset), durations nanoseconds, string
-- lists JSON text, booleans BOOLEAN.
CREATE TABLE clients (
	id                        TEXT PRIMARY KEY,
	name                      TEXT NOT NULL,
	secret_hash               BYTEA,
	secret_hint               TEXT NOT NULL,
	public                    BOOLEAN NOT NULL,
	first_party               BOOLEAN NOT NULL,
	redirect_uris             TEXT NOT NULL,
	post_logout_redirect_uris TEXT NOT NULL,
	grant_types               TEXT NOT NULL,
	scopes                    TEXT NOT NULL,
	audiences                 TEXT NOT NULL,
	access_token_ttl          BIGINT NOT NULL,
	refresh_idle_ttl          BIGINT NOT NULL,
	refresh_max_ttl           BIGINT NOT NULL,
	created_at                BIGINT NOT NULL,
	updated_at                BIGINT NOT NULL
);

CREATE TABLE users (
	id             TEXT PRIMARY KEY,
	username       TEXT NOT NULL UNIQUE,
	email          TEXT NOT NULL,
	email_verified BOOLEAN NOT NULL,
	name           TEXT NOT NULL,
	password_hash  TEXT NOT NULL,
	roles          TEXT NOT NULL,
	user_groups    TEXT NOT NULL,
	tenant         TEXT NOT NULL,
	disabled       BOOLEAN NOT NULL,
	created_at     BIGINT NOT NULL,
	updated_at     BIGINT NOT NULL
);
CREATE UNIQUE INDEX users_email ON users (email) WHERE email <> '';

CREATE TABLE signing_keys (
	id          TEXT PRIMARY KEY,
	algorithm   TEXT NOT NULL,
	generation  BIGINT NOT NULL UNIQUE,
	sealed      BYTEA,
	public_jwk  BYTEA,
	created_at  BIGINT NOT NULL,
	activate_at BIGINT NOT NULL,
	retired_at  BIGINT NOT NULL,
	expires_at  BIGINT NOT NULL,
	revoked_at  BIGINT NOT NULL
);

CREATE TABLE auth_requests (
	id                    TEXT PRIMARY KEY,
	client_id             TEXT NOT NULL,
	redirect_uri          TEXT NOT NULL,
	state                 TEXT NOT NULL,
	nonce                 TEXT NOT NULL,
	response_mode         TEXT NOT NULL,
	scopes                TEXT NOT NULL,
	audience              TEXT NOT NULL,
	code_challenge        TEXT NOT NULL,
	code_challenge_method TEXT NOT NULL,
	prompt                TEXT NOT NULL,
	max_age               BIGINT NOT NULL,
	login_hint            TEXT NOT NULL,
	user_id               TEXT NOT NULL,
	session_id            TEXT NOT NULL,
	auth_time             BIGINT NOT NULL,
	amr                   TEXT NOT NULL,
	acr                   TEXT NOT NULL,
	consented             BOOLEAN NOT NULL,
	created_at            BIGINT NOT NULL,
	expires_at            BIGINT NOT NULL
);
CREATE INDEX auth_requests_expires_at ON auth_requests (expires_at);

CREATE TABLE auth_codes (
	hash           TEXT PRIMARY KEY,
	grant_id       TEXT NOT NULL,
	client_id      TEXT NOT NULL,
	redirect_uri   TEXT NOT NULL,
	user_id        TEXT NOT NULL,
	session_id     TEXT NOT NULL,
	scopes         TEXT NOT NULL,
	audience       TEXT NOT NULL,
	nonce          TEXT NOT NULL,
	code_challenge TEXT NOT NULL,
	auth_time      BIGINT NOT NULL,
	amr            TEXT NOT NULL,
	acr            TEXT NOT NULL,
	created_at     BIGINT NOT NULL,
	expires_at     BIGINT NOT NULL,
	used_at        BIGINT NOT NULL
);
CREATE INDEX auth_codes_expires_at ON auth_codes (expires_at);

CREATE TABLE grants (
	id            TEXT PRIMARY KEY,
	client_id     TEXT NOT NULL,
	user_id       TEXT NOT NULL,
	session_id    TEXT NOT NULL,
	scopes        TEXT NOT NULL,
	audience      TEXT NOT NULL,
	auth_time     BIGINT NOT NULL,
	amr           TEXT NOT NULL,
	acr           TEXT NOT NULL,
	created_at    BIGINT NOT NULL,
	expires_at    BIGINT NOT NULL,
	revoked_at    BIGINT NOT NULL,
	revoke_reason TEXT NOT NULL
);
CREATE INDEX grants_client_id ON grants (client_id);
CREATE INDEX grants_user_id ON grants (user_id);
CREATE INDEX grants_session_id ON grants (session_id);
CREATE INDEX grants_revoked_at ON grants (revoked_at);
CREATE INDEX grants_expires_at ON grants (expires_at);

CREATE TABLE refresh_tokens (
	hash       TEXT PRIMARY KEY,
	grant_id   TEXT NOT NULL REFERENCES grants (id) ON DELETE CASCADE,
	client_id  TEXT NOT NULL,
	created_at BIGINT NOT NULL,
	expires_at BIGINT NOT NULL,
	used_at    BIGINT NOT NULL
);
CREATE INDEX refresh_tokens_grant_id ON refresh_tokens (grant_id);
CREATE INDEX refresh_tokens_expires_at ON refresh_tokens (expires_at);

CREATE TABLE sessions (
	id_hash      TEXT PRIMARY KEY,
	user_id      TEXT NOT NULL,
	auth_time    BIGINT NOT NULL,
	amr          TEXT NOT NULL,
	created_at   BIGINT NOT NULL,
	last_seen_at BIGINT NOT NULL,
	expires_at   BIGINT NOT NULL
);
CREATE INDEX sessions_user_id ON sessions (user_id);
CREATE INDEX sessions_expires_at ON sessions (expires_at);

CREATE TABLE revoked_tokens (
	jti        TEXT PRIMARY KEY,
	expires_at BIGINT NOT NULL,
	revoked_at BIGINT NOT NULL
);
CREATE INDEX revoked_tokens_revoked_at ON revoked_tokens (revoked_at);
CREATE INDEX revoked_tokens_expires_at ON revoked_tokens (expires_at);
