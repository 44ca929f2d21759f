-- Events out (issue 20): the outbox. Every change the hub makes writes its event here in the
-- transaction that makes the change, so there is no event without its change and no change
-- without its event; delivery (webhook subscribers, RabbitMQ, outbound plugins) reads from
-- here after commit.
--
-- `seq` orders events, and a reader goes on from the last seq it saw. SQLite has one writer
-- at a time, so seqs become visible in order. (PostgreSQL's 0024 needs more for that.) `data` is JSON and holds no identifying value (events::Event).
CREATE TABLE events (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    -- Stable across deliveries and retries: a receiver deduplicates by it.
    id            TEXT NOT NULL UNIQUE,
    type          TEXT NOT NULL,
    -- What the event is about (`practitioner/<id>`, `run/<id>`, `connector/<id>`).
    subject       TEXT NOT NULL,
    connector_id  TEXT,
    occurred_at   TEXT NOT NULL,
    data          TEXT NOT NULL
);
