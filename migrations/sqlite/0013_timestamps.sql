-- PostgreSQL's 0013 makes times TIMESTAMPTZ. SQLite has no time type: times stay RFC 3339
-- text in UTC with milliseconds (fixed width, so text order is time order); this keeps both
-- engines at the same schema version, which backups record.
SELECT 1;
