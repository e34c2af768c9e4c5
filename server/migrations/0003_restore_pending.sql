-- Written by `provider-sync-server backup` into the copy it makes, never into
-- a live store. A server that opens the copy starts a new epoch (the live
-- store may have gone on past this point with other content, so no client
-- may keep its version) and deletes the row; `store copy` from a copy that
-- still has it starts a new epoch as well.
CREATE TABLE restore_pending (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    -- Where the copy was taken: the live store's epoch and version then.
    epoch TEXT NOT NULL,
    version INTEGER NOT NULL,
    taken_at TEXT NOT NULL
);
