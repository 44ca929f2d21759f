-- Cron schedules: an expression and an IANA time zone per connector; each fire is one run
-- keyed by its fire time, unique per connector, so several hubs on one database fire once.
ALTER TABLE connectors ADD COLUMN schedule TEXT;
ALTER TABLE connectors ADD COLUMN timezone TEXT NOT NULL DEFAULT 'Asia/Jakarta';
ALTER TABLE connectors ADD COLUMN last_fired_at TEXT;
ALTER TABLE runs ADD COLUMN fire_key TEXT;
CREATE UNIQUE INDEX runs_by_fire_key ON runs (connector_id, fire_key);
