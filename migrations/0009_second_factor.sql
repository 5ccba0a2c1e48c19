-- Part 2, second factor: authenticator apps (TOTP) with backup codes, sign-in attempts
-- waiting for the second factor, and when a session last proved it.

-- One authenticator per user. The secret is sealed (AES-256-GCM under a key derived from
-- SECRET_KEY, the user id as associated data); `verified` turns true after one correct
-- code; `last_used_step` is the newest 30 s step accepted (a code never works twice).
CREATE TABLE totp_factors (
    user_id        TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    secret_sealed  TEXT NOT NULL,
    verified       BIGINT NOT NULL DEFAULT 0,
    last_used_step BIGINT NOT NULL DEFAULT 0,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL
);

-- Backup codes: only keyed hashes; each works once.
CREATE TABLE backup_codes (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash  TEXT NOT NULL,
    used_at    BIGINT,
    created_at BIGINT NOT NULL
);
CREATE INDEX backup_codes_user_idx ON backup_codes (user_id, code_hash);

-- A first factor proven by a user with a second factor: no session until the second
-- factor, from the same device (client), within 10 minutes and 5 tries.
CREATE TABLE sign_in_attempts (
    id            TEXT PRIMARY KEY,
    client_id     TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    user_id       TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    first_factor  TEXT NOT NULL,
    attempts_left BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    completed_at  BIGINT,
    created_at    BIGINT NOT NULL
);
CREATE INDEX sign_in_attempts_expires_idx ON sign_in_attempts (expires_at);

-- When the session last proved the second factor (NULL: never; the token's fva[1] is -1).
ALTER TABLE sessions ADD COLUMN last_second_factor_at BIGINT;
