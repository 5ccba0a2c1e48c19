-- Part 2, machine access: organization API keys. Only the SHA-256 of the secret is kept
-- (the secret has 256 bits of entropy: a fast hash is enough, and it is what a lookup per
-- request can afford).
CREATE TABLE api_keys (
    id              TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name            TEXT NOT NULL,
    scopes          TEXT NOT NULL,
    secret_hash     TEXT NOT NULL UNIQUE,
    created_by      TEXT,
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT,
    last_used_at    BIGINT,
    revoked_at      BIGINT
);
CREATE INDEX api_keys_org_created_idx ON api_keys (organization_id, created_at DESC, id DESC);
CREATE INDEX api_keys_revoked_idx ON api_keys (revoked_at) WHERE revoked_at IS NOT NULL;
