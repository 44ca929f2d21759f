-- Durable jobs: every trigger (a sync run, an inbound webhook, a batch of MQTT messages, a
-- reprocessed reject) is a row here before it is acknowledged. Workers claim rows with a
-- lease they keep renewing; a row whose lease lapsed (its hub died) is claimed again.
-- The payload is sealed under the data keys: a webhook body may name a person.
CREATE TABLE jobs (
    id            TEXT PRIMARY KEY,
    connector_id  TEXT NOT NULL,
    kind          TEXT NOT NULL,
    -- Deduplication key: the webhook-id of a webhook; unique per connector and kind.
    dedup_key     TEXT,
    -- The run a sync job executes.
    run_id        TEXT,
    payload       BLOB NOT NULL,
    key_version   INTEGER NOT NULL,
    -- queued, running, succeeded or dead (failed its last attempt: see POST /api/v1/jobs/{id}/retry).
    status        TEXT NOT NULL,
    attempts      INTEGER NOT NULL DEFAULT 0,
    max_attempts  INTEGER NOT NULL,
    run_after     TEXT NOT NULL,
    lease_until   TEXT,
    worker        TEXT,
    error         TEXT,
    created_at    TEXT NOT NULL,
    finished_at   TEXT
);
CREATE UNIQUE INDEX jobs_by_dedup_key ON jobs (connector_id, kind, dedup_key);
CREATE INDEX jobs_ready ON jobs (status, run_after);
CREATE INDEX jobs_by_connector ON jobs (connector_id, id);

-- Runs used to execute in the process that queued them; a run left queued or running by
-- the hub before this version has no job to resume it.
UPDATE runs SET status = 'failed',
    error = 'interrupted: the hub stopped during this run; start it again (the cursor resumes where it stopped)'
    WHERE status IN ('queued', 'running');
