-- Identity (issue 15): a practitioner is a person identified by a validated NIK; STR numbers
-- are credentials they hold, and every STR number a person has held still finds them after
-- a re-issue. `str_number` is sealed (AAD `practitioner_strs.str_number`, `<id>`) so a
-- blind-index reindex can recompute `str_index`; rows for STRs stored before this migration
-- are added, sealed, by the hub when it starts (`store::identity::backfill_str_history`).
CREATE TABLE practitioner_strs (
    id              TEXT PRIMARY KEY,
    str_index       BLOB NOT NULL UNIQUE,
    practitioner_id TEXT NOT NULL REFERENCES practitioners (id),
    key_version     INTEGER NOT NULL,
    str_number      BLOB NOT NULL,
    first_seen      TEXT NOT NULL
);
CREATE INDEX practitioner_strs_by_practitioner ON practitioner_strs (practitioner_id);

-- Which matching tier joined each source's record to its practitioner (`created` for the
-- record that made them); NULL for contributions stored before this migration.
ALTER TABLE practitioner_sources ADD COLUMN matched_by TEXT;

-- A connector's own answer to whether its records may create practitioners; NULL keeps its
-- plugin manifest's `creates_practitioners`.
ALTER TABLE connectors ADD COLUMN creates_practitioners TEXT;
