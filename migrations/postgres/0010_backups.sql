-- Backups this hub (or a replica) took: `hub backup`, or the `[backup]` schedule. A
-- scheduled backup is claimed by its fire time, unique here, so several hubs on one
-- database take it once. The file itself lives in the backup directory with a manifest
-- beside it (size, SHA-256); these rows say who took which and how it ended.
CREATE TABLE backups (
    id           TEXT PRIMARY KEY,
    -- The schedule's fire time; NULL for a backup asked for by hand.
    fire_key     TEXT UNIQUE,
    -- running, succeeded or failed.
    status       TEXT NOT NULL,
    started_at   TEXT NOT NULL,
    finished_at  TEXT,
    file         TEXT,
    bytes        BIGINT,
    sha256       TEXT,
    error        TEXT
);
