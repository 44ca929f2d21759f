-- The golden record: what each source system last said about a practitioner, sealed whole
-- (one row per practitioner and system), from which the practitioners row is merged field by
-- field; provenance names each golden field's source, connector and time, so a field whose
-- connector cannot reach its system now is shown as stale (docs/golden-record.md).
-- `id` is `<practitioner id>/<source system>`, the row id sealed into `record`'s AAD, so key
-- rotation finds each row by its primary key.
CREATE TABLE practitioner_sources (
    id                TEXT PRIMARY KEY,
    practitioner_id   TEXT NOT NULL REFERENCES practitioners (id),
    source_system     TEXT NOT NULL,
    connector_id      TEXT NOT NULL,
    key_version       BIGINT NOT NULL,
    record            BYTEA NOT NULL,
    content_hash      BYTEA NOT NULL,
    source_updated_at TEXT,
    received_at       TEXT NOT NULL
);
CREATE INDEX practitioner_sources_by_practitioner ON practitioner_sources (practitioner_id);

ALTER TABLE practitioners ADD COLUMN provenance TEXT;
