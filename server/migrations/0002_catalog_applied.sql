-- The catalog file as it was last applied (its JSON form), so that a
-- reconcile applies only what the file changed since then and keeps what the
-- admin API changed (the `kubectl apply` model). Written in the same
-- transaction as the reconcile's events.
CREATE TABLE catalog_applied (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    body TEXT NOT NULL
);
