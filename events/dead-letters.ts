import { Partitioners, type IHeaders, type Kafka, type Producer } from 'kafkajs';
import { bounded, Limits } from './limits';
import { SECRET_FIELD, withoutUrlCredentials } from './secrets';

export { SECRET_FIELD };

/** An inbound Kafka record as consumed, with where it came from. */
export interface InboundRecord {
  topic: string;
  partition: number;
  offset: string;
  key: Buffer | null;
  value: Buffer | null;
  headers: IHeaders;
}

export interface DeadLetterSink {
  send(record: InboundRecord, reason: string): Promise<void>;
}

export const DeadLetterHeaders = {
  error: 'dlq-error',
  sourceTopic: 'dlq-source-topic',
  sourcePartition: 'dlq-source-partition',
  sourceOffset: 'dlq-source-offset',
  failedAt: 'dlq-failed-at',
  /** The original size in bytes, when the value was cut to keep the copy under the broker's limit. */
  valueTruncated: 'dlq-value-truncated',
  /** The fields removed because they are named like secrets (`password`, `token`, ...). */
  redacted: 'dlq-redacted',
} as const;

/** Deeper than this, a dead-letter copy drops the content: it cannot be searched for secrets cheaply. */
const REDACTION_DEPTH = 64;

/** How `dlq-redacted` names a field whose value had credentials in a URL (hidden, the field kept). */
const urlCredentialsIn = (key: string) => `${bounded(key, 64)} (credentials in a URL)`;

/**
 * Removes every field named like a secret, at any depth, and hides the credentials of URLs in string
 * values (`https://user:pass@host`, `?token=...`); returns the names of the fields concerned.
 */
export function withoutSecrets(value: unknown): { value: unknown; removed: string[] } {
  const removed = new Set<string>();
  const strip = (node: unknown, depth: number, key: string): unknown => {
    if (typeof node === 'string') {
      const hidden = withoutUrlCredentials(node);
      if (hidden === null) return node;
      removed.add(urlCredentialsIn(key));
      return hidden;
    }
    if (typeof node !== 'object' || node === null) return node;
    if (depth > REDACTION_DEPTH) {
      removed.add(`(content nested deeper than ${REDACTION_DEPTH} levels)`);
      return null;
    }
    if (Array.isArray(node)) return node.map((item) => strip(item, depth + 1, key));
    const kept: Record<string, unknown> = {};
    for (const [name, item] of Object.entries(node)) {
      if (SECRET_FIELD.test(name)) removed.add(bounded(name, 64));
      else kept[name] = strip(item, depth + 1, name);
    }
    return kept;
  };
  return { value: strip(value, 1, '(value)'), removed: [...removed].sort() };
}

/**
 * The names of the fields named like secrets (or holding credentials in a URL), found without recursion
 * (a body may be nested very deep).
 */
function secretKeysIn(json: unknown): string[] {
  const found = new Set<string>();
  const stack: unknown[] = [json];
  while (stack.length > 0) {
    const node = stack.pop();
    if (typeof node === 'string' && withoutUrlCredentials(node) !== null) found.add('(credentials in a URL)');
    if (typeof node !== 'object' || node === null) continue;
    if (Array.isArray(node)) {
      for (const item of node) stack.push(item);
      continue;
    }
    for (const [key, item] of Object.entries(node)) {
      if (SECRET_FIELD.test(key)) found.add(bounded(key, 64));
      stack.push(item);
    }
  }
  return [...found].sort();
}

/** The JSON body of a record with its secret fields removed, or the bytes as they were when it has none. */
export function redactedValue(value: Buffer | null): { value: Buffer | null; removed: string[] } {
  if (value === null) return { value, removed: [] };
  let json: unknown;
  try {
    json = JSON.parse(value.toString('utf8'));
  } catch {
    return { value, removed: [] };
  }
  if (secretKeysIn(json).length === 0) return { value, removed: [] };
  const stripped = withoutSecrets(json);
  return { value: Buffer.from(JSON.stringify(stripped.value)), removed: stripped.removed };
}

function cut(bytes: Buffer, max: number): Buffer {
  return bytes.length <= max ? bytes : bytes.subarray(0, max);
}

/**
 * The dead-letter copy of a record: its bytes and headers, minus secret fields, cut so that the copy
 * can never exceed `Limits.deadLetterBytes`, plus headers naming the error and the origin. Nothing
 * from the payload is written into the added headers.
 */
export function deadLetterCopy(record: InboundRecord, reason: string, failedAt: Date): { key: Buffer | null; value: Buffer | null; headers: IHeaders } {
  const headers: IHeaders = {};
  let headerBytes = 0;
  for (const [name, raw] of Object.entries(record.headers).slice(0, Limits.headerCount)) {
    const single = Array.isArray(raw) ? raw[0] : raw;
    if (single === undefined || single === null || name.length > Limits.headerNameChars || name.startsWith('dlq-')) continue;
    const bytes = cut(Buffer.isBuffer(single) ? single : Buffer.from(String(single)), Limits.headerValueBytes);
    headers[name] = bytes;
    headerBytes += name.length + bytes.length;
  }
  const key = record.key === null ? null : cut(record.key, Limits.headerValueBytes);
  const redacted = redactedValue(record.value);
  if (redacted.removed.length > 0) headers[DeadLetterHeaders.redacted] = bounded(redacted.removed.join(','), 200);
  const room = Limits.deadLetterBytes - headerBytes - (key?.length ?? 0) - 4 * Limits.headerValueBytes;
  let value = redacted.value;
  if (value !== null && value.length > room) {
    headers[DeadLetterHeaders.valueTruncated] = String(value.length);
    value = cut(value, room);
  }
  Object.assign(headers, {
    [DeadLetterHeaders.error]: bounded(reason),
    [DeadLetterHeaders.sourceTopic]: bounded(record.topic, 255),
    [DeadLetterHeaders.sourcePartition]: String(record.partition),
    [DeadLetterHeaders.sourceOffset]: bounded(record.offset, 40),
    [DeadLetterHeaders.failedAt]: failedAt.toISOString(),
  });
  return { key, value, headers };
}

/** Sends bounded, secret-free copies of refused records to the dead-letter topic. */
export class KafkaDeadLetterSink implements DeadLetterSink {
  private constructor(
    private readonly producer: Producer,
    private readonly topic: string,
  ) {}

  static async connect(kafka: Kafka, topic: string): Promise<KafkaDeadLetterSink> {
    const producer = kafka.producer({ allowAutoTopicCreation: true, createPartitioner: Partitioners.DefaultPartitioner });
    await producer.connect();
    return new KafkaDeadLetterSink(producer, topic);
  }

  async send(record: InboundRecord, reason: string): Promise<void> {
    await this.producer.send({ topic: this.topic, acks: -1, messages: [deadLetterCopy(record, reason, new Date())] });
  }

  async disconnect(): Promise<void> {
    await this.producer.disconnect();
  }
}
