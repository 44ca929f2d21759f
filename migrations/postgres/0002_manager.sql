-- The integration manager: package publishers, connector versions for rollback, API keys
-- with permissions, and the hash-chained audit log.

ALTER TABLE plugins ADD COLUMN publisher TEXT;

ALTER TABLE connectors ADD COLUMN previous_plugin_digest TEXT REFERENCES plugins (digest);

-- The plugin version each run used (set when an attempt starts).
ALTER TABLE runs ADD COLUMN plugin_digest TEXT;

ALTER TABLE api_keys ADD COLUMN permissions TEXT NOT NULL DEFAULT '[]';
ALTER TABLE api_keys ADD COLUMN created_by TEXT;

-- Append-only: each entry's MAC covers its fields and the MAC of the entry before it, and
-- audit_head holds the MAC and number of the last entry, so an edited, deleted or truncated
-- entry breaks the chain (`hub audit verify`).
CREATE TABLE audit_log (
    seq       BIGINT PRIMARY KEY,
    at        TEXT NOT NULL,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    target    TEXT NOT NULL,
    outcome   TEXT NOT NULL,
    details   TEXT NOT NULL,
    mac       BYTEA NOT NULL
);

CREATE TABLE audit_head (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    seq  BIGINT NOT NULL,
    mac  BYTEA NOT NULL
);
INSERT INTO audit_head (id, seq, mac) VALUES (1, 0, '\x'::bytea);

-- SSO accounts, linked to the practitioner with the same NIK (by blind index).
CREATE TABLE accounts (
    id              TEXT PRIMARY KEY,
    source_system   TEXT NOT NULL,
    subject_index   BYTEA NOT NULL,
    nik_index       BYTEA,
    practitioner_id TEXT,
    key_version     INTEGER NOT NULL,
    subject         BYTEA NOT NULL,
    username        BYTEA NOT NULL,
    email           BYTEA,
    roles           TEXT NOT NULL,
    active          INTEGER NOT NULL,
    content_hash    BYTEA NOT NULL,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    UNIQUE (source_system, subject_index)
);
CREATE INDEX accounts_by_practitioner ON accounts (practitioner_id);
