-- Part 2, organizations: invitations, role descriptions, and the lookups that deleting
-- an organization and leaving one need.

ALTER TABLE roles ADD COLUMN description TEXT;
ALTER TABLE roles ADD COLUMN updated_at BIGINT NOT NULL DEFAULT 0;

-- An invitation's status is pending, accepted or revoked; a pending one past its
-- expiry reads as expired. Its ticket (the secret in the emailed link) is kept, hashed,
-- in verification_codes.
CREATE TABLE invitations (
    id               TEXT PRIMARY KEY,
    organization_id  TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    email            TEXT NOT NULL,
    email_normalized TEXT NOT NULL,
    role             TEXT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('pending', 'accepted', 'revoked')),
    inviter_id       TEXT,
    accepted_by      TEXT,
    expires_at       BIGINT NOT NULL,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
CREATE INDEX invitations_org_created_idx ON invitations (organization_id, created_at DESC, id DESC);
CREATE INDEX invitations_email_idx ON invitations (email_normalized, status);
CREATE INDEX invitations_role_idx ON invitations (role, status);

-- Sessions that have an organization active (they fall back to the personal account
-- when it is deleted or left).
CREATE INDEX sessions_active_org_idx ON sessions (active_organization_id) WHERE active_organization_id IS NOT NULL;
-- Members holding a role (a role in use cannot be deleted).
CREATE INDEX memberships_role_idx ON memberships (role);
