-- Part 2, audit log: who did what, to what, from where. Written in the transaction of the
-- action; kept AUDIT_RETENTION_DAYS.
CREATE TABLE audit_log (
    id              TEXT PRIMARY KEY,
    action          TEXT NOT NULL,
    actor_type      TEXT NOT NULL,
    actor_id        TEXT,
    impersonator    TEXT,
    target_type     TEXT,
    target_id       TEXT,
    organization_id TEXT,
    ip_address      TEXT,
    user_agent      TEXT,
    data            TEXT NOT NULL,
    created_at      BIGINT NOT NULL
);
CREATE INDEX audit_log_created_idx ON audit_log (created_at DESC, id DESC);
CREATE INDEX audit_log_org_idx ON audit_log (organization_id, created_at DESC, id DESC);
CREATE INDEX audit_log_actor_idx ON audit_log (actor_id, created_at DESC);
CREATE INDEX audit_log_target_idx ON audit_log (target_id, created_at DESC);
