-- Who changed what: one row per admin write that got past the token check
-- (refused ones too, without versions), kept for --audit-retention-days.
-- A write that committed has its row in its own transaction.
CREATE TABLE audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms INTEGER NOT NULL,
    token TEXT NOT NULL,
    client TEXT NOT NULL,
    request_id TEXT NOT NULL,
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    status INTEGER NOT NULL,
    epoch TEXT,
    first_version INTEGER,
    last_version INTEGER
);

CREATE INDEX audit_at ON audit (at_ms);
