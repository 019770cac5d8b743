import { randomUUID } from 'node:crypto';
import type { Consumer, IHeaders, Kafka } from 'kafkajs';
import type { InboundRecord } from '../../../events/dead-letters';

/**
 * A record as the broker delivered it: the raw key, value and headers (a header given twice is an
 * array), plus the convenient decoded views. The hostile-input suite needs the raw bytes to check
 * what the backend writes (sizes of dead-letter headers, secrets in copies), not what a parser makes
 * of them.
 */
export interface RawRecord extends InboundRecord {
  /** First value of each header, as UTF-8 text; names lower-cased. */
  text: Record<string, string>;
  /** The JSON body, when the value is a JSON object; otherwise {}. */
  data: Record<string, unknown>;
}

export function headerValues(headers: IHeaders): { name: string; value: Buffer }[] {
  const out: { name: string; value: Buffer }[] = [];
  for (const [name, raw] of Object.entries(headers)) {
    for (const single of Array.isArray(raw) ? raw : [raw]) {
      if (single === undefined || single === null) continue;
      out.push({ name, value: Buffer.isBuffer(single) ? single : Buffer.from(String(single)) });
    }
  }
  return out;
}

/** Bytes a record takes as the broker counts its payload: key, value, and every header name and value. */
export function recordSize(record: { key: Buffer | null; value: Buffer | null; headers: IHeaders }): number {
  let size = (record.key?.length ?? 0) + (record.value?.length ?? 0);
  for (const { name, value } of headerValues(record.headers)) size += Buffer.byteLength(name) + value.length;
  return size;
}

/** Reads every record of some topics from the beginning and keeps them, raw, in arrival order. */
export class RawProbe {
  readonly records: RawRecord[] = [];
  private constructor(private readonly consumer: Consumer) {}

  static async start(kafka: Kafka, topics: string[]): Promise<RawProbe> {
    // Dead-letter copies may be up to ~900 KiB: fetch them whole.
    const consumer = kafka.consumer({ groupId: `hostile-probe-${randomUUID()}`, maxBytesPerPartition: 4 * 1024 * 1024, maxBytes: 16 * 1024 * 1024 });
    await consumer.connect();
    await consumer.subscribe({ topics, fromBeginning: true });
    const probe = new RawProbe(consumer);
    await consumer.run({
      eachMessage: async ({ topic, partition, message }) => {
        const headers = message.headers ?? {};
        const text: Record<string, string> = {};
        for (const { name, value } of headerValues(headers)) {
          const lower = name.toLowerCase();
          if (!(lower in text)) text[lower] = value.toString('utf8');
        }
        let data: Record<string, unknown> = {};
        try {
          const parsed: unknown = JSON.parse(message.value?.toString('utf8') ?? 'null');
          if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) data = parsed as Record<string, unknown>;
        } catch {
          data = {};
        }
        probe.records.push({ topic, partition, offset: message.offset, key: message.key, value: message.value, headers, text, data });
      },
    });
    return probe;
  }

  matching(predicate: (record: RawRecord) => boolean, from = 0): RawRecord[] {
    return this.records.slice(from).filter(predicate);
  }

  async waitFor(predicate: (record: RawRecord) => boolean, what: string, timeoutMs: number): Promise<RawRecord> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.records.find(predicate);
      if (found) return found;
      if (Date.now() >= deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (${this.records.length} records seen)`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  async stop(): Promise<void> {
    await this.consumer.disconnect();
  }
}
