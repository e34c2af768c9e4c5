-- The version the current epoch began at: its log never holds an event at
-- or before it. Past it, the log always holds the head's own event (a write
-- never trims the event it is built on), so a log that lacks it was wiped
-- by hand (`DELETE FROM events`): the server starts a new epoch at its next
-- start, as ARCHITECTURE.md says of a wiped log. A store whose log lacks
-- the head's event already (an epoch begun by an earlier build, with no
-- write since) is taken as at the start of its epoch.
ALTER TABLE sync_meta ADD COLUMN epoch_version INTEGER NOT NULL DEFAULT 0;
UPDATE sync_meta SET epoch_version = version
    WHERE NOT EXISTS (SELECT 1 FROM events WHERE events.version = sync_meta.version);
-- Any change of epoch marks where it began, whoever makes it (an
-- operator's `UPDATE sync_meta SET epoch = …`), unless the update sets the
-- column itself.
CREATE TRIGGER provider_sync_epoch_began AFTER UPDATE OF epoch ON sync_meta
    WHEN NEW.epoch IS NOT OLD.epoch AND NEW.epoch_version = OLD.epoch_version
BEGIN
    UPDATE sync_meta SET epoch_version = NEW.version WHERE id = NEW.id;
END;
