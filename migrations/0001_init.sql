-- Users, devices (clients) and sessions. Timestamps are Unix milliseconds (BIGINT),
-- ids are prefixed TEXT, JSON is TEXT so that the same queries run on SQLite.

CREATE TABLE users (
    id               TEXT PRIMARY KEY,
    email            TEXT NOT NULL,
    email_normalized TEXT NOT NULL,
    password_hash    TEXT,
    first_name       TEXT,
    last_name        TEXT,
    public_metadata  TEXT NOT NULL DEFAULT '{}',
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
CREATE UNIQUE INDEX users_email_normalized_key ON users (email_normalized);

CREATE TABLE clients (
    id                     TEXT PRIMARY KEY,
    last_active_session_id TEXT,
    created_at             BIGINT NOT NULL,
    updated_at             BIGINT NOT NULL
);

CREATE TABLE sessions (
    id                     TEXT PRIMARY KEY,
    client_id              TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    user_id                TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    status                 TEXT NOT NULL CHECK (status IN ('active', 'ended', 'revoked', 'expired')),
    active_organization_id TEXT,
    user_agent             TEXT,
    ip_address             TEXT,
    created_at             BIGINT NOT NULL,
    updated_at             BIGINT NOT NULL,
    last_active_at         BIGINT NOT NULL,
    last_verified_at       BIGINT NOT NULL,
    expire_at              BIGINT NOT NULL
);
CREATE INDEX sessions_user_status_idx ON sessions (user_id, status);
CREATE INDEX sessions_client_idx ON sessions (client_id);
-- Serves the revocation catch-up query: sessions whose status changed recently.
CREATE INDEX sessions_status_updated_idx ON sessions (status, updated_at);
