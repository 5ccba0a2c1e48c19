-- Indexes for the housekeeping pass, which deletes old rows in small batches.
CREATE INDEX webhook_receipts_received_idx ON webhook_receipts (received_at);
CREATE INDEX clients_updated_idx ON clients (updated_at);
-- Sessions past their lifetime are found (and marked expired) by expiry time.
CREATE INDEX sessions_active_expiry_idx ON sessions (expire_at) WHERE status = 'active';
