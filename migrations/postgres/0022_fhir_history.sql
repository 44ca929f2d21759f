-- FHIR (issue 19): a practitioner's earlier versions, for `_history` and `vread`.
--
-- When a write supersedes a version of a golden record, the row as it stood is copied here
-- first, in the same transaction and in one statement per batch. Its sealed columns are
-- the practitioners row's ciphertexts moved verbatim: still bound to table `practitioners`,
-- their column and the practitioner's id (store::keys::SEALED_TABLES says so), so nothing
-- is decrypted or encrypted to keep a version, and a sync that only creates records writes
-- nothing here. The current version stays in `practitioners`.
CREATE TABLE practitioner_versions (
    practitioner_id   TEXT NOT NULL,
    version_id        BIGINT NOT NULL,
    key_version       BIGINT NOT NULL,
    details           BYTEA,
    nik               BYTEA,
    str_number        BYTEA,
    full_name         BYTEA,
    birth_place       BYTEA,
    birth_date        BYTEA,
    phone             BYTEA,
    email             BYTEA,
    gender            TEXT NOT NULL,
    profession        TEXT,
    source_system     TEXT NOT NULL,
    source_id         TEXT NOT NULL,
    source_updated_at TEXT,
    provenance        TEXT,
    created_at        TIMESTAMPTZ NOT NULL,
    updated_at        TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (practitioner_id, version_id)
);
