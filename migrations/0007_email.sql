-- Part 2, email: the user object's new fields (verified address, second factor and ban
-- flags, the user's own and the backend's private metadata), one-time codes and tokens,
-- pending sign-ups (EMAIL_VERIFICATION=required) and the email outbox.

ALTER TABLE users ADD COLUMN email_verified BIGINT NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN two_factor_enabled BIGINT NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN banned BIGINT NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN unsafe_metadata TEXT NOT NULL DEFAULT '{}';
ALTER TABLE users ADD COLUMN private_metadata TEXT NOT NULL DEFAULT '{}';

-- Codes (6 digits) and tokens (links, tickets): only a keyed hash of the secret is kept.
-- A code is checked against its subject's live codes; a token is found by its hash.
CREATE TABLE verification_codes (
    id            TEXT PRIMARY KEY,
    purpose       TEXT NOT NULL,
    subject       TEXT NOT NULL,
    secret_hash   TEXT NOT NULL,
    attempts_left BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    consumed_at   BIGINT,
    created_at    BIGINT NOT NULL
);
CREATE INDEX verification_codes_subject_idx ON verification_codes (purpose, subject, created_at);
CREATE INDEX verification_codes_secret_idx ON verification_codes (purpose, secret_hash);
CREATE INDEX verification_codes_expires_idx ON verification_codes (expires_at);

CREATE TABLE sign_ups (
    id               TEXT PRIMARY KEY,
    email            TEXT NOT NULL,
    email_normalized TEXT NOT NULL,
    password_hash    TEXT,
    first_name       TEXT,
    last_name        TEXT,
    expires_at       BIGINT NOT NULL,
    completed_at     BIGINT,
    created_at       BIGINT NOT NULL
);
CREATE INDEX sign_ups_email_idx ON sign_ups (email_normalized, created_at);
CREATE INDEX sign_ups_expires_idx ON sign_ups (expires_at);

-- The email outbox: written in the transaction that causes the email, sent by a worker.
CREATE TABLE emails (
    id              TEXT PRIMARY KEY,
    kind            TEXT NOT NULL,
    to_address      TEXT NOT NULL,
    to_normalized   TEXT NOT NULL,
    subject         TEXT NOT NULL,
    text_body       TEXT NOT NULL,
    html_body       TEXT,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'failed')),
    attempts        BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    locked_until    BIGINT NOT NULL,
    last_error      TEXT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE INDEX emails_due_idx ON emails (status, next_attempt_at);
CREATE INDEX emails_recent_idx ON emails (to_normalized, kind, created_at);
