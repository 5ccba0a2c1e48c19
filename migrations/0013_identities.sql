-- Part 2, social and enterprise sign-in: a user's accounts at OAuth / OpenID Connect
-- providers. A provider's subject belongs to one user; a user has at most one identity
-- per provider.
CREATE TABLE identities (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    provider   TEXT NOT NULL,
    subject    TEXT NOT NULL,
    email      TEXT,
    created_at BIGINT NOT NULL,
    UNIQUE (provider, subject),
    UNIQUE (user_id, provider)
);
