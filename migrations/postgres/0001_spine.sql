-- The spine: plugins, connector instances, runs, logs, state, keys, practitioners, rejects.
-- Times are RFC 3339 UTC text (fixed width, so they sort); flags are 0/1 integers.

CREATE TABLE plugins (
    digest        TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    version       TEXT NOT NULL,
    contract      TEXT NOT NULL,
    manifest      TEXT NOT NULL,
    component     BYTEA NOT NULL,
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
    enabled        BIGINT NOT NULL,
    concurrency    BIGINT NOT NULL,
    max_attempts   BIGINT NOT NULL,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL
);

CREATE TABLE connector_secrets (
    connector_id  TEXT NOT NULL REFERENCES connectors (id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    version       BIGINT NOT NULL,
    value         BYTEA NOT NULL,
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
    attempts           BIGINT NOT NULL,
    queued_at          TEXT NOT NULL,
    started_at         TEXT,
    finished_at        TEXT,
    trace_id           TEXT NOT NULL,
    records_received   BIGINT NOT NULL DEFAULT 0,
    records_created    BIGINT NOT NULL DEFAULT 0,
    records_updated    BIGINT NOT NULL DEFAULT 0,
    records_unchanged  BIGINT NOT NULL DEFAULT 0,
    records_rejected   BIGINT NOT NULL DEFAULT 0,
    error              TEXT
);
CREATE INDEX runs_by_connector ON runs (connector_id, id);

CREATE TABLE connector_logs (
    id            BIGSERIAL PRIMARY KEY,
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
    version     BIGINT NOT NULL,
    wrapped     BYTEA NOT NULL,
    status      TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (purpose, version)
);

CREATE TABLE api_keys (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    role        TEXT NOT NULL,
    key_hash    BYTEA NOT NULL UNIQUE,
    created_at  TEXT NOT NULL,
    revoked_at  TEXT
);

CREATE TABLE practitioners (
    id            TEXT PRIMARY KEY,
    str_index     BYTEA UNIQUE,
    nik_index     BYTEA,
    match_index   BYTEA,
    key_version   BIGINT NOT NULL,
    nik           BYTEA,
    str_number    BYTEA,
    full_name     BYTEA,
    birth_place   BYTEA,
    birth_date    BYTEA,
    phone         BYTEA,
    email         BYTEA,
    details       BYTEA,
    gender        TEXT NOT NULL,
    profession    TEXT,
    content_hash  BYTEA NOT NULL,
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
    record         BYTEA NOT NULL,
    key_version    BIGINT NOT NULL,
    created_at     TEXT NOT NULL
);
CREATE INDEX rejects_by_connector ON rejects (connector_id, id);
