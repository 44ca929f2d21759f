-- Normalization tables (issue 15): the version of `pipeline::normalize` that each
-- practitioner's `match_index` was computed with; NULL is version 1, the titles-only rule.
-- The hub recomputes older keys when it starts (`Pipeline::upgrade`).
ALTER TABLE practitioners ADD COLUMN match_version INTEGER;

-- The source's own id of each contribution (its record id in RegNakes, KKI, ...), in clear as
-- `practitioners.source_id` is: which record of a source a person is made of. NULL until the
-- hub fills it in when it starts.
ALTER TABLE practitioner_sources ADD COLUMN source_id TEXT;
