-- FHIR (issue 19): Observation's `subject:identifier` search. The subject stays sealed in
-- `details`; beside it, the blind key of its identifier (HMAC under the blind-index key,
-- pipeline::derive::subject_key), so the search opens no observation. Partial: most
-- sensor readings name no subject.
ALTER TABLE observations ADD COLUMN subject_key BYTEA;
CREATE INDEX observations_by_subject ON observations (subject_key, id) WHERE subject_key IS NOT NULL;

-- Observations stored before this migration, whose subject key the hub computes from their
-- sealed details when it starts (pipeline::upgrade); each is taken off as it is done.
CREATE TABLE observations_to_key (id TEXT PRIMARY KEY);
INSERT INTO observations_to_key (id) SELECT id FROM observations;
