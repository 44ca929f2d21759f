-- Per-connector quota overrides (a JSON object of some of `[quotas]`; runtime/quotas.rs).
ALTER TABLE connectors ADD COLUMN quotas TEXT NOT NULL DEFAULT '{}';

-- One person per NIK (issue 12): the pipeline refuses a second practitioner under a stored
-- NIK, and this makes it hold between concurrent writers too.
DROP INDEX practitioners_by_nik;
CREATE UNIQUE INDEX practitioners_by_nik ON practitioners (nik_index);
