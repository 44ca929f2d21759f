-- An alert concerns a connector or a webhook subscription (issue 20: an endpoint failing
-- for days is disabled and raises an alert): exactly one of the two is set. SQLite cannot
-- drop a NOT NULL, so the table is built again.
CREATE TABLE alerts_next (
    id              TEXT PRIMARY KEY,
    connector_id    TEXT,
    subscription_id TEXT,
    run_id          TEXT,
    kind            TEXT NOT NULL,
    message         TEXT NOT NULL,
    raised_at       TEXT NOT NULL,
    resolved_at     TEXT,
    CHECK ((connector_id IS NULL) <> (subscription_id IS NULL))
);
INSERT INTO alerts_next (id, connector_id, run_id, kind, message, raised_at, resolved_at)
    SELECT id, connector_id, run_id, kind, message, raised_at, resolved_at FROM alerts;
DROP TABLE alerts;
ALTER TABLE alerts_next RENAME TO alerts;
CREATE INDEX alerts_by_connector ON alerts (connector_id, id);
CREATE INDEX alerts_by_subscription ON alerts (subscription_id, id);
