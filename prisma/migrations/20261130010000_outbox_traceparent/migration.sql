-- The W3C traceparent of the work that wrote an outbox row (null when tracing is off): the relay
-- publishes the event with it, as the CloudEvents distributed-tracing extension (ce_traceparent).
-- The application role gets its rights on the column through the table's existing grants.
ALTER TABLE "OutboxEvent" ADD COLUMN "traceparent" TEXT;
