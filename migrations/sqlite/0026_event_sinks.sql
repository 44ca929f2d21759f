-- Events out (issue 20): where each sink other than a webhook subscription (`rabbitmq`,
-- and `connector:<id>` for each outbound connector) has got to in the outbox. One hub at a
-- time publishes to a sink (the lease), in seq order; the cursor moves only once the sink
-- has taken the events (the broker confirmed them; the plugin's `deliver` succeeded), so a
-- hub or broker that stops mid-batch costs a repeat, never a loss (receivers deduplicate
-- by event id).
CREATE TABLE event_sinks (
    name              TEXT PRIMARY KEY,
    delivered_through BIGINT NOT NULL,
    lease_owner       TEXT,
    lease_until       TEXT,
    updated_at        TEXT NOT NULL
);
