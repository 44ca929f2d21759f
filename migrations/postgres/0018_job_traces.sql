-- The W3C traceparent of the span that queued a job (an API request, a webhook, a cron fire,
-- an MQTT batch): the job's run continues that trace, so one trace runs from the trigger
-- through the queue to the plugin, its requests and the database.
ALTER TABLE jobs ADD COLUMN traceparent TEXT;
