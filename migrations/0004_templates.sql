-- JWT templates (tokens for other services) and the session token template (custom
-- claims merged into every session token).

CREATE TABLE jwt_templates (
    id                 TEXT PRIMARY KEY,
    name               TEXT NOT NULL,
    claims             TEXT NOT NULL,
    lifetime           BIGINT NOT NULL,
    allowed_clock_skew BIGINT NOT NULL,
    signing_algorithm  TEXT NOT NULL,
    -- Only for custom (HS256) keys; never returned by the API.
    signing_key        TEXT,
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL
);
CREATE UNIQUE INDEX jwt_templates_name_key ON jwt_templates (name);
CREATE INDEX jwt_templates_created_idx ON jwt_templates (created_at DESC, id DESC);

-- At most one row (id = 1).
CREATE TABLE session_token_template (
    id         BIGINT PRIMARY KEY CHECK (id = 1),
    claims     TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- The backend API lists users newest first.
CREATE INDEX users_created_idx ON users (created_at DESC, id DESC);
CREATE INDEX sessions_user_created_idx ON sessions (user_id, created_at DESC, id DESC);
