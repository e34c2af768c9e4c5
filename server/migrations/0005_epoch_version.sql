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
