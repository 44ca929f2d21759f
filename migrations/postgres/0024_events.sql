-- Events out (issue 20): the outbox. Every change the hub makes writes its event here in the
-- transaction that makes the change, so there is no event without its change and no change
-- without its event; delivery (webhook subscribers, RabbitMQ, outbound plugins) reads from
-- here after commit.
--
-- `seq` orders events, and a reader goes on from the last seq it saw, so seqs must become
-- visible in order: a sequence would not do, as transactions commit out of the order they
-- draw from it (seq 11 visible while 10 is still uncommitted, then skipped). Each
-- transaction takes its seqs from `event_seq` as its last statement instead: the row stays
-- locked until it commits, so the next one takes the following seqs only after that.
CREATE TABLE events (
    seq           BIGINT PRIMARY KEY,
    -- Stable across deliveries and retries: a receiver deduplicates by it.
    id            TEXT NOT NULL UNIQUE,
    type          TEXT NOT NULL,
    -- What the event is about (`practitioner/<id>`, `run/<id>`, `connector/<id>`).
    subject       TEXT NOT NULL,
    connector_id  TEXT,
    occurred_at   TIMESTAMPTZ NOT NULL,
    -- Text, not JSONB: the hub sends it on as it is and never queries into it.
    data          TEXT NOT NULL
);

CREATE TABLE event_seq (last BIGINT NOT NULL);
INSERT INTO event_seq (last) VALUES (0);
