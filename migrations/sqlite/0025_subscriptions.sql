-- Events out (issue 20): webhook subscriptions. Each holds a cursor into the outbox (the seq
-- it has delivered through) and, while its endpoint fails, when to try again. One hub at a
-- time delivers a subscription (the lease), in seq order, so each event reaches it once
-- when all goes well, and again only after a failure (receivers deduplicate by event id).
CREATE TABLE subscriptions (
    id               TEXT PRIMARY KEY,
    url              TEXT NOT NULL,
    -- A JSON array of event types; empty: every type.
    event_types      TEXT NOT NULL,
    -- Only the events a connector caused, when set.
    connector_id     TEXT,
    description      TEXT NOT NULL,
    -- The whsec_ signing key, sealed (AAD subscriptions.secret, id); while a rotation's grace
    -- period runs, the one before it too, which still signs until previous_until.
    key_version      BIGINT NOT NULL,
    secret           BLOB NOT NULL,
    previous_secret  BLOB,
    previous_until   TEXT,
    -- active, paused (by someone), disabled (by the hub: the endpoint is gone or failed for days).
    status           TEXT NOT NULL,
    disabled_reason  TEXT,
    delivered_through BIGINT NOT NULL,
    -- Failed tries of the next event since it last succeeded; when to try again.
    failures         BIGINT NOT NULL DEFAULT 0,
    failing_since    TEXT,
    retry_at         TEXT,
    lease_owner      TEXT,
    lease_until      TEXT,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL
);

-- Every attempt to deliver an event to a subscription, kept 30 days (events::delivery).
CREATE TABLE delivery_attempts (
    -- Time-ordered (UUID v7): newest first by id.
    id               TEXT PRIMARY KEY,
    subscription_id  TEXT NOT NULL,
    event_id         TEXT NOT NULL,
    event_seq        BIGINT NOT NULL,
    -- The HTTP status the endpoint answered; none when it did not answer.
    status_code      BIGINT,
    -- Why it failed, in words; none on success.
    error            TEXT,
    duration_ms      BIGINT NOT NULL,
    attempted_at     TEXT NOT NULL
);
CREATE INDEX delivery_attempts_by_subscription ON delivery_attempts (subscription_id, id);
