import type { OutboundEvent } from '../events/outbound';
import { activeTraceparent } from '../events/trace-context';
import type { EventPublisher } from '../events/publisher';
import type { TopicName } from '../events/topics';
import type { Prisma } from '../prisma/client/client';
import type { Database, Transaction } from './database';

/**
 * The one writer of outbox rows: every outbound event is enqueued here (or its rows made here), in the transaction of the effect
 * it announces (transactional outbox), and the relay publishes it after the commit. The data is stored
 * as JSON (fields that are `undefined` are left out), rows keep the order given (the relay publishes one
 * key's events in that order), and `held` rows wait until they are released (`releaseEvents`).
 */
export async function enqueueEvents(tx: Transaction, events: readonly OutboxWrite[], options: { held?: boolean } = {}): Promise<void> {
  if (events.length === 0) return;
  const held = options.held ?? false;
  await tx.$executeRawUnsafe(insertOutboxRows('$1::jsonb'), JSON.stringify(outboxRowsOf(events, held)));
}

/**
 * The INSERT of outbox rows given as a jsonb array (`outboxRowsOf`) by the SQL expression `rows`, in the
 * array's order (their positions follow it). One string parameter instead of a field per row and
 * column: a batch of 500 rows costs the client a JSON.stringify, not 500 rows of query arguments.
 */
export function insertOutboxRows(rows: string): string {
  return `INSERT INTO "OutboxEvent" ("id", "topic", "type", "key", "data", "time", "traceparent", "held")
  SELECT e->>'id', e->>'topic', e->>'type', e->>'key', e->'data', (e->>'time')::timestamp(3), e->>'traceparent', COALESCE((e->>'held')::boolean, false)
  FROM jsonb_array_elements(${rows}) WITH ORDINALITY AS t(e, n)
  ORDER BY n`;
}

/** An event to enqueue, with whether it waits to be released (`held`; else the call's). */
export type OutboxWrite = OutboundEvent & { held?: boolean };

/**
 * Outbox rows as they are stored, for `enqueueEvents` and for the one-statement writes of the hot path
 * (activities/request-change.ts), which insert them in the same statement as their effect. Each row
 * records the `traceparent` of the active span (the activity's, or the ingress command's), so the relay
 * publishes the event in the trace of the work that wrote it; null when tracing is off.
 */
export function outboxRowsOf(
  events: readonly OutboxWrite[],
  held = false,
): { id: string; topic: string; type: string; key: string; data: Prisma.InputJsonObject; time: string; traceparent: string | null; held: boolean }[] {
  const traceparent = activeTraceparent();
  return events.map((event) => ({
    id: event.id,
    topic: event.topic,
    type: event.type,
    key: event.key,
    data: JSON.parse(JSON.stringify(event.data)) as Prisma.InputJsonObject,
    time: new Date(event.time).toISOString(),
    traceparent: event.traceparent ?? traceparent,
    held: event.held ?? held,
  }));
}

export interface OutboxDependencies {
  db: Database;
  publisher: EventPublisher;
}

/**
 * Publishes outbox rows that are not yet marked published, in the order given. A retry after a crash
 * between send and mark re-sends with the same CloudEvent ids, so consumers can drop the copy.
 */
export function createOutboxActivities({ db, publisher }: OutboxDependencies) {
  return {
    async publishEvents(eventIds: string[]): Promise<number> {
      if (eventIds.length === 0) return 0;
      const rows = await db.outboxEvent.findMany({ where: { id: { in: eventIds }, publishedAt: null } });
      const position = new Map(eventIds.map((id, index) => [id, index]));
      rows.sort((a, b) => (position.get(a.id) ?? 0) - (position.get(b.id) ?? 0));
      const events: OutboundEvent[] = rows.map((row) => ({
        id: row.id,
        topic: row.topic as TopicName,
        type: row.type,
        key: row.key,
        data: row.data as Record<string, unknown>,
        time: row.time.toISOString(),
        ...(row.traceparent ? { traceparent: row.traceparent } : {}),
      }));
      await publisher.publish(events);
      await db.outboxEvent.updateMany({
        where: { id: { in: rows.map((row) => row.id) } },
        data: { publishedAt: new Date() },
      });
      return rows.length;
    },
  };
}
