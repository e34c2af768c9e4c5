-- One row: which history this store holds and how far along it is. Every
-- write locks it (SELECT ... FOR UPDATE) for the length of its transaction,
-- so versions are assigned in commit order across instances, contiguous,
-- and a rolled-back write leaves no hole.
CREATE TABLE sync_meta (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    epoch TEXT NOT NULL,
    version BIGINT NOT NULL,
    active_provider_id TEXT,
    default_provider_id TEXT
);

-- Entities as their JSON wire form, with the columns queries need.
CREATE TABLE providers (
    id TEXT PRIMARY KEY,
    revision BIGINT NOT NULL,
    body TEXT NOT NULL
);

CREATE TABLE models (
    id TEXT PRIMARY KEY,
    provider_id TEXT NOT NULL,
    revision BIGINT NOT NULL,
    body TEXT NOT NULL
);

-- The bounded event log: the JSON of each change event, by version. Every
-- instance follows it (LISTEN/NOTIFY only wakes the readers).
CREATE TABLE events (
    version BIGINT PRIMARY KEY,
    body TEXT NOT NULL,
    bytes INTEGER NOT NULL
);

-- The catalog file as last applied (see the SQLite migration 0002).
CREATE TABLE catalog_applied (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    body TEXT NOT NULL
);
