-- The version the current epoch began at (see the SQLite migration 0005):
-- past it, a log without the head's own event was wiped by hand, and a new
-- epoch starts.
ALTER TABLE sync_meta ADD COLUMN epoch_version BIGINT NOT NULL DEFAULT 0;
UPDATE sync_meta SET epoch_version = version
    WHERE NOT EXISTS (SELECT 1 FROM events WHERE events.version = sync_meta.version);
-- Any change of epoch marks where it began, whoever makes it: an instance
-- of an earlier build still running during a rolling deploy (which knows
-- nothing of the column), or an operator's `UPDATE sync_meta SET epoch`.
-- An update that sets the column itself keeps its value.
CREATE FUNCTION provider_sync_epoch_began() RETURNS trigger AS $$
BEGIN
    IF NEW.epoch IS DISTINCT FROM OLD.epoch AND NEW.epoch_version = OLD.epoch_version THEN
        NEW.epoch_version := NEW.version;
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER provider_sync_epoch_began BEFORE UPDATE ON sync_meta
    FOR EACH ROW EXECUTE FUNCTION provider_sync_epoch_began();
