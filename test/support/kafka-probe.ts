import { randomUUID } from 'node:crypto';
import type { Consumer, IHeaders, Kafka, Producer } from 'kafkajs';
import { encodeCloudEvent, headersToStrings } from '../../events/cloudevents';

export interface SeenRecord {
  topic: string;
  key: string | null;
  headers: Record<string, string>;
  value: Buffer | null;
  /** The JSON body, when it is JSON. */
  data: Record<string, unknown>;
  type: string | undefined;
  id: string | undefined;
}

/** Reads every record of some topics from the beginning, so a test can wait for what it expects. */
export class TopicProbe {
  readonly records: SeenRecord[] = [];
  private constructor(private readonly consumer: Consumer) {}

  static async start(kafka: Kafka, topics: string[]): Promise<TopicProbe> {
    const consumer = kafka.consumer({ groupId: `probe-${randomUUID()}` });
    await consumer.connect();
    await consumer.subscribe({ topics, fromBeginning: true });
    const probe = new TopicProbe(consumer);
    await consumer.run({
      eachMessage: async ({ topic, message }) => {
        const headers = headersToStrings(message.headers as Record<string, unknown>);
        const data = jsonBody(message.value);
        probe.records.push({
          topic,
          key: message.key?.toString('utf8') ?? null,
          headers,
          value: message.value,
          data,
          type: headers.ce_type,
          id: headers.ce_id,
        });
      },
    });
    return probe;
  }

  matching(predicate: (record: SeenRecord) => boolean): SeenRecord[] {
    return this.records.filter(predicate);
  }

  async waitFor(predicate: (record: SeenRecord) => boolean, what: string, timeoutMs = 30_000): Promise<SeenRecord> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const found = this.records.find(predicate);
      if (found) return found;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; saw ${this.records.length} records: ${this.records.map((r) => r.type ?? r.topic).join(', ')}`);
  }

  async stop(): Promise<void> {
    await this.consumer.disconnect();
  }
}

/** Publishes one command in CloudEvents binary mode, as an end-user app or admin console would. */
export async function sendCommand(
  producer: Producer,
  topic: string,
  type: string,
  data: unknown,
  options: { id?: string; key?: string; traceparent?: string; tracestate?: string } = {},
): Promise<string> {
  const id = options.id ?? randomUUID();
  const record = encodeCloudEvent(
    { specversion: '1.0', id, source: 'urn:test', type, time: new Date().toISOString(), traceparent: options.traceparent, tracestate: options.tracestate, data },
    options.key ?? ((data as { orgId?: string }).orgId ?? null),
  );
  await producer.send({ topic, messages: [{ key: record.key, value: record.value, headers: record.headers as IHeaders }] });
  return id;
}

export function resultFor(commandId: string) {
  return (record: SeenRecord) =>
    record.type?.startsWith('selfservice.command.') === true && record.data.commandId === commandId;
}

/** The JSON body of a record, or {} when it has none or it is not JSON. */
export function jsonBody(value: Buffer | null): Record<string, unknown> {
  try {
    return (JSON.parse(value?.toString('utf8') ?? 'null') ?? {}) as Record<string, unknown>;
  } catch {
    return {};
  }
}
