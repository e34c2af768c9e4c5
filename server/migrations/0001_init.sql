-- One row: which history this store holds and how far along it is.
CREATE TABLE sync_meta (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    epoch TEXT NOT NULL,
    version INTEGER NOT NULL,
    active_provider_id TEXT,
    default_provider_id TEXT
);

-- Entities are stored as their JSON wire form; the columns beside it are
-- what queries and constraints need.
CREATE TABLE providers (
    id TEXT PRIMARY KEY,
    revision INTEGER NOT NULL,
    body TEXT NOT NULL
);

CREATE TABLE models (
    id TEXT PRIMARY KEY,
    provider_id TEXT NOT NULL,
    revision INTEGER NOT NULL,
    body TEXT NOT NULL
);

-- The bounded event log: the JSON of each change event, by version.
CREATE TABLE events (
    version INTEGER PRIMARY KEY,
    body TEXT NOT NULL
);
