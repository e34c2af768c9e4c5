-- The version the current epoch began at (see the SQLite migration 0005):
-- past it, a log without the head's own event was wiped by hand, and a new
-- epoch starts.
ALTER TABLE sync_meta ADD COLUMN epoch_version BIGINT NOT NULL DEFAULT 0;
UPDATE sync_meta SET epoch_version = version
    WHERE NOT EXISTS (SELECT 1 FROM events WHERE events.version = sync_meta.version);
