-- Organizations, roles (permission sets) and memberships.

CREATE TABLE organizations (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    slug       TEXT NOT NULL,
    created_by TEXT REFERENCES users (id) ON DELETE SET NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX organizations_slug_key ON organizations (slug);

-- Instance-wide roles: `id` like `org:admin`, `permissions` a comma-separated set.
CREATE TABLE roles (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    permissions TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
INSERT INTO roles (id, name, permissions, created_at) VALUES
    ('org:admin', 'Admin', 'org:data:read,org:data:write,org:data:delete', 0),
    ('org:member', 'Member', 'org:data:read,org:data:write', 0);

CREATE TABLE memberships (
    id              TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    user_id         TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role            TEXT NOT NULL REFERENCES roles (id),
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE UNIQUE INDEX memberships_org_user_key ON memberships (organization_id, user_id);
CREATE INDEX memberships_user_idx ON memberships (user_id, created_at);
-- Serves the member list, newest first, and the last-admin check.
CREATE INDEX memberships_org_created_idx ON memberships (organization_id, created_at DESC, id DESC);
