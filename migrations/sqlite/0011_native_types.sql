-- PostgreSQL's 0011 gives flags and integers their native types. SQLite has nothing to
-- convert (flags are stored 0/1, which the driver reads as booleans); this keeps both
-- engines at the same schema version, which backups record.
SELECT 1;
