-- FHIR (issue 19): every practitioner carries a version that each write of their golden
-- record increments (`meta.versionId`, the ETag `W/"<version>"`), so a client can ask
-- whether a practitioner changed (If-None-Match) without the hub decrypting anything.
-- Rows stored before this migration start at version 1.
ALTER TABLE practitioners ADD COLUMN version_id BIGINT NOT NULL DEFAULT 1;
