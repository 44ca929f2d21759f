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
    details           BLOB,
    nik               BLOB,
    str_number        BLOB,
    full_name         BLOB,
    birth_place       BLOB,
    birth_date        BLOB,
    phone             BLOB,
    email             BLOB,
    gender            TEXT NOT NULL,
    profession        TEXT,
    source_system     TEXT NOT NULL,
    source_id         TEXT NOT NULL,
    source_updated_at TEXT,
    provenance        TEXT,
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL,
    PRIMARY KEY (practitioner_id, version_id)
);
