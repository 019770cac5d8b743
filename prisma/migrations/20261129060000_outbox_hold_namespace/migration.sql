-- Events of a command that affects pending requests are written held: the ingress tells those
-- requests first, then releases the events to the relay (workers/command-router.ts). So a producer that
-- sees the result of, say, an admin's deactivation knows every request has been told.
ALTER TABLE "OutboxEvent" ADD COLUMN "held" BOOLEAN NOT NULL DEFAULT false;

-- The topic namespace of the deployment that wrote a row (KAFKA_TOPIC_NAMESPACE): the writer's
-- connections carry it as the setting selfservice.topic_namespace (activities/database.ts), and a relay
-- publishes only the rows of its own namespace, so deployments (or test runs) that share a database
-- never publish each other's events.
ALTER TABLE "OutboxEvent" ADD COLUMN "namespace" TEXT NOT NULL DEFAULT coalesce(current_setting('selfservice.topic_namespace', true), '');
