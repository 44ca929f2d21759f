-- Alerts: conditions an operator must act on (credentials refused, too many rejects).
CREATE TABLE alerts (
    id            TEXT PRIMARY KEY,
    connector_id  TEXT NOT NULL,
    run_id        TEXT,
    kind          TEXT NOT NULL,
    message       TEXT NOT NULL,
    raised_at     TEXT NOT NULL,
    resolved_at   TEXT
);
CREATE INDEX alerts_by_connector ON alerts (connector_id, id);
