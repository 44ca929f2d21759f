-- Native types where the typed driver reads them directly: flags become BOOLEAN, the
-- remaining INTEGER columns BIGINT (the hub's integers are i64 on both engines).
-- Times stay RFC 3339 text and JSON stays text for now: the audit MAC covers `details` as the
-- exact text stored, and JSONB would normalise it.

ALTER TABLE connectors ALTER COLUMN enabled TYPE BOOLEAN USING enabled <> 0;
ALTER TABLE accounts ALTER COLUMN active TYPE BOOLEAN USING active <> 0;
ALTER TABLE accounts ALTER COLUMN key_version TYPE BIGINT;
ALTER TABLE jobs ALTER COLUMN key_version TYPE BIGINT,
                 ALTER COLUMN attempts TYPE BIGINT,
                 ALTER COLUMN max_attempts TYPE BIGINT;
ALTER TABLE observations ALTER COLUMN key_version TYPE BIGINT;
