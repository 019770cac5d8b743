-- The outbox relay (workers/outbox-relay.ts) publishes every unpublished OutboxEvent row, in
-- "position" order per "shard". Several relays may run at once: each shard is taken by one relay at a
-- time (an advisory lock), and one key always falls in one shard, so events of one key keep their order.
-- (No semicolon in comments: the migration engine splits on every one.)

-- The ordering column. BIGSERIAL numbers the existing rows in one statement (rows the running
-- application inserts meanwhile get later numbers from the same sequence), then they are renumbered
-- by "createdAt". The renumbering stays below every number the sequence has handed out.
ALTER TABLE "OutboxEvent" ADD COLUMN "position" BIGSERIAL NOT NULL;

UPDATE "OutboxEvent" SET "position" = numbered.n
FROM (SELECT "id", row_number() OVER (ORDER BY "createdAt", "position") AS n FROM "OutboxEvent") AS numbered
WHERE "OutboxEvent"."id" = numbered."id" AND "OutboxEvent"."position" <> numbered.n;

CREATE UNIQUE INDEX "OutboxEvent_position_key" ON "OutboxEvent"("position");

-- The shard of a row: 16 shards by a hash of the key (workers/outbox-relay.ts has the same count).
ALTER TABLE "OutboxEvent" ADD COLUMN "shard" INTEGER NOT NULL GENERATED ALWAYS AS (hashtext("key") & 15) STORED;

-- What the relay scans: unpublished rows of a shard in order. Published rows leave the index.
-- It replaces the index on (publishedAt, createdAt), which nothing reads.
DROP INDEX "OutboxEvent_publishedAt_createdAt_idx";
CREATE INDEX "OutboxEvent_unpublished_idx" ON "OutboxEvent"("shard", "position") WHERE "publishedAt" IS NULL;

-- Wake the relays at once: one NOTIFY per INSERT statement, delivered when its transaction commits.
-- The body is an E-string with its semicolons escaped as \x3B, since the engine would split on them.
CREATE FUNCTION "outbox_event_notify"() RETURNS trigger LANGUAGE plpgsql AS
E'BEGIN NOTIFY selfservice_outbox\x3B RETURN NULL\x3B END';

CREATE TRIGGER "OutboxEvent_notify" AFTER INSERT ON "OutboxEvent"
FOR EACH STATEMENT EXECUTE FUNCTION "outbox_event_notify"();

-- The application role inserts rows, so it draws positions from the new sequence: USAGE only (the
-- default privileges of the application_role migration give the same, this keeps it explicit).
-- Its table rights cover the new columns. LISTEN and advisory locks need no grant.
GRANT USAGE ON SEQUENCE "OutboxEvent_position_seq" TO selfservice_app;
