-- PostgreSQL's 0012 partitions observations by month. SQLite has no partitions: retention
-- deletes old rows by `effective_at`, which this index serves. Same schema version on both.
CREATE INDEX observations_by_time ON observations (effective_at);
