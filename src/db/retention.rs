//! Retention: what the housekeeping pass deletes, in small batches, once it is older
//! than the retention period. Nothing pending is ever deleted: a delivery still to be
//! attempted keeps its event, an active session its row, a client with sessions its row.

use super::Exec;

/// One kind of old row, deleted `LIMIT` rows at a time. `$1`: the cutoff (Unix ms);
/// `$2`: the batch size.
pub struct Purge {
    pub name: &'static str,
    sql: &'static str,
}

/// In order: deliveries before their events, sessions before their clients.
pub const PURGES: &[Purge] = &[
    Purge {
        // Their attempts go with them (ON DELETE CASCADE).
        name: "webhook_deliveries",
        sql: "DELETE FROM webhook_deliveries WHERE id IN (
                SELECT id FROM webhook_deliveries
                WHERE status IN ('delivered', 'failed') AND next_attempt_at < $1 LIMIT $2)",
    },
    Purge {
        name: "events",
        sql: "DELETE FROM events WHERE id IN (
                SELECT e.id FROM events e WHERE e.created_at < $1
                  AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.event_id = e.id AND d.status = 'pending')
                LIMIT $2)",
    },
    Purge {
        name: "webhook_receipts",
        sql: "DELETE FROM webhook_receipts WHERE message_id IN (
                SELECT message_id FROM webhook_receipts WHERE received_at < $1 LIMIT $2)",
    },
    Purge {
        name: "sessions",
        sql: "DELETE FROM sessions WHERE id IN (
                SELECT id FROM sessions WHERE status IN ('ended', 'revoked', 'expired') AND updated_at < $1 LIMIT $2)",
    },
    Purge {
        name: "emails",
        sql: "DELETE FROM emails WHERE id IN (
                SELECT id FROM emails WHERE status IN ('sent', 'failed') AND next_attempt_at < $1 LIMIT $2)",
    },
    Purge {
        // Used or expired: a live code is never deleted.
        name: "verification_codes",
        sql: "DELETE FROM verification_codes WHERE id IN (
                SELECT id FROM verification_codes WHERE expires_at < $1 LIMIT $2)",
    },
    Purge {
        name: "sign_ups",
        sql: "DELETE FROM sign_ups WHERE id IN (SELECT id FROM sign_ups WHERE expires_at < $1 LIMIT $2)",
    },
    Purge {
        name: "sign_in_attempts",
        sql: "DELETE FROM sign_in_attempts WHERE id IN (SELECT id FROM sign_in_attempts WHERE expires_at < $1 LIMIT $2)",
    },
    Purge {
        name: "clients",
        sql: "DELETE FROM clients WHERE id IN (
                SELECT c.id FROM clients c WHERE c.updated_at < $1
                  AND NOT EXISTS (SELECT 1 FROM sessions s WHERE s.client_id = c.id)
                LIMIT $2)",
    },
];

impl Purge {
    /// Deletes one batch; returns how many rows went.
    #[tracing::instrument(skip(self, ex), fields(table = self.name))]
    pub async fn batch<'e>(&self, ex: impl Exec<'e>, cutoff: i64, limit: i64) -> Result<u64, sqlx::Error> {
        let result = sqlx::query(self.sql).bind(cutoff).bind(limit).execute(ex).await?;
        Ok(result.rows_affected())
    }
}
