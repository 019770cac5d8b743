import type { OutboundEvent } from '../events/outbound';
import type { EventPublisher } from '../events/publisher';
import type { TopicName } from '../events/topics';
import type { Database } from './database';

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
