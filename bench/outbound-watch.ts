import { randomUUID } from 'node:crypto';
import type { Consumer, Kafka } from 'kafkajs';
import { headersToStrings } from '../events/cloudevents';
import type { Topics } from '../events/topics';
import { now } from './stats';

/** One command's result as read from the command-results topic. */
export interface CommandResult {
  at: number;
  accepted: boolean;
  code?: string;
  message?: string;
  requestId?: string;
}

/** A dashboard assignment as read from the dashboard topic. */
export interface Assignment {
  at: number;
  requestId?: string;
}

/** Values that arrive by key, with waits that end at a deadline (then undefined, never a hang). */
class Arrivals<V> {
  private readonly values = new Map<string, V>();
  private readonly waiters = new Map<string, ((value: V | undefined) => void)[]>();

  add(key: string, value: V): void {
    if (this.values.has(key)) return; // at-least-once delivery: the first copy counts
    this.values.set(key, value);
    for (const wake of this.waiters.get(key) ?? []) wake(value);
    this.waiters.delete(key);
  }

  get(key: string): V | undefined {
    return this.values.get(key);
  }

  wait(key: string, deadline: number): Promise<V | undefined> {
    const known = this.values.get(key);
    if (known !== undefined) return Promise.resolve(known);
    return new Promise((resolve) => {
      const timer = setTimeout(() => finish(undefined), Math.max(0, deadline - now()));
      const finish = (value: V | undefined) => {
        clearTimeout(timer);
        resolve(value);
      };
      this.waiters.set(key, [...(this.waiters.get(key) ?? []), finish]);
    });
  }

  /** Waits for every key (or the deadline) and returns how many arrived. */
  async waitAll(keys: readonly string[], deadline: number): Promise<number> {
    const results = await Promise.all(keys.map((key) => this.wait(key, deadline)));
    return results.filter((value) => value !== undefined).length;
  }
}

export const pairKey = (userId: string, appId: string) => `${userId}|${appId}`;

/**
 * Reads what the backend announces, from the beginning of this run's topics: command results by
 * command id, dashboard assignments by user and app. Each is stamped when this process receives it.
 */
export class OutboundWatch {
  readonly results = new Arrivals<CommandResult>();
  readonly assignments = new Arrivals<Assignment>();

  private constructor(private readonly consumer: Consumer) {}

  static async start(kafka: Kafka, topics: Topics): Promise<OutboundWatch> {
    const consumer = kafka.consumer({ groupId: `bench-watch-${randomUUID()}`, maxWaitTimeInMs: 100 });
    await consumer.connect();
    await consumer.subscribe({ topics: [topics.commandResults, topics.dashboard], fromBeginning: true });
    const watch = new OutboundWatch(consumer);
    await consumer.run({
      partitionsConsumedConcurrently: 3,
      eachMessage: async ({ topic, message }) => {
        const at = now();
        const headers = headersToStrings(message.headers as Record<string, unknown>);
        let data: Record<string, unknown>;
        try {
          data = JSON.parse(message.value?.toString('utf8') ?? '{}') as Record<string, unknown>;
        } catch {
          return;
        }
        const text = (name: string) => (typeof data[name] === 'string' ? (data[name] as string) : undefined);
        if (topic === topics.commandResults) {
          const commandId = text('commandId');
          if (!commandId) return;
          watch.results.add(commandId, {
            at,
            accepted: headers.ce_type === 'selfservice.command.accepted.v1',
            code: text('code'),
            message: text('message'),
            requestId: text('requestId'),
          });
        } else if (headers.ce_type === 'selfservice.dashboard.app-assigned.v1') {
          const userId = text('userId');
          const appId = text('appId');
          if (userId && appId) watch.assignments.add(pairKey(userId, appId), { at, requestId: text('requestId') });
        }
      },
    });
    return watch;
  }

  async stop(): Promise<void> {
    await this.consumer.disconnect();
  }
}
