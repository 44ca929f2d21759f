-- Times become TIMESTAMPTZ. They were RFC 3339 text in UTC with milliseconds, which
-- PostgreSQL parses as is; the hub reads them back to the same text, so audit MACs over
-- `audit_log.at` still verify. `source_updated_at` stays text: it is the source's own
-- claim, kept as the source wrote it. JSON stays text (see 0011).

ALTER TABLE plugins ALTER COLUMN installed_at TYPE TIMESTAMPTZ USING installed_at::timestamptz;
ALTER TABLE connectors ALTER COLUMN created_at TYPE TIMESTAMPTZ USING created_at::timestamptz,
                       ALTER COLUMN updated_at TYPE TIMESTAMPTZ USING updated_at::timestamptz,
                       ALTER COLUMN last_fired_at TYPE TIMESTAMPTZ USING last_fired_at::timestamptz;
ALTER TABLE connector_secrets ALTER COLUMN updated_at TYPE TIMESTAMPTZ USING updated_at::timestamptz;
ALTER TABLE connector_state ALTER COLUMN updated_at TYPE TIMESTAMPTZ USING updated_at::timestamptz;
ALTER TABLE runs ALTER COLUMN queued_at TYPE TIMESTAMPTZ USING queued_at::timestamptz,
                 ALTER COLUMN started_at TYPE TIMESTAMPTZ USING started_at::timestamptz,
                 ALTER COLUMN finished_at TYPE TIMESTAMPTZ USING finished_at::timestamptz;
ALTER TABLE connector_logs ALTER COLUMN at TYPE TIMESTAMPTZ USING at::timestamptz;
ALTER TABLE data_keys ALTER COLUMN created_at TYPE TIMESTAMPTZ USING created_at::timestamptz;
ALTER TABLE api_keys ALTER COLUMN created_at TYPE TIMESTAMPTZ USING created_at::timestamptz,
                     ALTER COLUMN revoked_at TYPE TIMESTAMPTZ USING revoked_at::timestamptz;
ALTER TABLE practitioners ALTER COLUMN created_at TYPE TIMESTAMPTZ USING created_at::timestamptz,
                          ALTER COLUMN updated_at TYPE TIMESTAMPTZ USING updated_at::timestamptz;
ALTER TABLE practitioner_sources ALTER COLUMN received_at TYPE TIMESTAMPTZ USING received_at::timestamptz;
ALTER TABLE rejects ALTER COLUMN created_at TYPE TIMESTAMPTZ USING created_at::timestamptz;
ALTER TABLE audit_log ALTER COLUMN at TYPE TIMESTAMPTZ USING at::timestamptz;
ALTER TABLE accounts ALTER COLUMN created_at TYPE TIMESTAMPTZ USING created_at::timestamptz,
                     ALTER COLUMN updated_at TYPE TIMESTAMPTZ USING updated_at::timestamptz;
ALTER TABLE alerts ALTER COLUMN raised_at TYPE TIMESTAMPTZ USING raised_at::timestamptz,
                   ALTER COLUMN resolved_at TYPE TIMESTAMPTZ USING resolved_at::timestamptz;
ALTER TABLE key_rotations ALTER COLUMN started_at TYPE TIMESTAMPTZ USING started_at::timestamptz,
                          ALTER COLUMN finished_at TYPE TIMESTAMPTZ USING finished_at::timestamptz;
ALTER TABLE jobs ALTER COLUMN run_after TYPE TIMESTAMPTZ USING run_after::timestamptz,
                 ALTER COLUMN lease_until TYPE TIMESTAMPTZ USING lease_until::timestamptz,
                 ALTER COLUMN created_at TYPE TIMESTAMPTZ USING created_at::timestamptz,
                 ALTER COLUMN finished_at TYPE TIMESTAMPTZ USING finished_at::timestamptz;
ALTER TABLE observations ALTER COLUMN created_at TYPE TIMESTAMPTZ USING created_at::timestamptz;
ALTER TABLE backups ALTER COLUMN started_at TYPE TIMESTAMPTZ USING started_at::timestamptz,
                    ALTER COLUMN finished_at TYPE TIMESTAMPTZ USING finished_at::timestamptz;
