import { randomUUID } from 'node:crypto';
import { Kafka, logLevel, type Consumer } from 'kafkajs';
import { headersToStrings } from '../../events/cloudevents';
import type { Topics } from '../../events/topics';
import { jsonBody } from '../support/kafka-probe';

/** One record the backend published, as a client read it. */
export interface Announced {
  topic: string;
  /** CloudEvent id: the same id twice is a redelivery, not a second effect. */
  id: string;
  type: string;
  data: Record<string, unknown>;
  /** When the backend's producer sent it (the Kafka record timestamp, set per send attempt). */
  sentAt: number;
  /** When this suite read it. */
  readAt: number;
}

/** Kafka clients of the suite: patient enough to ride out a broker restart. */
export function suiteKafka(brokers: string, clientId: string): Kafka {
  return new Kafka({
    brokers: [brokers],
    clientId,
    logLevel: logLevel.NOTHING,
    retry: { retries: 50, initialRetryTime: 300, maxRetryTime: 3000 },
  });
}

/**
 * Everything the backend announced on the results, access-request and dashboard topics, read from the
 * beginning by a consumer group of its own. A consumer that kafkajs gives up on (broker down too long)
 * is replaced by a new one of the same group, which goes on from the committed offsets.
 */
export class EventLog {
  readonly records: Announced[] = [];
  private readonly byCommand = new Map<string, Announced[]>();
  private readonly listeners: ((record: Announced) => void)[] = [];
  private consumer: Consumer | null = null;
  private closed = false;
  private readonly groupId = `chaos-event-log-${randomUUID().slice(0, 8)}`;
  restarts = 0;

  constructor(
    private readonly kafka: Kafka,
    private readonly topics: Topics,
  ) {}

  onRecord(listener: (record: Announced) => void): void {
    this.listeners.push(listener);
  }

  async start(): Promise<void> {
    const consumer = this.kafka.consumer({ groupId: this.groupId, maxWaitTimeInMs: 500, sessionTimeout: 30_000, heartbeatInterval: 3000 });
    this.consumer = consumer;
    consumer.on(consumer.events.CRASH, (event) => {
      if (this.closed || event.payload.restart) return;
      // kafkajs will not restart this one itself: replace it.
      this.restarts += 1;
      setTimeout(() => {
        if (this.closed) return;
        void consumer
          .disconnect()
          .catch(() => undefined)
          .then(() => this.start())
          .catch((error: unknown) => console.error('chaos: event log could not restart:', error));
      }, 1000);
    });
    await consumer.connect();
    await consumer.subscribe({ topics: [this.topics.commandResults, this.topics.accessRequests, this.topics.dashboard], fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ topic, message }) => {
        const headers = headersToStrings(message.headers as Record<string, unknown>);
        const data = jsonBody(message.value);
        const record: Announced = {
          topic,
          id: headers.ce_id ?? '',
          type: headers.ce_type ?? '',
          data,
          sentAt: Number(message.timestamp),
          readAt: Date.now(),
        };
        this.records.push(record);
        if (record.type.startsWith('selfservice.command.') && typeof data.commandId === 'string') {
          this.byCommand.set(data.commandId, [...(this.byCommand.get(data.commandId) ?? []), record]);
        }
        for (const listener of this.listeners) listener(record);
      },
    });
  }

  /** Every copy of every result record of one command. */
  resultsOf(commandId: string): Announced[] {
    return this.byCommand.get(commandId) ?? [];
  }

  /** The first command result or dashboard event (of those `belongs` picks) that the backend sent at or after `since`. */
  firstProgressSince(since: number, belongs: (record: Announced) => boolean): Announced | undefined {
    let first: Announced | undefined;
    for (const record of this.records) {
      if (record.topic !== this.topics.commandResults && record.topic !== this.topics.dashboard) continue;
      if (!belongs(record)) continue;
      if (record.sentAt < since) continue;
      if (!first || record.sentAt < first.sentAt) first = record;
    }
    return first;
  }

  async stop(): Promise<void> {
    this.closed = true;
    await this.consumer?.disconnect().catch(() => undefined);
  }
}
