-- Org-scoped items, organization settings, idempotency keys, and the event outbox.

CREATE TABLE items (
    id              TEXT PRIMARY KEY,
    -- NULL for the owner's personal items.
    organization_id TEXT REFERENCES organizations (id) ON DELETE CASCADE,
    owner_id        TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name            TEXT NOT NULL,
    data            TEXT NOT NULL DEFAULT '{}',
    version         BIGINT NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
-- Keyset pages, newest first: one index per scope, so a page costs the same at any size.
CREATE INDEX items_org_page_idx ON items (organization_id, created_at DESC, id DESC)
    WHERE organization_id IS NOT NULL;
CREATE INDEX items_personal_page_idx ON items (owner_id, created_at DESC, id DESC)
    WHERE organization_id IS NULL;

CREATE TABLE organization_settings (
    organization_id TEXT PRIMARY KEY REFERENCES organizations (id) ON DELETE CASCADE,
    settings        TEXT NOT NULL,
    updated_by      TEXT,
    updated_at      BIGINT NOT NULL
);

-- `scope` is the caller (`user_…`) so keys never collide across users.
CREATE TABLE idempotency_keys (
    scope           TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    request_hash    TEXT NOT NULL,
    response_status INTEGER NOT NULL,
    response_body   TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,
    PRIMARY KEY (scope, idempotency_key)
);
CREATE INDEX idempotency_keys_expires_idx ON idempotency_keys (expires_at);

-- Every change worth telling the outside world, written in the transaction of the change.
CREATE TABLE events (
    id              TEXT PRIMARY KEY,
    type            TEXT NOT NULL,
    organization_id TEXT,
    user_id         TEXT,
    payload         TEXT NOT NULL,
    created_at      BIGINT NOT NULL
);
CREATE INDEX events_created_idx ON events (created_at, id);
