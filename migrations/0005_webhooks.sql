-- Webhooks: receipts of incoming (Clerk/Svix) messages, and the outgoing side:
-- endpoints, one delivery per (event, endpoint), and every attempt.

CREATE TABLE webhook_receipts (
    message_id  TEXT PRIMARY KEY,
    event_type  TEXT NOT NULL,
    received_at BIGINT NOT NULL
);

CREATE TABLE webhook_endpoints (
    id                   TEXT PRIMARY KEY,
    url                  TEXT NOT NULL,
    description          TEXT,
    -- Comma-separated event types; empty means every type.
    events               TEXT NOT NULL,
    secret               TEXT NOT NULL,
    status               TEXT NOT NULL CHECK (status IN ('active', 'failing')),
    consecutive_failures BIGINT NOT NULL,
    created_at           BIGINT NOT NULL,
    updated_at           BIGINT NOT NULL
);
CREATE INDEX webhook_endpoints_created_idx ON webhook_endpoints (created_at DESC, id DESC);

CREATE TABLE webhook_deliveries (
    id              TEXT PRIMARY KEY,
    event_id        TEXT NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    endpoint_id     TEXT NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts        BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    -- A worker's claim: until then no other worker takes it; after, a crashed claim is due again.
    locked_until    BIGINT NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
-- Serves the worker's claim query.
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (status, next_attempt_at);

CREATE TABLE webhook_attempts (
    id          TEXT PRIMARY KEY,
    delivery_id TEXT NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    endpoint_id TEXT NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event_id    TEXT NOT NULL,
    attempt     BIGINT NOT NULL,
    status_code BIGINT,
    error       TEXT,
    duration_ms BIGINT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX webhook_attempts_endpoint_idx ON webhook_attempts (endpoint_id, created_at DESC, id DESC);
