-- The spine: plugins, connector instances, runs, logs, state, keys, practitioners, rejects.
-- Times are RFC 3339 UTC text (fixed width, so they sort); flags are 0/1 integers.

CREATE TABLE plugins (
    digest        TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    version       TEXT NOT NULL,
    contract      TEXT NOT NULL,
    manifest      TEXT NOT NULL,
    component     BLOB NOT NULL,
    installed_at  TEXT NOT NULL,
    UNIQUE (name, version)
);

CREATE TABLE connectors (
    id             TEXT PRIMARY KEY,
    name           TEXT NOT NULL UNIQUE,
    plugin_digest  TEXT NOT NULL REFERENCES plugins (digest),
    config         TEXT NOT NULL,
    egress         TEXT NOT NULL,
    credentials    TEXT NOT NULL,
    enabled        INTEGER NOT NULL,
    concurrency    INTEGER NOT NULL,
    max_attempts   INTEGER NOT NULL,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL
);

CREATE TABLE connector_secrets (
    connector_id  TEXT NOT NULL REFERENCES connectors (id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    version       INTEGER NOT NULL,
    value         BLOB NOT NULL,
    updated_at    TEXT NOT NULL,
    PRIMARY KEY (connector_id, name)
);

CREATE TABLE connector_state (
    connector_id  TEXT NOT NULL REFERENCES connectors (id) ON DELETE CASCADE,
    key           TEXT NOT NULL,
    value         TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    PRIMARY KEY (connector_id, key)
);

CREATE TABLE runs (
    id                 TEXT PRIMARY KEY,
    connector_id       TEXT NOT NULL,
    trigger_kind        TEXT NOT NULL,
    status             TEXT NOT NULL,
    attempts           INTEGER NOT NULL,
    queued_at          TEXT NOT NULL,
    started_at         TEXT,
    finished_at        TEXT,
    trace_id           TEXT NOT NULL,
    records_received   INTEGER NOT NULL DEFAULT 0,
    records_created    INTEGER NOT NULL DEFAULT 0,
    records_updated    INTEGER NOT NULL DEFAULT 0,
    records_unchanged  INTEGER NOT NULL DEFAULT 0,
    records_rejected   INTEGER NOT NULL DEFAULT 0,
    error              TEXT
);
CREATE INDEX runs_by_connector ON runs (connector_id, id);

CREATE TABLE connector_logs (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    connector_id  TEXT NOT NULL,
    run_id        TEXT,
    at            TEXT NOT NULL,
    level         TEXT NOT NULL,
    origin        TEXT NOT NULL,
    message       TEXT NOT NULL,
    fields        TEXT NOT NULL
);
CREATE INDEX connector_logs_by_connector ON connector_logs (connector_id, id);

CREATE TABLE data_keys (
    purpose     TEXT NOT NULL,
    version     INTEGER NOT NULL,
    wrapped     BLOB NOT NULL,
    status      TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (purpose, version)
);

CREATE TABLE api_keys (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    role        TEXT NOT NULL,
    key_hash    BLOB NOT NULL UNIQUE,
    created_at  TEXT NOT NULL,
    revoked_at  TEXT
);

CREATE TABLE practitioners (
    id            TEXT PRIMARY KEY,
    str_index     BLOB UNIQUE,
    nik_index     BLOB,
    match_index   BLOB,
    key_version   INTEGER NOT NULL,
    nik           BLOB,
    str_number    BLOB,
    full_name     BLOB,
    birth_place   BLOB,
    birth_date    BLOB,
    phone         BLOB,
    email         BLOB,
    details       BLOB,
    gender        TEXT NOT NULL,
    profession    TEXT,
    content_hash  BLOB NOT NULL,
    source_system TEXT NOT NULL,
    source_id     TEXT NOT NULL,
    source_updated_at TEXT,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);
CREATE INDEX practitioners_by_nik ON practitioners (nik_index);
CREATE INDEX practitioners_by_match ON practitioners (match_index);

CREATE TABLE rejects (
    id             TEXT PRIMARY KEY,
    connector_id   TEXT NOT NULL,
    run_id         TEXT,
    source_system  TEXT NOT NULL,
    source_id      TEXT NOT NULL,
    reason         TEXT NOT NULL,
    record         BLOB NOT NULL,
    key_version    INTEGER NOT NULL,
    created_at     TEXT NOT NULL
);
CREATE INDEX rejects_by_connector ON rejects (connector_id, id);
