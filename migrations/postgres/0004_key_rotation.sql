-- Data key rotation: every sealed table records the lowest key version among its sealed
-- columns, so the re-encryption job finds the rows still under an old key by index.
ALTER TABLE connector_secrets ADD COLUMN key_version BIGINT NOT NULL DEFAULT 1;
CREATE INDEX practitioners_by_key_version ON practitioners (key_version);
CREATE INDEX accounts_by_key_version ON accounts (key_version);
CREATE INDEX rejects_by_key_version ON rejects (key_version);

CREATE TABLE key_rotations (
    id            TEXT PRIMARY KEY,
    to_version    BIGINT NOT NULL,
    status        TEXT NOT NULL,
    total         BIGINT NOT NULL,
    done          BIGINT NOT NULL,
    error         TEXT,
    requested_by  TEXT NOT NULL,
    started_at    TEXT NOT NULL,
    finished_at   TEXT
);
