-- Observations at IoT scale: partitioned by month of `effective_at`, now a TIMESTAMPTZ, so
-- old months are dropped whole (`[observations] retention_days`) instead of deleted row by
-- row, and a month's inserts touch one partition's indexes. The hub creates each month's
-- partition ahead of time; a row outside every partition (a late backfill, a device with a
-- wrong clock) lands in `observations_default`, still stored and listed.
-- The primary key includes the partition key, as PostgreSQL requires; `id` stays unique.

ALTER TABLE observations RENAME TO observations_unpartitioned;
ALTER TABLE observations_unpartitioned RENAME CONSTRAINT observations_pkey TO observations_unpartitioned_pkey;
ALTER TABLE observations_unpartitioned
    RENAME CONSTRAINT observations_device_id_code_effective_at_key TO observations_unpartitioned_key;
ALTER INDEX observations_by_connector RENAME TO observations_unpartitioned_by_connector;

CREATE TABLE observations (
    id            TEXT NOT NULL,
    connector_id  TEXT NOT NULL,
    device_id     TEXT NOT NULL,
    code          TEXT NOT NULL,
    value         DOUBLE PRECISION,
    unit          TEXT,
    effective_at  TIMESTAMPTZ NOT NULL,
    key_version   BIGINT NOT NULL,
    details       BYTEA NOT NULL,
    source_system TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    PRIMARY KEY (id, effective_at),
    UNIQUE (device_id, code, effective_at)
) PARTITION BY RANGE (effective_at);
CREATE INDEX observations_by_connector ON observations (connector_id, id);
CREATE TABLE observations_default PARTITION OF observations DEFAULT;

-- A partition for every month that holds rows, and for this month and the next two.
DO $$
DECLARE
    month timestamptz;
BEGIN
    FOR month IN
        SELECT DISTINCT date_trunc('month', effective_at::timestamptz AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
        FROM observations_unpartitioned
        UNION
        SELECT (date_trunc('month', now() AT TIME ZONE 'UTC') + make_interval(months => n)) AT TIME ZONE 'UTC'
        FROM generate_series(0, 2) AS n
    LOOP
        EXECUTE format('CREATE TABLE %I PARTITION OF observations FOR VALUES FROM (%L) TO (%L)',
                       'observations_' || to_char(month AT TIME ZONE 'UTC', 'YYYY_MM'),
                       month, month + interval '1 month');
    END LOOP;
END $$;

INSERT INTO observations (id, connector_id, device_id, code, value, unit, effective_at, key_version, details,
                          source_system, created_at)
SELECT id, connector_id, device_id, code, value, unit, effective_at::timestamptz, key_version, details,
       source_system, created_at
FROM observations_unpartitioned;
DROP TABLE observations_unpartitioned;
