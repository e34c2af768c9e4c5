-- The health probes' latest reading of each probed provider, written by the
-- instance that probes after each round and read by the others, so that
-- `/providers/{id}/availability` gives the same latest reading whichever
-- instance answers (a reading that changes no status makes no event). Not
-- part of the catalog's state: not copied, not versioned.
CREATE TABLE health_readings (
    provider_id TEXT PRIMARY KEY,
    url TEXT NOT NULL,
    body TEXT NOT NULL
);
