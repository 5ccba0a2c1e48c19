-- Part 2, users and administration: impersonated sessions and actor tokens; and items
-- whose owner is not necessarily a user (an organization's rows outlive the account of
-- the member who wrote them, and API keys own the rows they create).

-- The actor of an impersonated session, as JSON (`{"sub": "<actor>"}`); NULL otherwise.
ALTER TABLE sessions ADD COLUMN actor TEXT;

-- Support's single-use sign-in links. The ticket (the secret of the URL) is kept, hashed,
-- in verification_codes; this row holds what it does and its status.
CREATE TABLE actor_tokens (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    actor      TEXT NOT NULL,
    status     TEXT NOT NULL CHECK (status IN ('pending', 'accepted', 'revoked')),
    expires_at BIGINT NOT NULL,
    session_id TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX actor_tokens_user_idx ON actor_tokens (user_id);
CREATE INDEX actor_tokens_expires_idx ON actor_tokens (expires_at);

-- Items: `owner_id` no longer references users (a deleted member's organization rows
-- stay; personal rows are deleted with the account by the service that deletes it).
-- SQLite cannot drop a foreign key, so the table is rebuilt (portable DDL).
CREATE TABLE items_rebuilt (
    id              TEXT PRIMARY KEY,
    organization_id TEXT REFERENCES organizations (id) ON DELETE CASCADE,
    owner_id        TEXT NOT NULL,
    name            TEXT NOT NULL,
    data            TEXT NOT NULL DEFAULT '{}',
    version         BIGINT NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
INSERT INTO items_rebuilt (id, organization_id, owner_id, name, data, version, created_at, updated_at)
    SELECT id, organization_id, owner_id, name, data, version, created_at, updated_at FROM items;
DROP TABLE items;
ALTER TABLE items_rebuilt RENAME TO items;
CREATE INDEX items_org_page_idx ON items (organization_id, created_at DESC, id DESC)
    WHERE organization_id IS NOT NULL;
CREATE INDEX items_personal_page_idx ON items (owner_id, created_at DESC, id DESC)
    WHERE organization_id IS NULL;
