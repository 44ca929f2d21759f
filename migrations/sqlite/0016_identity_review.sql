-- The identity review queue (issue 15, docs/golden-record.md "Review"): a record that is
-- probably, not surely, a stored person is held here instead of merged, sealed whole (AAD
-- `identity_candidates.record`, `<id>`), until someone decides. A record is named by its
-- source system and that system's record id, in clear as in `rejects` (an id, not personal
-- data). One open candidate per record and person.
CREATE TABLE identity_candidates (
    id              TEXT PRIMARY KEY,
    kind            TEXT NOT NULL,
    status          TEXT NOT NULL,
    practitioner_id TEXT NOT NULL REFERENCES practitioners (id),
    connector_id    TEXT NOT NULL,
    source_system   TEXT NOT NULL,
    source_id       TEXT NOT NULL,
    key_version     INTEGER NOT NULL,
    record          BLOB NOT NULL,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    decided_at      TEXT,
    decided_by      TEXT
);
CREATE UNIQUE INDEX identity_candidates_open ON identity_candidates (source_system, source_id, practitioner_id)
    WHERE status = 'open';
CREATE INDEX identity_candidates_by_status ON identity_candidates (status, id);

-- What a review decided about a source record, which matching obeys from then on: the
-- record `is` this practitioner's (merged into them, or split out as them), or stays
-- `apart` from them. No foreign key: a split names the person its record is about to create.
CREATE TABLE identity_pins (
    source_system   TEXT NOT NULL,
    source_id       TEXT NOT NULL,
    practitioner_id TEXT NOT NULL,
    relation        TEXT NOT NULL,
    decided_by      TEXT NOT NULL,
    decided_at      TEXT NOT NULL,
    -- Source id first: a batch looks its records' pins up by their ids.
    PRIMARY KEY (source_id, source_system, practitioner_id)
);

-- Blind index of a person's normalized name, birth date and birth place, without the NIK:
-- the same person under another NIK is found by it and proposed for review, never merged.
ALTER TABLE practitioners ADD COLUMN twin_index BLOB;
CREATE INDEX practitioners_by_twin ON practitioners (twin_index);

-- Records a run held for review (neither stored nor rejected).
ALTER TABLE runs ADD COLUMN records_held INTEGER NOT NULL DEFAULT 0;

-- Match keys now include `twin_index`: the hub computes both when it starts.
UPDATE practitioners SET match_version = NULL;
