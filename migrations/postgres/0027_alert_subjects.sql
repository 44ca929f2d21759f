-- An alert concerns a connector or a webhook subscription (issue 20: an endpoint failing
-- for days is disabled and raises an alert): exactly one of the two is set.
ALTER TABLE alerts ALTER COLUMN connector_id DROP NOT NULL;
ALTER TABLE alerts ADD COLUMN subscription_id TEXT;
ALTER TABLE alerts ADD CONSTRAINT alerts_concern_one
    CHECK ((connector_id IS NULL) <> (subscription_id IS NULL));
CREATE INDEX alerts_by_subscription ON alerts (subscription_id, id);
